"""The mounted disks are parsed again only after a mount or unmount (the kernel's POLLPRI on
/proc/self/mounts), so hundreds of containers' mounts cost nothing between changes."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from dashboard.sampling.mounts import Mounts

# Run in a mount namespace of its own: the test's tmpfs never shows in the machine's table.
CHILD = r"""
import json, os, subprocess, sys, tempfile
from dashboard.sampling.mounts import Mounts
calls = []
mounts = Mounts(partitions=lambda: calls.append(1) or open("/proc/self/mounts").read())
where = tempfile.mkdtemp()
out = {}
first = mounts.list()
mounts.list(); mounts.list()
out["unchanged"] = len(calls)
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "probe", where], check=True)
out["mounted_seen"] = where in mounts.list()
out["after_mount"] = len(calls)
mounts.list()
out["still"] = len(calls)
subprocess.run(["umount", where], check=True)
out["unmounted_seen"] = where not in mounts.list()
out["after_umount"] = len(calls)
print(json.dumps(out))
"""


def test_the_table_is_read_once_until_something_is_mounted_or_unmounted():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("LOUD SKIP: needs root and unshare(1) to mount in a namespace of its own (CI runs as root)")
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-c", CHILD],
                          capture_output=True, text=True, timeout=60, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out == {"unchanged": 1, "mounted_seen": True, "after_mount": 2, "still": 2,
                   "unmounted_seen": True, "after_umount": 3}


def test_without_a_pollable_table_it_reads_every_time(tmp_path):
    calls = []
    mounts = Mounts(path=str(tmp_path / "absent"), partitions=lambda: calls.append(1) or [])
    mounts.list()
    mounts.list()
    assert len(calls) == 2
