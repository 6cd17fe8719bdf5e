"""Where a result was measured: the host (cores, memory, load, versions), the git
state of the measured app, and the app exported from a git ref (`--app-ref`)."""

from __future__ import annotations

import os
import platform
import resource
import shutil
import subprocess
from pathlib import Path

from .servers import REPO

def host_info() -> dict:
    import psutil

    node = None
    if shutil.which("node"):
        node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "node": node,
        "kernel": platform.release(),
        "open_files_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


def git_state(app_ref: str | None) -> dict:
    def git(*args) -> str:
        try:
            return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True,
                                  text=True, timeout=30).stdout.rstrip("\n")
        except (OSError, subprocess.SubprocessError):
            return ""

    state = {"head": git("rev-parse", "--short", "HEAD") or None, "app_ref": app_ref}
    if app_ref:
        state["app_commit"] = git("rev-parse", "--short", app_ref) or None
    else:
        # What the measured app had that is not committed.
        dirty = git("status", "--porcelain", "--", "app.py", "gunicorn.conf.py", "dashboard",
                    "requirements.txt")
        state["uncommitted_app_changes"] = [ln[3:] for ln in dirty.splitlines()]
    return state


def export_app(ref: str, dest: Path) -> Path:
    """The tree of a git ref, extracted into dest (the repository is left untouched)."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", ref],
                             capture_output=True, timeout=120)
    if archive.returncode != 0:
        raise SystemExit(f"git archive {ref} failed: {archive.stderr.decode(errors='replace')}")
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True, timeout=120)
    return dest
