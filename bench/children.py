"""Child processes that speak JSON lines: start them, send them orders, read
the line of a given type from each within a deadline, stop them; or run one to
its end and take its last JSON line.

The load clients (load_client.py, console_client.py, soak_client.py) and the
one-shot tools (sampler_bench.py, history_bench.py, busy_host.py) are children
of the orchestrator; a child's stderr goes to a log file, its stdout carries
one JSON object per line.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class ChildError(RuntimeError):
    """A child did not answer as it should (in time, before exiting)."""


class Children:
    """Children started together and read together. `label` names them in errors
    ("clients" -> "client 2 exited ..."; one child: "the load client exited ...")."""

    def __init__(self, label: str, hint: str = "") -> None:
        self.label = label
        self.hint = hint  # appended to errors, e.g. where the logs are
        self.procs: list[subprocess.Popen] = []
        self._bufs: list[bytes] = []
        self._logs: list = []

    def spawn(self, module: str, args: list[str], log_path: Path, env: dict | None = None) -> subprocess.Popen:
        """`python -m bench.<module> args` with pipes on stdin and stdout, stderr to log_path."""
        log = open(log_path, "ab")
        self._logs.append(log)
        proc = subprocess.Popen([sys.executable, "-m", f"bench.{module}", *args], cwd=REPO, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        self.procs.append(proc)
        self._bufs.append(b"")
        return proc

    def _name(self, i: int) -> str:
        return self.label if len(self.procs) == 1 else f"{self.label.rstrip('s')} {i}"

    def send(self, obj: dict) -> None:
        """One JSON line to every child's stdin."""
        line = (json.dumps(obj) + "\n").encode()
        for p in self.procs:
            p.stdin.write(line)
            p.stdin.flush()

    def read(self, kind: str, timeout: float) -> list[dict]:
        """The next line of type `kind` from every child, in their order, within
        timeout; lines of other types (and any that is not JSON) are skipped."""
        got: dict[int, dict] = {}
        for i in range(len(self.procs)):
            msg = self._take(i, kind)
            if msg is not None:
                got[i] = msg
        sel = selectors.DefaultSelector()
        for i, p in enumerate(self.procs):
            if i not in got:
                sel.register(p.stdout, selectors.EVENT_READ, i)
        deadline = time.monotonic() + timeout
        try:
            while len(got) < len(self.procs):  # bounded by the deadline
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ChildError(f"{self.label} sent no '{kind}' within {timeout:g} s{self.hint}")
                for key, _ in sel.select(min(left, 1.0)):
                    i = key.data
                    chunk = os.read(key.fileobj.fileno(), 1 << 20)
                    if not chunk:
                        raise ChildError(f"{self._name(i)} exited (code {self.procs[i].poll()}) "
                                         f"without '{kind}'{self.hint}")
                    self._bufs[i] += chunk
                    msg = self._take(i, kind)
                    if msg is not None:
                        got[i] = msg
                        sel.unregister(key.fileobj)
        finally:
            sel.close()
        return [got[i] for i in range(len(self.procs))]

    def _take(self, i: int, kind: str) -> dict | None:
        """The first buffered line of child i with type `kind` (lines before it are dropped)."""
        while b"\n" in self._bufs[i]:
            line, self._bufs[i] = self._bufs[i].split(b"\n", 1)
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get("type") == kind:
                return msg
        return None

    def stop(self, timeout: float) -> None:
        """Close their stdin (each ends its run), wait up to timeout in all, then kill."""
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.stdin.close()
                except OSError:
                    pass
        deadline = time.monotonic() + timeout
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for log in self._logs:
            log.close()
        self._logs = []


def run_json(module: str, args: list[str], timeout: float, cwd: Path = REPO, env: dict | None = None) -> dict:
    """Run `python -m bench.<module> args` to its end; its last stdout line that is
    a JSON object. ChildError when it times out, fails or prints none."""
    try:
        proc = subprocess.run([sys.executable, "-m", f"bench.{module}", *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ChildError(f"timed out after {timeout:g}s") from None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise ChildError((proc.stderr or proc.stdout).strip()[-500:] or f"exit {proc.returncode}")
    return json.loads(lines[-1])
