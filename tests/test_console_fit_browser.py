"""The console fits what it shows, in real Chromium at 1440, 1000, 390 and 320 px,
light and dark: after help, ps, audit, alert list (three rules), notify list (two
channels) and proc, no header cell is taller than one line and no text is cut
without a way to scroll to it (element boxes measured in the page). Also the
Wide mode and its drawer, the login on a private page, the greeting and the alert
banner's wording, and a hidden page that catches up when shown again."""

import re

import pytest

from tests.support.browser import open_with_login_link, run_command, wait_state
from tests.support.server import REPO
from tests.support.wsclient import TOKEN, Console

SHOTS = REPO / "artifacts" / "screenshots"  # with the page's other screenshots (docs/page.md)

# Every problem the console's boxes show: a header taller than one line, an
# element whose content is wider than its box and that cannot be scrolled.
MEASURE = """() => {
  const out = document.querySelector('#term-output');
  const problems = [];
  for (const th of out.querySelectorAll('th')) {
    const line = parseFloat(getComputedStyle(th).lineHeight);
    if (th.getBoundingClientRect().height > line * 1.5) problems.push(`tall header ${th.textContent}`);
  }
  for (const e of [out, ...out.querySelectorAll('*')]) {
    const style = getComputedStyle(e);
    if (style.display === 'inline' || e.clientWidth === 0) continue;
    if (e.scrollWidth > e.clientWidth + 1 && !['auto', 'scroll'].includes(style.overflowX)) {
      problems.push(`cut ${e.tagName.toLowerCase()}.${e.className} "${e.textContent.slice(0, 40)}"`);
    }
  }
  for (const td of out.querySelectorAll('td.wrap')) {  // it breaks at spaces only: its words kept whole
    if (td.textContent.trim() && !td.querySelector('.word')) problems.push(`unkept words ${td.textContent.slice(0, 40)}`);
  }
  for (const word of out.querySelectorAll('td.wrap .word')) {
    if (word.getClientRects().length > 1) problems.push(`split word ${word.textContent}`);
  }
  if (document.scrollingElement.scrollWidth > innerWidth + 1) problems.push('page wider than the screen');
  return problems;
}"""


@pytest.fixture
def busy_server(start_server):
    """A server with three alert rules and two notification channels."""
    server = start_server({"SAMPLE_INTERVAL": "0.5"})
    op = Console(server.port, name="sam")
    for rule in ("alert set cpu >= 0", "alert set memory > 1 --for 5", "alert set load1 > 100"):
        op.ok(rule)
    op.ok("notify add json://127.0.0.1:9/hook --name first-hook")
    op.ok("notify add json://127.0.0.1:9/other-hook --name second-hook")
    server.pid = op.ok("status")["pid"]
    op.close()
    return server


def open_console(browser, page_errors, server, width, scheme):
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page = page_errors(context.new_page())
    open_with_login_link(page, f"{server.base}/?token={TOKEN}")
    wait_state(page, "ws-pill", "open")
    return context, page


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1440, 1000, 390, 320])
def test_console_tables_fit_at_every_width(busy_server, browser, page_errors, width, scheme):
    context, page = open_console(browser, page_errors, busy_server, width, scheme)
    for line in ("help", "ps python", "audit 20", "alert list", "notify list", f"proc {busy_server.pid}"):
        run_command(page, line)
        problems = page.evaluate(MEASURE)
        assert problems == [], (line, problems)
    # Values read as text, not JSON or raw numbers.
    text = page.inner_text("#term-output")
    assert '{"' not in text and "e+9" not in text and "true" not in text and "false" not in text
    # proc's trail of a process just asked about: its span in tenths of a second, never "over 0s".
    assert re.search(r"cpu (in one sample|over \d+\.\d s \(\d+ samples\)):", text), text[-600:]
    host = page.inner_text("#host-name")
    assert f"{host}=" in page.locator("#term-output .term-table").nth(3).inner_text()  # alert list: per host
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#console").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"console-{width}-{scheme}.png"))
    context.close()
    assert page_errors.errors == []


def test_wide_mode_is_remembered_and_a_drawer_on_a_phone(busy_server, browser, page_errors):
    context, page = open_console(browser, page_errors, busy_server, 1440, "light")
    narrow = page.locator("#term-output").bounding_box()["width"]
    page.click("#console-wide")
    wide = page.locator("#term-output").bounding_box()["width"]
    assert wide > 1.8 * narrow and wide > 700, (narrow, wide)
    page.reload()
    wait_state(page, "ws-pill", "open")
    assert page.locator("#term-output").bounding_box()["width"] == wide  # remembered
    run_command(page, "audit 20")
    assert page.evaluate(MEASURE) == []
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "console-wide-1440.png"))
    page.click("#console-wide")
    context.close()

    context, page = open_console(browser, page_errors, busy_server, 390, "dark")
    assert not page.locator("#console-jump").is_hidden()
    page.click("#console-jump")  # the console over the page, at the top, not 3,000 px down
    box = page.locator("#console").bounding_box()
    assert box["y"] == 0 and box["width"] == 390
    assert page.evaluate("document.activeElement.id") == "term-input"
    run_command(page, "ps python")
    assert page.evaluate(MEASURE) == []
    page.screenshot(path=str(SHOTS / "console-drawer-390.png"))
    page.keyboard.press("Escape")
    assert page.locator("#console").bounding_box()["y"] > 900
    context.close()
    assert page_errors.errors == []


def test_a_private_page_signed_out_shows_the_login_where_the_metrics_go(start_server, browser, page_errors):
    server = start_server()
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = page_errors(context.new_page())
    page.goto(server.base + "/")
    page.wait_for_selector(".lock-gate #login-form:not([hidden])")
    assert page.locator("#console").is_hidden()
    page.fill("#login-token", TOKEN)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#cards")
    wait_state(page, "ws-pill", "open")
    greeting = page.locator("#term-output .term-system").first.inner_text()
    assert " as operator — " in greeting and "[operator]" not in greeting
    context.close()
    assert page_errors.errors == []


def test_an_alert_banner_names_its_host_once(start_server, browser, page_errors):
    server = start_server({"SAMPLE_INTERVAL": "0.5"})
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = page_errors(context.new_page())
    open_with_login_link(page, f"{server.base}/?token={TOKEN}")
    wait_state(page, "sse-pill", "open")
    Console(server.port).ok("alert set cpu >= 0")
    banner = page.wait_for_selector(".banner[data-kind=alert] .banner-text", timeout=5000).inner_text()
    host = page.inner_text("#host-name")
    assert banner.count(host) == 1 and banner.startswith(f"Alert firing on {host}"), banner
    context.close()
    assert page_errors.errors == []


HIDE = """() => {
  for (const [name, value] of [["visibilityState", "hidden"], ["hidden", true]]) {
    Object.defineProperty(document, name, { configurable: true, get: () => value });
  }
  document.dispatchEvent(new Event("visibilitychange"));
}"""
SHOW = """() => { delete document.visibilityState; delete document.hidden;
  document.dispatchEvent(new Event("visibilitychange")); }"""


def test_a_hidden_page_keeps_its_place_and_catches_up_when_shown(start_server, browser, page_errors):
    server = start_server({"SAMPLE_INTERVAL": "0.25"})
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = page_errors(context.new_page())
    open_with_login_link(page, f"{server.base}/?token={TOKEN}")
    wait_state(page, "sse-pill", "open")
    page.wait_for_function("window.dashboard.charts.store.ts.length >= 4")
    page.evaluate(HIDE)
    before = page.evaluate("({...window.dashboard.work, n: window.dashboard.charts.store.ts.length,"
                           " id: window.dashboard.stream.lastId})")
    page.wait_for_function("window.dashboard.stream.skipped >= 8", timeout=15000)
    during = page.evaluate("({...window.dashboard.work, n: window.dashboard.charts.store.ts.length,"
                           " id: window.dashboard.stream.lastId})")
    # Hidden: its place in the stream moved on; nothing was shown, drawn or stored.
    assert during["id"] != before["id"]
    assert (during["samples"], during["draws"], during["n"]) == (before["samples"], before["draws"], before["n"])
    page.evaluate(SHOW)
    page.wait_for_function(f"window.dashboard.work.catchUps === 1 && "
                           f"window.dashboard.charts.store.ts.length >= {before['n'] + 8}", timeout=10000)
    page.wait_for_function("window.dashboard.work.draws > %d" % during["draws"])
    ts = page.evaluate("window.dashboard.charts.store.ts")
    assert ts == sorted(set(ts))  # the history and the stream, each time once
    assert page.inner_text("#sse-facts [data-f='gaps']") == "0"
    context.close()
    assert page_errors.errors == []
