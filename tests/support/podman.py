"""A real container engine for the tests: Debian's Podman, as root, with its API on a socket of the session's.

bin/test installs podman, runc and busybox-static and writes the two
containers.conf settings this kind of machine needs (runc with cgroupfs: crun
refuses hybrid cgroups and there is no systemd; limits it cannot raise). The
image is made here from /bin/busybox with `podman import` (no registry is
reachable). Each test names its containers with a prefix of its own and
removes them afterwards (`podman rm -f -t 0`); each test process starts its
own `podman system service` on a socket in a temporary folder and stops it by
pid at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from tests.support.system import require
from tests.support.waiting import eventually

IMAGE = "localhost/busybox:test"
CONF = Path("/etc/containers/containers.conf")
TOOLS = ("sh", "sleep", "dd", "cat", "head", "mkdir")


def require_podman() -> str:
    """The podman program, as root with the settings this machine needs; a loud skip (or, as root, a failure)."""
    if os.geteuid() != 0:
        pytest.skip("SKIPPED LOUDLY: the container tests run Podman as root (its cgroupfs manager "
                    "writes the host's cgroups); run bin/test as root")
    podman = require("podman", "podman runc busybox-static")
    require("runc", "runc")
    require("busybox", "busybox-static", also=("/bin/busybox",))
    text = CONF.read_text() if CONF.exists() else ""
    assert "runc" in text and "cgroupfs" in text and "nofile=" in text, (
        f"{CONF} lacks the runtime/cgroup_manager/default_ulimits settings bin/test writes")
    return podman


def podman(*args: str, check: bool = True, timeout: float = 120.0) -> str:
    out = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()[:500]}")
    return out.stdout.strip()


def ensure_image(workdir: Path) -> None:
    """localhost/busybox:test, made from the host's busybox if it is not there yet."""
    if subprocess.run(["podman", "image", "exists", IMAGE]).returncode == 0:
        return
    root = workdir / "busybox-root"
    (root / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", root / "bin" / "busybox")
    for tool in TOOLS:
        link = root / "bin" / tool
        if not link.is_symlink():
            link.symlink_to("busybox")
    for folder in ("tmp", "dev", "proc", "sys"):
        (root / folder).mkdir(exist_ok=True)
    tar = workdir / "busybox.tar"
    with tarfile.open(tar, "w") as t:
        t.add(root, arcname=".")
    podman("import", str(tar), IMAGE)


class Service:
    """`podman system service --time=0` on a unix socket of its own."""

    def __init__(self, folder: Path) -> None:
        self.socket = str(folder / "podman.sock")
        self.log = open(folder / "podman-service.log", "wb")
        self.proc = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        eventually(lambda: os.path.exists(self.socket), timeout=60, what="podman's API socket to appear")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


class Containers:
    """The containers one test starts, all removed at the end."""

    def __init__(self) -> None:
        self.prefix = f"dt{uuid.uuid4().hex[:6]}"
        self.names: list[str] = []

    def run(self, name: str, *args: str, command: tuple[str, ...] = ("sleep", "3600")) -> str:
        full = f"{self.prefix}-{name}"
        self.names.append(full)
        podman("run", "-d", "--name", full, *args, IMAGE, *command)
        return full

    def id(self, name: str) -> str:
        return podman("inspect", "-f", "{{.Id}}", name)

    def remove(self, name: str) -> None:
        podman("rm", "-f", "-t", "0", name, check=False)

    def remove_all(self) -> None:
        if self.names:
            podman("rm", "-f", "-i", "-t", "0", *self.names, check=False)  # -i: some went already


BURN = ("sh", "-c", "while :; do :; done")
# 40 MiB in its shared memory (charged to it, not reclaimable) and 12 MiB written to a file (page
# cache), under a 64 MiB limit: the cache stays (near the limit the kernel would reclaim it).
HOLD = ("sh", "-c", "dd if=/dev/zero of=/dev/shm/held bs=1M count=40 2>/dev/null; "
                    "dd if=/dev/zero of=/cached bs=1M count=12 2>/dev/null; sleep 3600")


def wait_running(names, timeout: float = 60.0) -> None:
    def up():
        out = podman("ps", "--format", "{{.Names}}")
        return all(n in out.split() for n in names)
    eventually(up, timeout=timeout, what=f"containers {names} running")

