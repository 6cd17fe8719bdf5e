"""The console panel in real Chromium."""

from tests.support.browser import open_with_login_link, run_command, wait_state
from tests.support.wsclient import TOKEN, Console


def open_page(browser, server, page_errors, path="/"):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = page_errors(context.new_page())
    if "token=" in path:
        open_with_login_link(page, server.base + path)
    else:
        page.goto(server.base + path)
    return context, page


def wait_open(page):
    wait_state(page, "ws-pill", "open", timeout=10000)


def run(page, line):
    run_command(page, line)
    return page.locator("#term-output .term-line").last


def test_login_form_status_top_history_and_completion(start_server, browser, page_errors):
    server = start_server({"SAMPLE_INTERVAL": "0.5"})
    context, page = open_page(browser, server, page_errors)
    page.wait_for_selector("#login-form:not([hidden])")
    page.fill("#login-name", "dana")
    page.fill("#login-token", "wrong")
    page.click("#login-form button[type=submit]")
    page.wait_for_function("document.querySelector('#login-error').textContent.length > 0")
    assert "not valid" in page.inner_text("#login-error")
    page.fill("#login-token", TOKEN)
    page.click("#login-form button[type=submit]")
    wait_open(page)
    page.wait_for_function("document.querySelector('#whoami').textContent === 'dana (operator)'")
    status = run(page, "status")
    assert "version" in status.inner_text() and "viewers" in status.inner_text()
    top = run(page, "top 3")
    assert top.locator("table.term-table tbody tr").count() == 3
    assert top.locator("th").all_inner_texts() == ["PID", "NAME", "USER", "CPU", "RSS"]
    error = run(page, "stauts")
    assert "unknown_command" in error.inner_text() and "status" in error.inner_text()
    page.focus("#term-input")
    page.keyboard.press("ArrowUp")
    assert page.input_value("#term-input") == "stauts"
    page.keyboard.press("ArrowUp")
    assert page.input_value("#term-input") == "top 3"
    page.fill("#term-input", "whoa")
    page.fill("#term-input", "who")
    page.keyboard.press("Tab")
    assert page.input_value("#term-input") == "whoami "
    context.close()
    # Chromium reports the refused login (our wrong token) as a failed resource; nothing else.
    assert page_errors.errors == [
        "console: Failed to load resource: the server responded with a status of 401 (UNAUTHORIZED)"]


def test_login_link_logs_in_and_leaves_the_address_bar(start_server, browser, page_errors):
    server = start_server()
    context, page = open_page(browser, server, page_errors, f"/?token={TOKEN}")
    wait_open(page)
    assert "token" not in page.url
    assert context.cookies()[0]["httpOnly"] and context.cookies()[0]["sameSite"] == "Strict"
    assert TOKEN not in server.log()  # never logged, not even the login request line
    page.click("#logout")
    page.wait_for_selector("#login-form:not([hidden])")
    context.close()
    assert page_errors.errors == []


def test_broadcasts_show_as_text_not_html(start_server, browser, page_errors):
    server = start_server()
    context, page = open_page(browser, server, page_errors, path=f"/?token={TOKEN}")
    page.wait_for_function("document.querySelector('#sse-pill').dataset.state === 'open'")
    op = Console(server.port, name="mallory")
    op.ok('broadcast <img src=x onerror="window.pwned=1"> <b>bold</b>')
    banner = page.wait_for_selector(".banner[data-kind=notice]")
    assert "<img src=x" in banner.inner_text()
    assert page.evaluate("window.pwned === undefined")
    assert page.locator(".banner img, .banner b").count() == 0
    banner.query_selector(".banner-close").click()
    assert page.locator(".banner[data-kind=notice]").count() == 0
    context.close()
    assert page_errors.errors == []
