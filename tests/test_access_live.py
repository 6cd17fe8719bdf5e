"""Private by default, against the real server (gunicorn + gevent) and Chromium:
logout ends streams, guessing is throttled, bad credentials stop the start,
forwarding headers cannot be turned against the app, and the page shows
nothing of the host before a login and runs under its CSP without a violation."""

import json
import subprocess
import sys
import time

import pytest

from tests.support.server import REPO, free_port
from tests.support.sseclient import SSEClient
from tests.support.wsclient import TOKEN, login_cookie
from tests.support.waiting import eventually

VIEWER = "viewer-token-for-live-tests"


def test_logout_ends_that_logins_event_streams_but_no_others(start_server):
    server = start_server({"VIEWER_TOKEN": VIEWER, "HEARTBEAT_SECONDS": "1"})
    mine = login_cookie(server.base, VIEWER)
    other = login_cookie(server.base, VIEWER)
    with SSEClient(server.port, headers={"Cookie": mine}, auth=False) as a, \
            SSEClient(server.port, headers={"Cookie": other}, auth=False) as b:
        assert a.status == 200 and b.status == 200
        a.read_events(1)
        b.read_events(1)
        status, _, body = server.request("POST", "/logout", body={}, auth=False,
                                         headers={"Cookie": mine, "Origin": server.base})
        assert status == 200 and b'"closed_streams":1' in body
        assert a.wait_for(lambda c: c.ended, timeout=5), "the logged-out stream is still open"
        before = len(b.parser.events)
        assert b.wait_for(lambda c: len(c.parser.events) > before, timeout=5)  # the other goes on
    # The cookie is dead now, for streams too.
    with SSEClient(server.port, headers={"Cookie": mine}, auth=False) as again:
        assert again.status == 401


def test_the_cli_is_told_403_for_the_metrics_token_and_401_for_an_unknown_one(start_server):
    server = start_server({"METRICS_TOKEN": "metrics-token-for-live-tests"})

    def cli(token):
        return subprocess.run([sys.executable, "-m", "dashboard.console", server.base, "-c", "status"], cwd=REPO,
                              capture_output=True, text=True, timeout=30,
                              env={"OPERATOR_TOKEN": token, "PATH": "/usr/bin:/bin", "HOME": str(server.tmp)})

    done = cli("metrics-token-for-live-tests")
    assert done.returncode == 2 and "this login may not open the console (403)" in done.stderr
    done = cli("not-a-token-this-server-knows")
    assert done.returncode == 2 and "the token was not accepted (401)" in done.stderr
    assert cli(TOKEN).returncode == 0


def test_guessing_is_throttled_and_the_right_token_works_after_the_wait(start_server):
    server = start_server({"LOGIN_FAILURES_ALLOWED": "2"})

    def attempt(token):
        return server.request("POST", "/login", body={"token": token}, auth=False,
                              headers={"Origin": server.base})

    for _ in range(2):
        assert attempt("not-the-token-at-all")[0] == 401
    assert attempt("still-not-the-token")[0] == 401  # the third: now it must wait
    status, headers, _ = attempt(TOKEN)
    assert status == 429 and headers["Retry-After"] == "1"
    bearer = server.request("GET", "/api/hosts", auth=False, headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer[0] == 429
    time.sleep(1.1)
    assert attempt(TOKEN)[0] == 200
    # One log line for the address, not one per failure, and no token in the log.
    log = server.log()
    assert log.count("failed logins from 127.0.0.1") == 1
    assert "not-the-token" not in log and TOKEN not in log


@pytest.mark.parametrize("env, says", [
    ({"OPERATOR_TOKEN": "short"}, "OPERATOR_TOKEN=(hidden): must be at least 16 characters"),
    ({"SECRET_KEY": "tiny"}, "SECRET_KEY=(hidden): must be at least 16 characters"),
    ({"VIEWER_TOKENS": "eve"}, "VIEWER_TOKENS=(hidden): entry 1 must be name:token"),
    ({"VIEWER_TOKEN": "operator-token-for-tests"}, "the same token is given to two logins"),
    ({"DASHBOARD_ACCESS": "open"}, "DASHBOARD_ACCESS='open': must be one of login, public"),
])
def test_bad_credentials_stop_the_start_with_one_line(tmp_path, env, says):
    full = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PORT": str(free_port()), "HOST": "127.0.0.1",
            "OPERATOR_TOKEN": TOKEN, "AUDIT_DB": str(tmp_path / "a.sqlite3"),
            "DATA_DIR": str(tmp_path / "data"),  # not the checkout's var/: generated secrets would be kept there
            **env}
    out = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app"], cwd=REPO,
                         env=full, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert lines == [f"error: {says}"] or lines[-1].startswith(f"error: {says}"), lines
    assert "Traceback" not in out.stderr and "short" not in out.stderr.replace("(hidden)", "")


def test_forwarded_host_and_prefix_cannot_be_turned_against_the_app(start_server):
    server = start_server()
    # A DNS-rebinding page on evil.test adds X-Forwarded-Host itself (we trust loopback as a proxy).
    status, _, body = server.request("GET", "/api/hosts",
                                     headers={"Host": "evil.test", "X-Forwarded-Host": "localhost"})
    assert status == 400 and b"host_not_allowed" in body and b"evil.test" in body
    status, _, body = server.request("GET", "/", headers={"X-Forwarded-Prefix": "//evil.example"})
    assert status == 400 and b"bad_forwarded_prefix" in body
    status, _, body = server.request("GET", "/", headers={"X-Forwarded-Prefix": "/monitor"})
    assert status == 200 and b'data-base="/monitor"' in body


def poll(page, expression: str, timeout: float = 15.0) -> None:
    """Wait for expression to be true, asking through the devtools protocol (no eval in the page)."""
    eventually(lambda: page.evaluate(expression), timeout, 0.1, what=expression)


def test_the_page_before_and_after_login_under_its_csp(start_server, browser, page_errors):
    server = start_server({"SAMPLE_INTERVAL": "0.5"})
    host = server.get("/api/snapshot")[1]["host"]
    # The real policy: no bypass, so nothing below may use eval (wait_for_function does).
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=False)
    # Every CSP violation is reported to the page as an event: collect them from the start.
    context.add_init_script("window.__csp = []; document.addEventListener('securitypolicyviolation',"
                            " (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")
    page = page_errors(context.new_page())
    try:
        page.goto(server.base + "/")
        page.wait_for_selector("#login-form:not([hidden])")
        html = page.content()
        assert host not in html and "lock-gate" in html
        assert page.locator("#cards").count() == 0
        assert page.evaluate("window.__csp") == []
        # The login link printed at start logs in with one click (here: one visit).
        page.goto(f"{server.base}/?token={TOKEN}")
        page.wait_for_selector("#cards")
        poll(page, "document.querySelector('#sse-pill').dataset.state === 'open'")
        poll(page, "document.querySelector('#ws-pill').dataset.state === 'open'")
        poll(page, "window.dashboard.charts.store.ts.length >= 3")
        assert "token=" not in page.url
        assert page.locator("#host-name").inner_text() == host
        assert page.evaluate("window.__csp") == []
        csp = page.evaluate("fetch('/').then(r => r.headers.get('content-security-policy'))")
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        # Logging out of a private dashboard hides the host again.
        page.click("#logout")
        page.wait_for_selector(".lock-gate")
        assert host not in page.content()
        assert page_errors.errors == []
    finally:
        context.close()


def test_the_printed_login_link_logs_chromium_in_and_its_token_never_reaches_the_server(start_server, browser,
                                                                                       page_errors):
    server = start_server({"OPERATOR_TOKEN": "", "SAMPLE_INTERVAL": "0.5"})
    printed = [line for line in server.log().splitlines() if "URL (printed once): " in line]
    assert len(printed) == 1
    url = json.loads(printed[0])["msg"].split("URL (printed once): ")[1].strip()
    assert url.startswith(f"{server.base}/#token=")
    token = url.split("#token=")[1]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=False)
    page = page_errors(context.new_page())
    try:
        page.goto(url)
        page.wait_for_selector("#cards")
        poll(page, "document.querySelector('#ws-pill').dataset.state === 'open'")
        assert "token" not in page.url  # the page cleared it from the address bar (and history)
        assert page.evaluate("fetch('/api/session').then(r => r.json())")["role"] == "operator"
        assert page_errors.errors == []
    finally:
        context.close()
    # A fragment is never sent: the only line holding the token is the one that printed it.
    assert server.log().count(token) == 1
