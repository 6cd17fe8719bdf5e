"""py-spy recording the server's worker during a measured window, for
`--profile` runs (raw stacks, read by profile_top.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def start(pid: int, seconds: float, stem: Path, rate: int, extra: list[str]) -> subprocess.Popen | None:
    """Record `pid` for `seconds` into `<stem>.txt` (py-spy's log in `<stem>.log`).
    None, with a note, when py-spy is not installed."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        print("  note: py-spy is not installed; --profile skipped")
        return None
    proc = subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", str(rate),
         *extra, "--format", "raw", "-o", f"{stem}.txt"],
        stdout=subprocess.DEVNULL,
        stderr=open(f"{stem}.log", "wb"),
    )
    proc.stem = stem  # type: ignore[attr-defined]
    return proc


def finish(proc: subprocess.Popen) -> dict:
    """Wait for the recording to be written; where it and its log are."""
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    return {"raw": f"{proc.stem}.txt", "log": f"{proc.stem}.log", "returncode": proc.returncode}


def stop(proc: subprocess.Popen | None) -> None:
    """Kill a recording still running (the run failed before finish)."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(5)
