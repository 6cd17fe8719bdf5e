"""Commands that change what every viewer sees: interval, pause, resume, alerts, broadcast, drop."""

from __future__ import annotations

from typing import Any

from ...alerts.rules import METRICS_HELP, OPS, join_container_metric
from .. import cmdline
from ..cmdline import Arg, Opt
from .registry import CommandError, Context, command


@command(
    "interval",
    "Set the sampling interval for every viewer (0.25 to 60 s).",
    Arg("seconds", cmdline.number(0.25, 60)),
    role="operator",
    changes=True,
)
def cmd_interval(ctx: Context, a: dict) -> Any:
    event = ctx.ops.set_interval(a["seconds"], by=ctx.operator.name)
    return {"interval": event.interval, "paused": event.paused}


@command("pause", "Stop sampling (viewers keep their streams).", role="operator", changes=True)
def cmd_pause(ctx: Context, a: dict) -> Any:
    changed, event = ctx.ops.set_paused(True, by=ctx.operator.name)
    return {"paused": True, "changed": changed}


@command("resume", "Sample again after pause.", role="operator", changes=True)
def cmd_resume(ctx: Context, a: dict) -> Any:
    changed, event = ctx.ops.set_paused(False, by=ctx.operator.name)
    return {"paused": False, "changed": changed}


@command(
    "alert set",
    "Alert when a metric crosses a threshold for a while.",
    Arg("metric", help=METRICS_HELP),
    Arg("op", cmdline.choice(*OPS), help=" ".join(OPS)),
    Arg("value", cmdline.number()),
    Opt("for", cmdline.number(0, 86400), 0.0, "seconds the condition must hold", metavar="seconds"),
    Opt("host", cmdline.text(128), None, "one host, or a set by pattern ('web-*'); default every host",
        metavar="name"),
    role="operator",
    changes=True,
    join=join_container_metric,
)
def cmd_alert_set(ctx: Context, a: dict) -> Any:
    try:
        rule = ctx.ops.add_alert(a["metric"], a["op"], a["value"], a["for"], by=ctx.operator.name,
                                 **({"hosts": a["host"]} if a["host"] else {}))
    except ValueError as exc:
        raise CommandError("bad_args", str(exc)) from None
    return rule.public()


@command("alert clear", "Delete an alert rule.", Arg("id"), role="operator", changes=True)
def cmd_alert_clear(ctx: Context, a: dict) -> Any:
    try:
        rule = ctx.ops.remove_alert(a["id"], by=ctx.operator.name)
    except KeyError:
        raise CommandError("not_found", f"no alert rule {a['id'][:20]!r}; see 'alert list'") from None
    return {"cleared": rule.id, "rule": rule.describe()}


@command(
    "broadcast",
    "Show a message on every dashboard and console.",
    Arg("message", cmdline.text(1000), rest=True),
    role="operator",
    changes=True,
    verbatim=True,
)
def cmd_broadcast(ctx: Context, a: dict) -> Any:
    event = ctx.ops.broadcast(a["message"], by=ctx.operator.name)
    return {"sent": True, "message": event.message}


@command(
    "drop",
    "Close event streams or consoles by name (see 'clients'), or all of a kind: they reconnect.",
    Arg("kind", cmdline.choice("sse", "console")),
    Arg("name", help="a name from 'clients', or all"),
    role="operator",
    changes=True,
)
def cmd_drop(ctx: Context, a: dict) -> Any:
    name = a["name"]
    if a["kind"] == "sse":
        dropped = ctx.ops.drop_streams(name)
        if not dropped and name == "all":
            return {"dropped": 0, "kind": "sse", "note": "no event stream is open"}
        if not dropped:
            raise CommandError("not_found", f"no event stream named {name[:40]!r}; see 'clients'")
        return {"dropped": dropped, "kind": "sse"}
    sessions = [s for s in ctx.ops.consoles() if name == "all" or s.id == name]
    if not sessions:
        raise CommandError("not_found", f"no console named {name[:40]!r}; see 'clients'")
    # After this reply is queued (the one asking may be among them), so every
    # console gets what it was sent first: 1012 tells the client to come back,
    # as for a service restart.
    for session in sessions:
        ctx.after_reply.append(lambda session=session: session.close(1012, "dropped by an operator"))
    return {"dropped": len(sessions), "kind": "console"}
