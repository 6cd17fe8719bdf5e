"""Looking into one process: `proc <pid>`, what the page's process rows open.

The answer is read on request for that one pid (command line, user, status,
start time, threads, open files, connections by state, children, nice) with
its CPU and memory over the samples that showed it. Never its environment.
Killing it from there is the ordinary `kill`, with its confirmation.
"""

from __future__ import annotations

from typing import Any

from .. import cmdline
from ..cmdline import Arg
from ..operator import ROLES
from .registry import CommandError, Context, command


@command(
    "proc",
    "Look into one process of this host: command line, user, status, threads, files, "
    "connections, children, and its CPU and memory while it was watched.",
    Arg("pid", cmdline.integer(1, 2**22)),
)
def cmd_proc(ctx: Context, a: dict) -> Any:
    pid = a["pid"]
    try:
        details = ctx.ops.process_details(pid)
    except LookupError:
        raise CommandError("not_found", f"no process with pid {pid} on this host; see 'top' or 'ps'") from None
    # The way to signal it from here, when this login may: the same `kill`, with its confirmation.
    may_kill = ctx.ops.process_control and ROLES[ctx.operator.role] >= ROLES["operator"]
    return {**details, "kill": f"kill {pid}" if may_kill else None}
