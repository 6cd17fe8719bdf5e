"""Signalling processes: `kill` asks for a one-time code, `confirm <code>` carries it out.

Off unless ALLOW_PROCESS_CONTROL=1. Refuses pid 1 and this server's own
processes, and checks at confirmation that the pid is still the process the
operator saw (a pid can be reused in between). No shell is involved: the
signal goes straight to the pid.
"""

from __future__ import annotations

import os
import secrets
import signal as _signal
import time
from typing import Any

import psutil

from .. import cmdline
from ..cmdline import Arg, Opt
from .registry import CommandError, Context, Pending, command

CONFIRM_SECONDS = 60
SIGNALS = {"TERM": _signal.SIGTERM, "KILL": _signal.SIGKILL, "INT": _signal.SIGINT, "HUP": _signal.SIGHUP}


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
    if not ctx.ops.process_control:
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
