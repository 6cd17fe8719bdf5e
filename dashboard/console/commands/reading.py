"""Commands that read: help, whoami, status, clients, top, ps, hosts, ping, alert list, audit."""

from __future__ import annotations

import time
from typing import Any

from ...alerts.rules import Rule
from ...sampling.processes import matching, top
from .. import cmdline
from ..cmdline import Arg, Opt
from ..operator import ROLES
from .registry import REGISTRY, CommandError, Context, command, lookup


@command("help", "List commands, or describe one.", Arg("command", required=False, rest=True))
def cmd_help(ctx: Context, a: dict) -> Any:
    words = (a["command"] or "").split()  # `help ' '` names no command
    if words:
        cmd, _ = lookup(words)
        return {
            **cmd.public(),
            "arguments": [
                {"name": p.name, "help": p.help, "kind": "option" if isinstance(p, Opt) else "positional"}
                for p in cmd.args
            ],
        }
    allowed = [c for c in REGISTRY.values() if ROLES[ctx.operator.role] >= ROLES[c.role]]
    return {
        "columns": ["usage", "role", "help"],
        "rows": [[c.usage, c.role, c.help] for c in allowed],
    }


@command("whoami", "Who this connection is logged in as.")
def cmd_whoami(ctx: Context, a: dict) -> Any:
    op = ctx.operator
    return {"operator": op.name, "role": op.role, "via": op.via, "session": op.session[:8],
            "addr": op.addr, "connection": ctx.connection}


@command("status", "Server and sampler state, viewers and consoles connected, version.")
def cmd_status(ctx: Context, a: dict) -> Any:
    return ctx.ops.status()


@command("clients", "Open event streams and consoles: name, address, since, traffic.")
def cmd_clients(ctx: Context, a: dict) -> Any:
    rows = [["sse", s.client or "-", s.addr, round(s.since, 3), s.events, s.host] for s in ctx.ops.streams()]
    rows += [["console", c.id, c.addr, round(c.since, 3), c.commands, c.operator.name]
             for c in ctx.ops.consoles()]
    return {"columns": ["kind", "name", "addr", "since", "messages", "host / operator"], "rows": rows}


HOST = Opt("host", cmdline.text(128), None, "another host's table (see 'hosts')", metavar="name")


def _table(ctx: Context, host: str | None) -> list[dict]:
    """The latest process table of host (this one by default)."""
    try:
        rows = ctx.ops.process_rows(host)
    except KeyError:
        raise CommandError("not_found", f"no process table for host {host!r}; see 'hosts'") from None
    if not rows:
        raise CommandError("not_found", "no sample has been taken yet")
    return rows


def _as_table(rows: list[dict]) -> dict:
    return {
        "columns": ["pid", "name", "user", "cpu", "rss"],
        "rows": [[r["pid"], r["name"], r["user"], r["cpu"], r["rss"]] for r in rows],
    }


@command(
    "top",
    "Heaviest processes from the latest sample.",
    Arg("n", cmdline.integer(1, 100), required=False, help="how many (default 10)"),
    Opt("sort", cmdline.choice("cpu", "mem"), "cpu", "cpu or mem", metavar="cpu|mem"),
    HOST,
)
def cmd_top(ctx: Context, a: dict) -> Any:
    rows = _table(ctx, a["host"])
    return {**_as_table(top(rows, a["n"] or 10, a["sort"])), "sort": a["sort"]}


@command(
    "ps",
    "Processes whose name contains a pattern (or with that pid).",
    Arg("pattern", cmdline.text(64)),
    HOST,
)
def cmd_ps(ctx: Context, a: dict) -> Any:
    found = matching(_table(ctx, a["host"]), a["pattern"])
    if not found:
        raise CommandError("not_found", f"no process matches {a['pattern']!r}")
    found.sort(key=lambda p: p["pid"])
    return {**_as_table(found[:100]), "total": len(found)}


@command("hosts", "Hosts this dashboard hears from, with when each was last heard and which are stale.")
def cmd_hosts(ctx: Context, a: dict) -> Any:
    rows = [[h["name"], h.get("role"), h.get("last_seen"), h.get("stale"), h.get("local")]
            for h in ctx.ops.hosts()]
    return {"columns": ["host", "role", "ts", "stale", "this"], "rows": rows}


# The page sends this every few seconds to time the socket: a probe, not an
# operator's action, so it is the one command the audit log leaves out.
@command("ping", "Answer at once (the page times its round trips with this).", audited=False)
def cmd_ping(ctx: Context, a: dict) -> Any:
    return {"pong": time.time()}


@command("alert list", "Alert rules and where they fire.")
def cmd_alert_list(ctx: Context, a: dict) -> Any:
    rows = []
    for r in ctx.ops.alert_rules():
        rule = Rule.from_dict(r)
        values = {h: st.get("value") for h, st in r["states"].items()}
        rows.append([r["id"], rule.describe(), "firing" if r["firing"] else "ok",
                     ", ".join(r["firing"]) or "-", values or None, r.get("by"), rule.hosts or "all"])
    return {"columns": ["id", "rule", "state", "firing on", "values", "by", "hosts"], "rows": rows}


@command("audit", "The latest audit records.", Arg("n", cmdline.integer(1, 500), required=False, help="default 20"))
def cmd_audit(ctx: Context, a: dict) -> Any:
    records = ctx.ops.audit_latest(a["n"] or 20)
    return {
        # detail: how a command ended, how often a request repeated, why it was interrupted
        "columns": ["id", "ts", "operator", "addr", "line", "outcome", "detail"],
        "rows": [[r["id"], r["ts"], r["operator"], r["addr"], r["line"], r["outcome"], r.get("detail")]
                 for r in records],
    }
