"""Looking into one process: `proc <pid>`, what the page's process rows open.

The answer is read on request for that one pid (command line, user, status,
start time, threads, open files, connections by state, children, nice) with
its CPU and memory over the samples that showed it. Never its environment.
Killing it from there is the ordinary `kill`, with its confirmation.

Reading one process (its files, connections and children from /proc) takes
70-240 ms of the worker, against a tenth of a millisecond for `ping`, so a
`proc` takes PROC_COST requests from the console's rate limits (see
docs/console.md, "Audit log": costly commands cost more).
"""

from __future__ import annotations

from typing import Any

from .. import cmdline
from ..cmdline import Arg
from ..operator import ROLES
from .registry import CommandError, Context, command

# A whole request's worth of the worker could not be weighed in pings (about a
# thousand) without making `proc` impossible within a burst. 15 lets a person
# open two processes in a row on one connection (CONSOLE_BURST 40), then 1.3 a
# second; one login (CONSOLE_LOGIN_RATE 50/s, burst 100) 6 at once and 3.3 a second.
PROC_COST = 15


@command(
    "proc",
    "Look into one process of this host: command line, user, status, threads, files, "
    "connections, children, and its CPU and memory while it was watched.",
    Arg("pid", cmdline.integer(1, 2**22)),
    cost=PROC_COST,
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
