"""Containers: `containers` lists them (like `ps`), `container <name>` looks into one (like `proc`),
`container restart <name>` restarts one through the engine (like `kill`: off unless
ALLOW_PROCESS_CONTROL=1, and only after `confirm <code>`).

Lists come from the latest sample of the host asked about (no engine call, no
new read); details of this host's containers from its collector, of another
host's from its samples, with the container's figures over the samples that
showed it. A restart on another host (`--host`) is asked of that host's sampler
over Redis (fleet/asks.py), which acts only if it too allows process control.
Names, images and labels are the engine's and may be anything: they are data in
the reply, which both consoles show as text.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from .. import cmdline
from ..cmdline import Arg, Opt
from ..operator import ROLES
from .process_control import CONFIRM_SECONDS
from .reading import HOST
from .registry import CommandError, Context, Pending, command

COLUMNS = ["name", "id", "image", "state", "cpu", "cpu_pct", "mem", "mem_pct", "rx_bps", "tx_bps",
           "read_bps", "write_bps", "pids", "restarts", "uptime"]
SORTS = {"cpu": "cpu", "mem": "mem", "name": "name"}
NAME = cmdline.text(256)


def _section(ctx: Context, host: str | None) -> dict:
    try:
        section = ctx.ops.container_section(host)
    except KeyError:
        raise CommandError("not_found", f"no samples from host {host!r}; see 'hosts'") from None
    if section is None:
        raise CommandError("not_found", "no containers in the latest sample (none taken yet, or "
                                        "CONTAINERS=off, or no cgroups on that host)")
    return section


@command(
    "containers",
    "Running containers from the latest sample: CPU (% of the host, % of its limit), memory, "
    "network and disk rates, pids, restarts, uptime.",
    Arg("pattern", cmdline.text(64), required=False, help="only names (or ids) that contain it"),
    Opt("sort", cmdline.choice(*SORTS), "cpu", "cpu, mem or name", metavar="cpu|mem|name"),
    HOST,
)
def cmd_containers(ctx: Context, a: dict) -> Any:
    section = _section(ctx, a["host"])
    rows = [r for r in section.get("list") or () if isinstance(r, dict)]
    if a["pattern"]:
        rows = [r for r in rows if a["pattern"] in str(r.get("name")) or str(r.get("id", "")).startswith(a["pattern"])]
    key = SORTS[a["sort"]]
    if key == "name":
        rows.sort(key=lambda r: str(r.get("name")))
    else:
        rows.sort(key=lambda r: (r.get(key) is None, -(r.get(key) or 0)))
    return {
        "columns": COLUMNS,
        "rows": [[r.get(c) for c in COLUMNS] for r in rows],
        "running": section.get("running"),
        "stopped": section.get("stopped"),
        "engine": section.get("engine"),
        "missing": section.get("missing"),
        "sort": a["sort"],
    }


def _find(ctx: Context, name: str) -> str:
    try:
        return ctx.ops.container_id(name)
    except LookupError as exc:
        raise CommandError("not_found", str(exc.args[0]) if exc.args else "no such container") from None


def _remote(ctx: Context, host: str, name: str) -> dict:
    try:
        return ctx.ops.remote_container(host, name)
    except KeyError:
        raise CommandError("not_found", f"no samples from host {host!r}; see 'hosts'") from None
    except LookupError as exc:
        raise CommandError("not_found", str(exc.args[0])) from None


@command(
    "container",
    "Look into one running container: engine name, image, labels, limits, init pid, restarts, "
    "and its CPU and memory over the samples that showed it (another host's: from its samples).",
    Arg("name", NAME, help="its name, or the start of its id"),
    HOST,
)
def cmd_container(ctx: Context, a: dict) -> Any:
    may = ctx.ops.process_control and ROLES[ctx.operator.role] >= ROLES["operator"]
    if ctx.ops.elsewhere(a["host"]):
        details = _remote(ctx, a["host"], a["name"])
        return {**details, "restart": f"container restart {details['name']} --host {a['host']}" if may else None}
    cid = _find(ctx, a["name"])
    try:
        details = ctx.ops.container_details(cid)
    except LookupError as exc:
        raise CommandError("not_found", str(exc.args[0])) from None
    return {**details, "restart": f"container restart {details['name']}" if may else None}


@command(
    "container restart",
    "Restart a container through its engine (needs ALLOW_PROCESS_CONTROL=1 and a confirmation).",
    Arg("name", NAME, help="its name, or the start of its id"),
    Opt("wait", cmdline.integer(0, 60), 10, "seconds between SIGTERM and SIGKILL (the engine's -t)",
        metavar="seconds"),
    Opt("host", cmdline.text(128), None, "another host's container: asked of its sampler, which must allow "
        "process control too", metavar="name"),
    role="operator",
    changes=True,
)
def cmd_container_restart(ctx: Context, a: dict) -> Any:
    if not ctx.ops.process_control:
        raise CommandError("forbidden", "process control is disabled on this server (ALLOW_PROCESS_CONTROL=0)")
    if ctx.ops.elsewhere(a["host"]):
        return _restart_elsewhere(ctx, a)
    cid = _find(ctx, a["name"])
    name = ctx.ops.container_details(cid)["name"]

    def action() -> dict:
        try:
            ctx.ops.container_restart(cid, a["wait"])
        except LookupError as exc:
            raise CommandError("not_found", str(exc.args[0])) from None
        except OSError as exc:  # the engine refused or could not be reached (engine.EngineError)
            raise CommandError("unavailable", f"the engine did not restart {name[:80]!r}: {exc}") from None
        return {"id": cid[:12], "name": name, "restarted": True}

    _confirm(ctx, action, f"restart container {name[:80]!r} ({cid[:12]})", {"id": cid[:12], "name": name})


def _restart_elsewhere(ctx: Context, a: dict) -> Any:
    host = a["host"]
    details = _remote(ctx, host, a["name"])
    name, cid = str(details["name"]), str(details["id"])

    def action() -> dict:
        try:
            reply = ctx.ops.ask_container_restart(host, name, a["wait"], by=ctx.operator.name)
        except LookupError as exc:
            raise CommandError("not_found", str(exc.args[0])) from None
        except TimeoutError as exc:  # fleet.asks.NoAnswer: no reply in time, or Redis failed in between
            raise CommandError("unavailable", str(exc)) from None
        if not reply.get("ok"):
            code = reply.get("code") if reply.get("code") in ("forbidden", "not_found", "bad_args") else "unavailable"
            raise CommandError(code, str(reply.get("message"))[:300])
        return {"id": cid[:12], "name": name, "host": host, "restarted": True}

    _confirm(ctx, action, f"restart container {name[:80]!r} ({cid[:12]}) on {host[:80]}",
             {"id": cid[:12], "name": name, "host": host})


def _confirm(ctx: Context, action, what: str, target: dict) -> None:
    code = secrets.token_hex(3).upper()
    ctx.confirmations[code] = Pending(action, time.time() + CONFIRM_SECONDS)
    raise CommandError(
        "confirm_required",
        f"{what}: send 'confirm {code}' within {CONFIRM_SECONDS} s to proceed",
        confirm=f"confirm {code}",
        expires_in=CONFIRM_SECONDS,
        target=target,
    )
