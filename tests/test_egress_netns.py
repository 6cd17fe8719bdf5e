"""The egress guard against a real listener on the cloud metadata address, in network namespaces.

Two namespaces of the test's own, joined by a veth pair: one holds a fake
metadata host at 169.254.169.254 (an HTTP server that counts requests), the
other runs the notification code. Nothing changes in the machine's own
namespace, and both are removed afterwards. A plain request from outside the
guard reaches the fake host (it is real); every way in from inside the guard
(Apprise's HTTP send, requests, a raw socket, a name that resolves there) is
refused before a packet leaves, so the host counts exactly one request.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.system import require

pytestmark = pytest.mark.live

REPO = Path(__file__).resolve().parent.parent
METADATA = "169.254.169.254"

FAKE_HOST = textwrap.dedent('''
    import http.server, sys
    class H(http.server.BaseHTTPRequestHandler):
        def _any(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            print(self.command, self.path, flush=True)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
        do_GET = do_POST = _any
        def log_message(self, *a):
            pass
    server = http.server.HTTPServer(("0.0.0.0", 80), H)
    print("ready", flush=True)
    server.serve_forever()
''')

CLIENT = textwrap.dedent('''
    from gevent import monkey
    monkey.patch_all()
    import json, socket, time, urllib.request
    import apprise, requests
    from dashboard.alerts import egress

    out = {}
    deadline = time.monotonic() + 20
    while True:  # the fake host, reached plainly: it is there
        try:
            out["control"] = urllib.request.urlopen("http://169.254.169.254/control", timeout=2).status
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    policy = egress.make_policy(allow_private=True)

    def attempt(name, fn):
        with egress.confined(policy) as confinement:
            try:
                fn()
                out[name] = "connected"
            except Exception as exc:
                out[name] = confinement.refused[:1] or [f"{type(exc).__name__}: {exc}"]

    def via_apprise(url):
        a = apprise.Apprise(asset=apprise.AppriseAsset(http_redirects=False))
        a.add(url)
        if not a.notify(title="t", body="b"):
            raise RuntimeError("not sent")

    attempt("apprise_ip", lambda: via_apprise("json://169.254.169.254/latest/meta-data"))
    attempt("apprise_name", lambda: via_apprise("json://metadata.test.internal/latest/meta-data"))
    attempt("requests", lambda: requests.get("http://169.254.169.254/requests", timeout=3))
    attempt("raw", lambda: socket.create_connection(("169.254.169.254", 80), timeout=3).close())
    attempt("mapped", lambda: socket.create_connection(("::ffff:169.254.169.254", 80), timeout=3).close())
    print(json.dumps(out), flush=True)
''')


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def namespaces(tmp_path):
    """(client namespace, metadata namespace) joined by a veth pair; removed after the test."""
    if os.geteuid() != 0:
        pytest.skip("SKIPPED LOUDLY: network namespaces need root (CI runs as root)")
    require("ip", "iproute2")
    tag = secrets.token_hex(3)
    client, meta = f"dash-egress-c-{tag}", f"dash-egress-m-{tag}"
    etc = Path("/etc/netns") / client  # `ip netns exec` mounts its hosts file over /etc/hosts
    made: list[str] = []
    try:
        for ns in (client, meta):
            ip("netns", "add", ns)
            made.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip("link", "add", f"dec{tag}", "netns", client, "type", "veth", "peer", "name", f"dem{tag}", "netns", meta)
        ip("-n", client, "addr", "add", "169.254.169.1/16", "dev", f"dec{tag}")
        ip("-n", meta, "addr", "add", f"{METADATA}/16", "dev", f"dem{tag}")
        ip("-n", client, "link", "set", f"dec{tag}", "up")
        ip("-n", meta, "link", "set", f"dem{tag}", "up")
        etc.mkdir(parents=True)
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n{METADATA} metadata.test.internal\n")
        yield client, meta
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(etc, ignore_errors=True)


def test_inside_the_guard_nothing_reaches_a_real_metadata_host(namespaces, tmp_path):
    client, meta = namespaces
    host = subprocess.Popen(["ip", "netns", "exec", meta, sys.executable, "-c", FAKE_HOST],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert host.stdout.readline().strip() == "ready"
        run = subprocess.run(["ip", "netns", "exec", client, sys.executable, "-c", CLIENT], cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 0, run.stderr[-3000:]
        out = json.loads(run.stdout.strip().splitlines()[-1])
    finally:
        host.kill()
        seen = host.communicate(timeout=10)[0].split("\n")  # after "ready"
    assert out.pop("control") == 200
    for way, result in out.items():
        assert result != "connected", way
        assert "metadata" in result[0] or "link-local" in result[0], (way, result)
    assert [line for line in seen if line] == ["GET /control"]  # the plain request, and nothing else
