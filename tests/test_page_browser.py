"""The whole page in real Chromium against the real server: both transports,
their recovery, tab sharing, alerts, themes, and screenshots to look at."""

import http.server
import threading
import time

import pytest

from tests.support.browser import open_with_login_link, run_command, wait_state
from tests.support.server import REPO
from tests.support.wsclient import TOKEN, Console
from tests.support.waiting import eventually

VIEWER = "viewer-token-for-the-page"

SHOTS = REPO / "artifacts" / "screenshots"


def new_page(browser, page_errors, url, **context_args):
    context = browser.new_context(**({"viewport": {"width": 1400, "height": 1000}} | context_args))
    page = page_errors(context.new_page())
    if "token=" in url:
        open_with_login_link(page, url)
    else:
        page.goto(url)
    return context, page


def samples(page):
    return page.evaluate("window.dashboard.charts.store.ts.length")


def wait_more_samples(page, n=3, timeout=10000):
    start = samples(page)
    page.wait_for_function(f"window.dashboard.charts.store.ts.length >= {start + n}", timeout=timeout)


def fact(page, panel, key):
    return page.locator(f"#{panel} [data-f='{key}']").inner_text()


run = run_command


def test_page_loads_clean_and_charts_move(start_server, browser, page_errors):
    server = start_server({"SAMPLE_INTERVAL": "0.25"})
    context, page = new_page(browser, page_errors, f"{server.base}/?token={TOKEN}")
    wait_state(page, "sse-pill", "open")
    wait_more_samples(page, 4)
    assert page.locator('[data-v="cpu"]').inner_text().endswith("%")
    assert page.locator("#procs tbody tr").count() == 10
    assert page.locator("#charts .chart canvas").count() == 5
    assert fact(page, "sse-facts", "gaps") == "0"
    assert fact(page, "sse-facts", "last-id") != "—"
    assert "B per event" in page.locator("[data-c='sse-cost']").inner_text()
    context.close()
    assert page_errors.errors == []


def test_interval_changes_the_cadence_the_page_sees(start_server, browser, page_errors):
    server = start_server({"SAMPLE_INTERVAL": "1"})
    context, page = new_page(browser, page_errors, f"{server.base}/?token={TOKEN}")
    wait_state(page, "ws-pill", "open")
    assert "interval" in run(page, "interval 0.25")
    time.sleep(0.5)
    wait_more_samples(page, 8)
    gaps = page.evaluate("""(() => { const t = window.dashboard.charts.store.ts.slice(-8);
        return t.slice(1).map((v, i) => v - t[i]); })()""")
    assert 0.15 < sorted(gaps)[len(gaps) // 2] < 0.4, gaps
    context.close()
    assert page_errors.errors == []


def test_a_broadcast_from_another_browser_appears_on_this_one(start_server, browser, page_errors):
    server = start_server({"VIEWER_TOKEN": VIEWER})
    viewer_ctx, viewer = new_page(browser, page_errors, f"{server.base}/?token={VIEWER}")
    wait_state(viewer, "sse-pill", "open")
    # A login without a name is named after its role: "viewer", not "viewer (viewer)".
    viewer.wait_for_function("document.querySelector('#whoami').textContent === 'viewer'")
    assert viewer.is_disabled("#term-input")  # a viewer sees the dashboard, opens no console
    op_ctx, op = new_page(browser, page_errors, f"{server.base}/?token={TOKEN}")
    wait_state(op, "ws-pill", "open")
    run(op, "broadcast Deploying v2 at 15:00")
    banner = viewer.wait_for_selector(".banner[data-kind=notice]", timeout=5000)
    assert "Deploying v2 at 15:00" in banner.inner_text() and "operator" in banner.inner_text()
    viewer_ctx.close()
    op_ctx.close()
    assert page_errors.errors == []


def test_dropping_each_connection_recovers(start_server, browser, page_errors):
    server = start_server({"SAMPLE_INTERVAL": "0.5"})
    context, page = new_page(browser, page_errors, f"{server.base}/?token={TOKEN}")
    wait_state(page, "ws-pill", "open")
    wait_state(page, "sse-pill", "open")
    wait_more_samples(page, 2)
    page.click("#drop-sse")
    page.wait_for_function("document.querySelector('#sse-facts [data-f=reconnects]').textContent === '1'",
                           timeout=15000)
    wait_more_samples(page, 3)
    assert fact(page, "sse-facts", "gaps") == "0"  # resumed with Last-Event-ID: nothing missed
    page.click("#drop-ws")
    page.wait_for_function("document.querySelector('#ws-facts [data-f=reconnects]').textContent === '1'",
                           timeout=20000)
    wait_state(page, "ws-pill", "open")
    assert "operator" in run(page, "whoami")
    context.close()
    assert page_errors.errors == []


class Router503(http.server.BaseHTTPRequestHandler):
    """What a platform's router answers while no process is up."""

    def do_GET(self):
        body = b"<html><body>Application error</body></html>"
        self.send_response(503)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_server_restart_behind_a_503_router_recovers_by_itself(start_server, browser, page_errors, tmp_path):
    env = {"SAMPLE_INTERVAL": "0.5", "SECRET_KEY": "kept-across-restarts"}
    server = start_server(env)
    context, page = new_page(browser, page_errors, f"{server.base}/?token={TOKEN}")
    wait_state(page, "ws-pill", "open")
    wait_state(page, "sse-pill", "open")
    wait_more_samples(page, 2)
    server.stop()
    router = http.server.ThreadingHTTPServer(("127.0.0.1", server.port), Router503)
    threading.Thread(target=router.serve_forever, daemon=True).start()
    # EventSource gives up for good on the 503; the page notices and says so.
    page.wait_for_selector(".banner[data-kind=offline]", timeout=15000)
    page.wait_for_function("document.querySelector('#sse-pill').dataset.state === 'closed'", timeout=15000)
    router.shutdown()
    router.server_close()
    again = start_server(env, port=server.port)
    wait_state(page, "sse-pill", "open", timeout=45000)
    wait_more_samples(page, 3, timeout=15000)
    page.wait_for_selector(".banner[data-kind=offline]", state="detached", timeout=5000)
    wait_state(page, "ws-pill", "open", timeout=45000)
    assert "operator" in run(page, "whoami")
    assert again.get("/healthz")[1]["subscribers"] == 1
    context.close()
    # Chromium reports the router's 503s and the failed connections meanwhile
    # (refused, reset, not connected...); nothing else, and no script error.
    unexpected = [e for e in page_errors.errors
                  if not (e.startswith("console: Failed to load resource:")
                          or e.startswith("console: WebSocket connection to"))]
    assert unexpected == []


def test_eight_tabs_share_one_stream_and_stay_live(start_server, browser, page_errors):
    server = start_server({"SAMPLE_INTERVAL": "0.5"})
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    pages = []
    for _ in range(8):
        page = page_errors(context.new_page())
        open_with_login_link(page, f"{server.base}/?token={TOKEN}")
        pages.append(page)
    for page in pages:
        wait_state(page, "sse-pill", "open")
    for page in pages:
        wait_more_samples(page, 2)
    assert server.get("/healthz")[1]["subscribers"] == 1  # one EventSource for all eight
    roles = [fact(p, "sse-facts", "role") for p in pages]
    assert roles.count("this tab holds the stream") == 1
    leader = pages[roles.index("this tab holds the stream")]
    leader.close()  # the next tab takes the stream over, from the last id it saw
    rest = [p for p in pages if p is not leader]
    for page in rest:
        wait_more_samples(page, 3, timeout=15000)
    for page in rest:
        assert fact(page, "sse-facts", "gaps") == "0"
    eventually(lambda: server.get("/healthz")[1]["subscribers"] == 1, what="one stream left, the others closed")
    context.close()
    assert page_errors.errors == []


def test_firing_alerts_show_in_a_banner_the_title_and_the_favicon(start_server, browser, page_errors):
    server = start_server({"SAMPLE_INTERVAL": "0.5"})
    context, page = new_page(browser, page_errors, f"{server.base}/?token={TOKEN}")
    wait_state(page, "sse-pill", "open")
    plain_icon = page.get_attribute("#favicon", "href")
    op = Console(server.port)
    op.ok("alert set cpu >= 0")
    page.wait_for_selector(".banner[data-kind=alert]", timeout=5000)
    assert page.title().startswith("(1) ")
    assert page.get_attribute("#favicon", "href") != plain_icon
    op.ok("alert clear a1")
    page.wait_for_function("!document.title.startsWith('(')", timeout=5000)
    assert page.get_attribute("#favicon", "href") == plain_icon
    context.close()
    assert page_errors.errors == []


def test_theme_toggle_is_remembered(start_server, browser, page_errors):
    server = start_server()
    context, page = new_page(browser, page_errors, f"{server.base}/?token={TOKEN}", color_scheme="light")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(244, 246, 249)"
    page.click("#theme-toggle")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(12, 16, 22)"
    context.close()
    assert page_errors.errors == []


@pytest.mark.parametrize(
    "name, width, height, scheme",
    [
        ("desktop-light", 1440, 1000, "light"),
        ("desktop-dark", 1440, 1000, "dark"),
        ("phone-light", 390, 844, "light"),
        ("phone-dark", 390, 844, "dark"),
    ],
)
def test_screenshots(start_server, browser, page_errors, name, width, height, scheme):
    server = start_server({"SAMPLE_INTERVAL": "0.5", "SECRET_KEY": "secret-key-for-screenshots"})
    context, page = new_page(browser, page_errors, f"{server.base}/?token={TOKEN}",
                             viewport={"width": width, "height": height}, color_scheme=scheme)
    wait_state(page, "ws-pill", "open")
    wait_more_samples(page, 12, timeout=20000)
    run(page, "status")
    run(page, "top 5")
    Console(server.port, name="sam").ok("broadcast Maintenance window tonight 22:00–22:30 UTC")
    page.wait_for_selector(".banner[data-kind=notice]")
    page.wait_for_timeout(500)
    # Nothing wider than the screen, at any width.
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth + 1")
    # Typing into the console scrolled it into view; a full-page shot draws the
    # sticky header where the viewport is, so go back to the top first.
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(100)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    context.close()
    assert page_errors.errors == []
