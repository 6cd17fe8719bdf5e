"""A page on another origin, in the same browser as a logged-in operator.

Both origins are 127.0.0.1 on different ports: the same *site*, so even the
SameSite=Strict cookie is sent along. What stops the attacks is the exact
Origin check before the upgrade and on every state-changing POST."""

import http.server
import threading

import pytest

from tests.support.browser import open_with_login_link
from tests.support.server import free_port
from tests.support.wsclient import TOKEN

ATTACK = """<!doctype html><title>attacker</title>
<script>
window.results = {};
const ws = new WebSocket("ws://127.0.0.1:APP/console");
ws.onopen = () => { results.ws = "open"; ws.send(JSON.stringify({id: 1, line: "broadcast pwned"})); };
ws.onmessage = (e) => { results.message = e.data; };
ws.onclose = (e) => { results.ws = results.ws || ("closed " + e.code); };
fetch("http://127.0.0.1:APP/logout", {method: "POST", credentials: "include", mode: "no-cors",
  headers: {"Content-Type": "text/plain"}, body: "{}"}).then(() => results.fetch = "sent",
  () => results.fetch = "failed");
</script>
<form id="f" method="POST" action="http://127.0.0.1:APP/login" enctype="text/plain">
<input name='{"token":"x","pad":"' value='"}'></form>
"""


@pytest.fixture
def attacker(start_server):
    server = start_server()
    page = ATTACK.replace("APP", str(server.port)).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *a):
            pass

    evil = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    yield server, f"http://127.0.0.1:{evil.server_address[1]}/"
    evil.shutdown()
    evil.server_close()


def test_another_origin_cannot_use_the_operators_cookie(attacker, browser):
    server, evil_url = attacker
    context = browser.new_context()
    mine = context.new_page()
    open_with_login_link(mine, f"{server.base}/?token={TOKEN}")
    mine.wait_for_function("document.querySelector('#ws-pill').dataset.state === 'open'", timeout=10000)
    assert context.cookies()[0]["sameSite"] == "Strict"

    evil = context.new_page()
    evil.goto(evil_url)
    evil.wait_for_function("window.results.ws && window.results.fetch", timeout=10000)
    results = evil.evaluate("window.results")
    assert results["ws"] == "closed 1006" and "message" not in results  # refused before the upgrade

    # A classic cross-site form post (text/plain, so it needs no preflight).
    with evil.expect_response(lambda r: r.url.endswith("/login")) as posted:
        evil.evaluate("document.getElementById('f').submit()")
    assert posted.value.status == 403
    assert posted.value.json()["error"]["code"] == "forbidden_origin"

    # The operator is still logged in, and nothing was done in their name.
    assert mine.evaluate("fetch('/api/session').then(r => r.json())")["authenticated"] is True
    log = server.log()
    assert '"path": "/console", "status": 403' in log
    assert '"path": "/logout", "status": 403' in log
    assert "pwned" not in log
    context.close()
