"""Containers: `containers` lists them (like `ps`), `container <name>` looks into one (like `proc`),
`container restart <name>` restarts one through the engine (like `kill`: off unless
ALLOW_PROCESS_CONTROL=1, and only after `confirm <code>`).

Lists come from the latest sample of the host asked about (no engine call, no
new read); details from this host's collector, with the container's figures
over the samples that showed it. Names, images and labels are the engine's and
may be anything: they are data in the reply, which both consoles show as text.
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


@command(
    "container",
    "Look into one running container of this host: engine name, image, labels, limits, init pid, "
    "restarts, and its CPU and memory over the samples that showed it.",
    Arg("name", NAME, help="its name, or the start of its id"),
)
def cmd_container(ctx: Context, a: dict) -> Any:
    cid = _find(ctx, a["name"])
    try:
        details = ctx.ops.container_details(cid)
    except LookupError as exc:
        raise CommandError("not_found", str(exc.args[0])) from None
    may = ctx.ops.process_control and ROLES[ctx.operator.role] >= ROLES["operator"]
    return {**details, "restart": f"container restart {details['name']}" if may else None}


@command(
    "container restart",
    "Restart a container through its engine (needs ALLOW_PROCESS_CONTROL=1 and a confirmation).",
    Arg("name", NAME, help="its name, or the start of its id"),
    Opt("wait", cmdline.integer(0, 60), 10, "seconds between SIGTERM and SIGKILL (the engine's -t)",
        metavar="seconds"),
    role="operator",
    changes=True,
)
def cmd_container_restart(ctx: Context, a: dict) -> Any:
    if not ctx.ops.process_control:
        raise CommandError("forbidden", "process control is disabled on this server (ALLOW_PROCESS_CONTROL=0)")
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

    code = secrets.token_hex(3).upper()
    ctx.confirmations[code] = Pending(action, time.time() + CONFIRM_SECONDS)
    raise CommandError(
        "confirm_required",
        f"restart container {name[:80]!r} ({cid[:12]}): send 'confirm {code}' within {CONFIRM_SECONDS} s to proceed",
        confirm=f"confirm {code}",
        expires_in=CONFIRM_SECONDS,
        target={"id": cid[:12], "name": name},
    )
