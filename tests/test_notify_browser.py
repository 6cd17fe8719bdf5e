"""The page's alert banner opens the evidence kept with the alert (real Chromium, real server)."""

from tests.conftest import TOKEN
from tests.support.browser import wait_state
from tests.support.wsclient import Console

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def open_page(browser, page_errors, url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, extra_http_headers=AUTH)
    page = page_errors(context.new_page())
    page.goto(url)
    return context, page


def test_the_alert_banner_opens_what_was_running(start_server, browser, page_errors):
    server = start_server({"SAMPLE_INTERVAL": "0.25", "HOST_NAME": "web-1"})
    context, page = open_page(browser, page_errors, server.base + "/")
    wait_state(page, "sse-pill", "open")
    op = Console(server.port)
    op.ok("alert set memory > 0")
    page.wait_for_selector(".banner[data-kind=alert] .banner-evidence", timeout=5000)
    page.click(".banner[data-kind=alert] .banner-evidence")
    page.wait_for_selector("dialog.evidence[open] .evidence-table", timeout=5000)
    assert page.inner_text("#evidence-title") == "[FIRING] memory > 0 % on web-1"
    tables = page.locator("dialog.evidence .evidence-table")
    assert tables.count() == 2
    # Five processes by CPU and five by memory, the same the server kept.
    kept = op.ok("alert history 1")["rows"][0]
    for i in range(2):
        assert tables.nth(i).locator("tr").count() == 1 + 5
    assert kept[7].split(" (")[0] in tables.nth(0).inner_text()
    page.keyboard.press("Escape")
    page.wait_for_function("!document.querySelector('dialog.evidence').open", timeout=3000)
    context.close()
    # A notification's link (?alert=<id>) opens that transition's evidence directly.
    context, page = open_page(browser, page_errors, server.base + f"/?alert={kept[0]}")
    page.wait_for_selector("dialog.evidence[open] .evidence-table", timeout=5000)
    assert page.inner_text("#evidence-title") == "[FIRING] memory > 0 % on web-1"
    context.close()
    assert page_errors.errors == []
