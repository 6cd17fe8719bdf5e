"""Commands for alert notifications: notify add/list/remove/test, silences, alert history.

Channel URLs hold tokens and passwords: every URL these commands answer with
is masked, and `notify add` is written to the audit log with its URL masked
(the command's `mask`).
"""

from __future__ import annotations

import time
from typing import Any

from ...alerts.notify import check_name, mask_line, parse_duration
from .. import cmdline
from ..cmdline import Arg, Opt
from .registry import CommandError, Context, command


def _when(ts) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


@command("notify list", "Notification channels (URLs masked), with each one's last success and last error.")
def cmd_notify_list(ctx: Context, a: dict) -> Any:
    rows = [[c["name"], c["url"], c["source"], _when(c["last_ok"]), c["last_error"] or "-",
             c["sent"], c["failed"]] for c in ctx.ops.notify_channels()]
    return {"columns": ["name", "url", "source", "last ok", "last error", "sent", "failed"], "rows": rows}


@command(
    "notify add",
    "Send alerts to an Apprise URL (mailto://, slack://, ntfy://, tgram://, json://...); kept across restarts.",
    Arg("url", cmdline.text(2000), help="an Apprise URL; its secrets are never shown or logged"),
    Opt("name", cmdline.text(32), None, "a name for the channel (default: its scheme)", metavar="name"),
    role="operator",
    changes=True,
    mask=mask_line,
)
def cmd_notify_add(ctx: Context, a: dict) -> Any:
    try:
        if a["name"] is not None:
            check_name(a["name"])
        return ctx.ops.notify_add(a["url"], a["name"], by=ctx.operator.name)
    except ValueError as exc:
        raise CommandError("bad_args", str(exc)) from None


@command("notify remove", "Stop sending to a channel (its queued messages are dropped).", Arg("name"),
         role="operator", changes=True)
def cmd_notify_remove(ctx: Context, a: dict) -> Any:
    try:
        return {"removed": ctx.ops.notify_remove(a["name"], by=ctx.operator.name)}
    except KeyError:
        raise CommandError("not_found", f"no channel {a['name'][:40]!r}; see 'notify list'") from None
    except PermissionError as exc:
        raise CommandError("forbidden", str(exc)) from None


@command("notify test", "Send a test message now to one channel, or to all; says how each went.",
         Arg("name", required=False), role="operator", changes=True)
def cmd_notify_test(ctx: Context, a: dict) -> Any:
    try:
        results = ctx.ops.notify_test(a["name"], by=ctx.operator.name)
    except KeyError:
        raise CommandError("not_found", f"no channel {a['name'][:40]!r}; see 'notify list'") from None
    if not results:
        raise CommandError("not_found", "no channel to test; add one with 'notify add <url>'")
    return {"columns": ["name", "ok", "error"], "rows": [[r["name"], r["ok"], r["error"] or "-"] for r in results]}


@command(
    "silence",
    "Record but do not send a rule's transitions (or all rules') for a while: 90s, 15m, 2h, 1d.",
    Arg("rule", help="a rule id from 'alert list', or all"),
    Arg("duration", parse_duration, help="90s, 15m, 2h or 1d (at most 30 days)"),
    Arg("reason", cmdline.text(200), required=False, rest=True),
    role="operator",
    changes=True,
)
def cmd_silence(ctx: Context, a: dict) -> Any:
    try:
        s = ctx.ops.silence_add(a["rule"], a["duration"], a["reason"], by=ctx.operator.name)
    except KeyError:
        raise CommandError("not_found", f"no alert rule {a['rule'][:20]!r}; see 'alert list'") from None
    except ValueError as exc:  # MAX_SILENCES reached
        raise CommandError("bad_args", str(exc)) from None
    return {**s, "until_utc": _when(s["until"])}


@command("silence list", "Silences in force.")
def cmd_silence_list(ctx: Context, a: dict) -> Any:
    rows = [[s["id"], s["rule"], _when(s["until"]), s.get("reason") or "-", s.get("by") or "-"]
            for s in ctx.ops.silences()]
    return {"columns": ["id", "rule", "until (UTC)", "reason", "by"], "rows": rows}


@command("silence clear", "End a silence.", Arg("id"), role="operator", changes=True)
def cmd_silence_clear(ctx: Context, a: dict) -> Any:
    try:
        s = ctx.ops.silence_clear(a["id"], by=ctx.operator.name)
    except KeyError:
        raise CommandError("not_found", f"no silence {a['id'][:20]!r}; see 'silence list'") from None
    return {"cleared": s["id"], "rule": s["rule"]}


def _top(rows: list, key: str) -> str:
    if not rows:
        return "-"
    r = rows[0]
    value = f"{r.get('cpu') or 0:.0f}%" if key == "cpu" else f"{(r.get('rss') or 0) / 1048576:.0f}MiB"
    return f"{r.get('name')} ({r.get('pid')}) {value}"


@command("alert history", "Past alert transitions with what was running (GET /api/alerts has it all).",
         Arg("n", cmdline.integer(1, 500), required=False))
def cmd_alert_history(ctx: Context, a: dict) -> Any:
    rows = []
    for t in ctx.ops.alert_history(a["n"] or 20):
        ev = t.get("evidence") or {}
        rows.append([t["id"], _when(t["ts"]), t["state"], t["host"], t["title"],
                     "-" if t.get("value") is None else f"{t['value']:g}",
                     "yes" if t.get("silenced") else "no",
                     _top(ev.get("top_cpu"), "cpu"), _top(ev.get("top_mem"), "mem")])
    return {"columns": ["id", "when (UTC)", "state", "host", "title", "value", "silenced", "top cpu", "top mem"],
            "rows": rows}
