"""The README's first command from a fresh clone: `bin/run` installs what it needs,
serves the embedded default, prints the login link once, keeps the host private,
and Ctrl-C ends it cleanly. (The second, `bin/test`, is what CI runs on a clean
checkout.) The clone is of the committed tree: what a newcomer would get."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import urllib.error
import urllib.request

from tests.support.server import REPO, free_port
from tests.support.waiting import eventually

def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_bin_run_from_a_fresh_clone_serves_privately_prints_its_link_and_stops_on_ctrl_c(tmp_path):
    clone = tmp_path / "clone"
    if (REPO / ".git").exists() and shutil.which("git"):
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    else:  # a checkout without its history: the same files, without what a run leaves
        shutil.copytree(REPO, clone, ignore=shutil.ignore_patterns(".venv", "var", "artifacts", "node_modules",
                                                                    "__pycache__", ".pytest_cache"))
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPERATOR_", "SECRET_KEY", "DATA_DIR", "REDIS_", "VIRTUAL_ENV", "PUBLIC_"))}
    env["PORT"] = str(port)
    proc = subprocess.Popen(["bin/run"], cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # Ctrl-C goes to the whole group, as at a terminal
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(line.decode("utf-8", "replace") for line in proc.stdout))
    reader.start()
    try:
        def printed_link() -> str | None:
            assert proc.poll() is None, "bin/run ended: " + "".join(out)[-3000:]
            return next((m.group(1) for line in out if (m := re.search(r"printed once\): (\S+)", line))), None)

        # The first run installs into the clone's .venv (from pip's cache, warm after bin/test's install).
        link = eventually(printed_link, 240, 0.5, what="the login link printed")
        assert link.startswith(f"http://127.0.0.1:{port}/#token="), link
        token = link.split("#token=")[1]
        assert _get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        status, body = _get(f"http://127.0.0.1:{port}/api/snapshot")
        assert status == 401 and json.loads(body)["error"]["code"]  # nothing about the host without a login
        status, body = _get(f"http://127.0.0.1:{port}/api/snapshot", token)
        assert status == 200 and "cpu" in json.loads(body)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        reader.join(10)
    text = "".join(out)
    assert "Traceback" not in text, text[-3000:]
    assert text.count(token) == 1  # printed once, never logged again
    # Its state is where the README says: var/ beside the code, the generated secrets kept owner-only.
    secrets = clone / "var" / "secrets.json"
    assert secrets.exists() and (secrets.stat().st_mode & 0o077) == 0
