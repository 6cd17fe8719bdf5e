"""The console's commands: a registry of (name, arguments, role, handler).

Handlers are plain functions of (context, arguments) that return JSON-able
data or raise CommandError; they know nothing of sockets. `run` turns one
command line into a result: split, look up, check the role, parse arguments,
then call. Nothing here runs a shell or builds a command line for one.

Tabular results are {"columns": [...], "rows": [[...], ...]}, which both the
browser and the command-line client render as tables.
"""

from __future__ import annotations

import difflib
import os
import secrets
import signal as _signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import gevent
import psutil

from . import cmdline
from .alerts import METRICS_HELP, OPS, Rule
from .cmdline import Arg, ArgError, Opt
from .processes import matching, top

if TYPE_CHECKING:  # pragma: no cover
    from .auth import Operator
    from .services import Services

ROLES = {"observer": 0, "operator": 1}
CONFIRM_SECONDS = 60
SIGNALS = {"TERM": _signal.SIGTERM, "KILL": _signal.SIGKILL, "INT": _signal.SIGINT, "HUP": _signal.SIGHUP}


class CommandError(Exception):
    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra
        self.command: str | None = None  # set once the line named a known command


@dataclass
class Pending:
    """A destructive action waiting for `confirm <code>` on the same connection."""

    action: Callable[[], Any]
    expires: float


@dataclass
class Context:
    operator: "Operator"
    svc: "Services"
    confirmations: dict[str, Pending] = field(default_factory=dict)
    connection: str = "-"


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    role: str
    handler: Callable[[Context, dict], Any]
    args: tuple = ()
    changes: bool = False  # changes shared state: audited as pending first, echoed to other consoles
    verbatim: bool = False  # the rest of the line is one argument, quotes optional
    audited: bool = True

    @property
    def usage(self) -> str:
        return cmdline.usage(self.name, self.args)

    def public(self) -> dict:
        return {"name": self.name, "usage": self.usage, "help": self.help, "role": self.role}


REGISTRY: dict[str, Command] = {}


def command(name: str, help: str, *args, role: str = "observer", changes: bool = False,
            verbatim: bool = False, audited: bool = True):
    def register(fn):
        REGISTRY[name] = Command(name, help, role, fn, tuple(args), changes, verbatim, audited)
        return fn

    return register


def lookup(words: list[str]) -> tuple[Command, int]:
    """The command the first words name (two-word names first), and how many words it used."""
    if len(words) >= 2 and f"{words[0]} {words[1]}" in REGISTRY:
        return REGISTRY[f"{words[0]} {words[1]}"], 2
    if words[0] in REGISTRY:
        return REGISTRY[words[0]], 1
    subs = sorted(n for n in REGISTRY if n.startswith(words[0] + " "))
    if subs:
        raise CommandError(
            "unknown_command",
            f"{' '.join(words[:2])[:60]!r} is not a command; try: {', '.join(subs)}",
            suggestions=subs,
        )
    close = difflib.get_close_matches(words[0], list(REGISTRY), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "; type 'help'"
    raise CommandError("unknown_command", f"unknown command {words[0][:40]!r}{hint}", suggestions=close)


def resolve(line: str, operator: "Operator") -> tuple[Command, dict]:
    """Parse a line into its command and argument values, or CommandError."""
    head = line.split(None, 2)
    if not head:
        raise CommandError("bad_request", "empty command line; type 'help'")
    cmd, used = lookup(head)
    if ROLES[operator.role] < ROLES[cmd.role]:
        err = CommandError("forbidden", f"{cmd.name!r} needs the {cmd.role} role; you are {operator.role}")
        err.command = cmd.name
        raise err
    parts = line.split(None, used)
    rest = parts[used] if len(parts) > used else ""
    try:
        if cmd.verbatim:
            values = {cmd.args[0].name: _verbatim(rest, cmd.args[0])}
        else:
            values = cmdline.parse(cmd.args, cmdline.split(rest))
    except ArgError as exc:
        err = CommandError("bad_args", f"{exc}; usage: {cmd.usage}", usage=cmd.usage)
        err.command = cmd.name
        raise err from None
    return cmd, values


def _verbatim(rest: str, arg: Arg) -> Any:
    # The rest of the line as typed, so "it's down" needs no quoting; one
    # quoted string is taken without its quotes (the way to send line breaks).
    text = rest.strip()
    if text[:1] in ("'", '"'):
        try:
            words = cmdline.split(text)
        except ArgError:
            words = []
        if len(words) == 1:
            text = words[0]
    if not text.strip():
        raise ArgError(f"missing <{arg.name}>")
    return cmdline.convert(arg.name, arg.kind, text)


def run(ctx: Context, cmd: Command, values: dict) -> Any:
    return cmd.handler(ctx, values)


# ---- reading ------------------------------------------------------------------


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


def _mode(svc) -> str:
    if svc.fleet is None:
        return "embedded (one process)"
    if svc.shared:
        return "shared through Redis"
    return "local: Redis unreachable"


@command("status", "Server and sampler state, viewers and consoles connected, version.")
def cmd_status(ctx: Context, a: dict) -> Any:
    svc = ctx.svc
    sampler = svc.sampler
    views = list(svc.views.values())
    return {
        "version": svc.version,
        "host": svc.host,
        "pid": os.getpid(),
        "mode": _mode(svc),
        "uptime": round(time.time() - svc.started_at, 1),
        "sampler": {
            "interval": sampler.interval,
            "paused": sampler.paused,
            "here": sampler.running,
            "seq": (svc.local.latest or {}).get("seq", sampler.seq),
            "last_duration_ms": None if sampler.last_duration is None else round(sampler.last_duration * 1000, 2),
        },
        "viewers": sum(len(v.hub.subscribers) for v in views),
        "consoles": len(svc.consoles),
        "events_published": sum(v.hub.stats.published for v in views),
        "alerts_firing": sum(len(r["firing"]) for r in svc.alert_rules()),
    }


@command("clients", "Open event streams and consoles: name, address, since, traffic.")
def cmd_clients(ctx: Context, a: dict) -> Any:
    rows = []
    for view in list(ctx.svc.views.values()):
        for sub in view.hub.subscribers:
            rows.append(["sse", sub.client or "-", sub.addr, round(sub.since, 3), sub.events, view.name])
    for session in ctx.svc.consoles.sessions():
        rows.append(["console", session.id, session.addr, round(session.since, 3), session.commands,
                     session.operator.name])
    return {"columns": ["kind", "name", "addr", "since", "messages", "host / operator"], "rows": rows}


HOST = Opt("host", cmdline.text(128), None, "another host's table (see 'hosts')", metavar="name")


def _table(ctx: Context, host: str | None) -> list[dict]:
    """The latest process table of host (this one by default)."""
    try:
        rows = ctx.svc.process_rows(host)
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
            for h in ctx.svc.hosts()]
    return {"columns": ["host", "role", "ts", "stale", "this"], "rows": rows}


# The page sends this every few seconds to time the socket: a probe, not an
# operator's action, so it is the one command the audit log leaves out.
@command("ping", "Answer at once (the page times its round trips with this).", audited=False)
def cmd_ping(ctx: Context, a: dict) -> Any:
    return {"pong": time.time()}


@command("alert list", "Alert rules and where they fire.")
def cmd_alert_list(ctx: Context, a: dict) -> Any:
    rows = []
    for r in ctx.svc.alert_rules():
        rule = Rule.from_dict(r)
        values = {h: st.get("value") for h, st in r["states"].items()}
        rows.append([r["id"], rule.describe(), "firing" if r["firing"] else "ok",
                     ", ".join(r["firing"]) or "-", values or None, r.get("by")])
    return {"columns": ["id", "rule", "state", "firing on", "values", "by"], "rows": rows}


@command("audit", "The latest audit records.", Arg("n", cmdline.integer(1, 500), required=False, help="default 20"))
def cmd_audit(ctx: Context, a: dict) -> Any:
    records = ctx.svc.audit.latest(a["n"] or 20)
    return {
        "columns": ["id", "ts", "operator", "addr", "line", "outcome"],
        "rows": [[r["id"], r["ts"], r["operator"], r["addr"], r["line"], r["outcome"]] for r in records],
    }


# ---- changing ---------------------------------------------------------------------


@command(
    "interval",
    "Set the sampling interval for every viewer (0.25 to 60 s).",
    Arg("seconds", cmdline.number(0.25, 60)),
    role="operator",
    changes=True,
)
def cmd_interval(ctx: Context, a: dict) -> Any:
    event = ctx.svc.set_interval(a["seconds"], by=ctx.operator.name)
    return {"interval": event.interval, "paused": event.paused}


@command("pause", "Stop sampling (viewers keep their streams).", role="operator", changes=True)
def cmd_pause(ctx: Context, a: dict) -> Any:
    changed, event = ctx.svc.set_paused(True, by=ctx.operator.name)
    return {"paused": True, "changed": changed}


@command("resume", "Sample again after pause.", role="operator", changes=True)
def cmd_resume(ctx: Context, a: dict) -> Any:
    changed, event = ctx.svc.set_paused(False, by=ctx.operator.name)
    return {"paused": False, "changed": changed}


@command(
    "alert set",
    "Alert when a metric crosses a threshold for a while.",
    Arg("metric", help=METRICS_HELP),
    Arg("op", cmdline.choice(*OPS), help=" ".join(OPS)),
    Arg("value", cmdline.number()),
    Opt("for", cmdline.number(0, 86400), 0.0, "seconds the condition must hold", metavar="seconds"),
    role="operator",
    changes=True,
)
def cmd_alert_set(ctx: Context, a: dict) -> Any:
    try:
        rule = ctx.svc.add_alert(a["metric"], a["op"], a["value"], a["for"], by=ctx.operator.name)
    except ValueError as exc:
        raise CommandError("bad_args", str(exc)) from None
    return rule.public()


@command("alert clear", "Delete an alert rule.", Arg("id"), role="operator", changes=True)
def cmd_alert_clear(ctx: Context, a: dict) -> Any:
    try:
        rule = ctx.svc.remove_alert(a["id"], by=ctx.operator.name)
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
    event = ctx.svc.broadcast(a["message"], by=ctx.operator.name)
    return {"sent": True, "message": event.message}


def _own_pids() -> set[int]:
    """This worker, its parent (gunicorn's master) and the master's other workers."""
    me = psutil.Process()
    pids = {me.pid, os.getppid()}
    try:
        parent = me.parent()
        if parent is not None:
            pids.update(p.pid for p in parent.children())
    except psutil.Error:
        pass
    return pids


@command(
    "kill",
    "Signal a process (needs ALLOW_PROCESS_CONTROL=1 and a confirmation).",
    Arg("pid", cmdline.integer(1, 2**22)),
    Opt("signal", cmdline.choice(*[s.lower() for s in SIGNALS]), "term", "TERM, KILL, INT or HUP",
        metavar="TERM|KILL|INT|HUP"),
    role="operator",
    changes=True,
)
def cmd_kill(ctx: Context, a: dict) -> Any:
    if not ctx.svc.config["ALLOW_PROCESS_CONTROL"]:
        raise CommandError("forbidden", "process control is disabled on this server (ALLOW_PROCESS_CONTROL=0)")
    pid, name = a["pid"], a["signal"].upper()
    if pid == 1:
        raise CommandError("forbidden", "refusing to signal pid 1 (the init process)")
    if pid in _own_pids():
        raise CommandError("forbidden", f"pid {pid} is part of this server; refusing to signal it")
    try:
        proc = psutil.Process(pid)
        created, pname = proc.create_time(), proc.name()
    except psutil.NoSuchProcess:
        raise CommandError("not_found", f"no process with pid {pid}") from None
    except psutil.AccessDenied:
        raise CommandError("forbidden", f"not allowed to inspect pid {pid}") from None

    def action() -> dict:
        try:
            target = psutil.Process(pid)
            if target.create_time() != created:
                raise CommandError("not_found", f"pid {pid} is now a different process; nothing sent")
            target.send_signal(SIGNALS[name])
        except psutil.NoSuchProcess:
            raise CommandError("not_found", f"pid {pid} exited before the confirmation") from None
        except psutil.AccessDenied:
            raise CommandError("forbidden", f"not allowed to signal pid {pid}") from None
        return {"pid": pid, "name": pname, "signal": "SIG" + name, "sent": True}

    code = secrets.token_hex(3).upper()
    ctx.confirmations[code] = Pending(action, time.time() + CONFIRM_SECONDS)
    raise CommandError(
        "confirm_required",
        f"kill {pid} ({pname}) with SIG{name}: send 'confirm {code}' within {CONFIRM_SECONDS} s to proceed",
        confirm=f"confirm {code}",
        expires_in=CONFIRM_SECONDS,
        target={"pid": pid, "name": pname},
    )


@command(
    "drop",
    "Close event streams or consoles by name (see 'clients'), or all of a kind: they reconnect.",
    Arg("kind", cmdline.choice("sse", "console")),
    Arg("name", help="a name from 'clients', or all"),
    role="operator",
    changes=True,
)
def cmd_drop(ctx: Context, a: dict) -> Any:
    name, svc = a["name"], ctx.svc
    if a["kind"] == "sse":
        subs = [(view.hub, s) for view in list(svc.views.values()) for s in view.hub.subscribers
                if name == "all" or s.client == name]
        if not subs:
            raise CommandError("not_found", f"no event stream named {name[:40]!r}; see 'clients'")
        for hub, sub in subs:
            hub.close(sub, "dropped by an operator")
        return {"dropped": len(subs), "kind": "sse"}
    sessions = [s for s in svc.consoles.sessions() if name == "all" or s.id == name]
    if not sessions:
        raise CommandError("not_found", f"no console named {name[:40]!r}; see 'clients'")
    # After this reply is queued (the one asking may be among them): 1012 tells
    # the client to come back, as for a service restart.
    for session in sessions:
        gevent.spawn(session.close, 1012, "dropped by an operator")
    return {"dropped": len(sessions), "kind": "console"}


@command("confirm", "Carry out an action that asked for confirmation.", Arg("code"), role="operator", changes=True)
def cmd_confirm(ctx: Context, a: dict) -> Any:
    now = time.time()
    for code, pending in list(ctx.confirmations.items()):
        if pending.expires < now:
            del ctx.confirmations[code]
    pending = ctx.confirmations.pop(a["code"].upper(), None)
    if pending is None:
        raise CommandError(
            "not_found",
            f"no pending action with code {a['code'][:12]!r} (codes work once, on the connection "
            f"that asked, for {CONFIRM_SECONDS} s)",
        )
    return pending.action()
