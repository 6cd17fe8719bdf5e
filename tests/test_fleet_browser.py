"""The fleet page in real Chromium: live rows, names as text, filters, a click to the host page."""

from tests.support.browser import open_with_login_link
from tests.support.server import REPO
from tests.support.wsclient import TOKEN

SHOTS = REPO / "artifacts" / "screenshots"
ODD = "odd<b>name</b>&"


def test_the_fleet_page_shows_this_host_live_and_opens_its_page(start_server, browser, page_errors):
    server = start_server({"SAMPLE_INTERVAL": "0.5", "HOST_NAME": ODD})
    context = browser.new_context(viewport={"width": 1200, "height": 700})
    page = page_errors(context.new_page())
    open_with_login_link(page, f"{server.base}/?token={TOKEN}")
    page.goto(f"{server.base}/fleet")
    row = page.locator(".fl-row")
    row.first.wait_for()
    assert page.locator(".fl-name").inner_text() == ODD  # text, never HTML
    assert page.locator(".fl-name b").count() == 0
    page.wait_for_function("document.querySelector('.fl-row .fl-num').textContent.endsWith('%')")
    page.wait_for_function("document.getElementById('fl-pill').dataset.state === 'live'")
    assert row.get_attribute("data-state") == "up"
    first = page.locator(".fl-row .fl-num").first.inner_text()
    # Live: the CPU cell is rewritten as summaries arrive (at least its title of state stays).
    page.wait_for_function(f"document.querySelector('.fl-row .fl-num').textContent !== {first!r}", timeout=20000)
    page.locator("#fl-filter").fill("nomatch")
    page.wait_for_function("document.querySelectorAll('.fl-row').length === 0")
    assert page.locator("#fl-empty").is_visible()
    page.locator("#fl-filter").fill("")
    page.locator("#fl-firing").check()
    page.wait_for_function("document.querySelectorAll('.fl-row').length === 0")  # nothing fires
    page.locator("#fl-firing").uncheck()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "fleet-one-host.png"))
    page.locator(".fl-row").first.click()
    page.wait_for_url("**/?host=*")
    assert page.locator("#host-name").inner_text() == ODD
    context.close()
    assert page_errors.errors == []
