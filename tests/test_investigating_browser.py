"""The page as an investigator uses it, in real Chromium: long console outputs never widen the
page (desktop and phone), and a process opens in the console from its row or from `proc <pid>`,
with its kill going through the usual confirmation."""

import subprocess
import sys
import time

import pytest

from tests.support.browser import open_with_login_link, run_command, wait_state
from tests.support.server import REPO
from tests.support.wsclient import TOKEN, Console

SHOTS = REPO / "artifacts" / "screenshots"
MARKER = "investigate-me-" + "x" * 150  # a long command line, one unbroken word


def open_page(browser, page_errors, server, width, height, scheme="light"):
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
    page = page_errors(context.new_page())
    open_with_login_link(page, f"{server.base}/?token={TOKEN}")
    wait_state(page, "ws-pill", "open")
    return context, page


def page_width(page) -> dict:
    return page.evaluate("""(() => ({
        page: document.scrollingElement.scrollWidth, screen: window.innerWidth,
        output: document.querySelector('#term-output').scrollWidth,
        outputBox: document.querySelector('#term-output').clientWidth }))()""")


def assert_fits(page, after):
    w = page_width(page)
    assert w["page"] <= w["screen"], (after, w)
    # Long lines wrap; only a table may scroll, inside its own box.
    assert w["output"] <= w["outputBox"] + 1, (after, w)


@pytest.fixture
def sleeper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", MARKER])
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("width, height", [(1440, 1000), (390, 844)])
def test_long_outputs_never_widen_the_page(start_server, browser, page_errors, width, height):
    server = start_server({"SAMPLE_INTERVAL": "0.5"})
    op = Console(server.port, name="sam")
    for n in range(3):
        op.ok(f"alert set disk:/ > {90 + n} --for 30")
    op.ok("broadcast " + "a-very-long-word-without-spaces-" * 8)
    context, page = open_page(browser, page_errors, server, width, height)
    page.wait_for_selector("#procs tbody tr", timeout=10000)
    assert_fits(page, "load")
    for line in ("help", "clients", "audit", "audit 50", "alert list", "status", "top 20",
                 "ps " + "z" * 60, "notify list", "alert history", "help alert set"):
        run_command(page, line)
        page.wait_for_timeout(50)
        assert_fits(page, line)
    context.close()
    assert page_errors.errors == []


@pytest.mark.parametrize("width, height, scheme, name", [
    (1440, 1000, "dark", "desktop-dark"), (1440, 1000, "light", "desktop-light"),
    (390, 844, "light", "phone-light"), (390, 844, "dark", "phone-dark"),
])
def test_a_process_opens_from_its_row_and_from_proc(start_server, browser, page_errors, sleeper,
                                                     width, height, scheme, name):
    # `proc` costs PROC_COST (15) requests of the rate limits (about one a second at the defaults): lifted
    # here, where four come within a second or two; the limits have tests of their own.
    server = start_server({"SAMPLE_INTERVAL": "0.25", "ALLOW_PROCESS_CONTROL": "1", "CONSOLE_RATE": "1000",
                           "CONSOLE_BURST": "1000", "CONSOLE_LOGIN_RATE": "1000", "CONSOLE_LOGIN_BURST": "1000"})
    context, page = open_page(browser, page_errors, server, width, height, scheme)

    # From a row of the top table.
    rows = "[...document.querySelectorAll('#procs tbody tr')].map((tr) => Number(tr.dataset.pid))"
    page.locator("#procs tbody tr").first.wait_for(timeout=10000)
    listed = set(page.evaluate(rows))
    page.locator("#procs tbody tr").first.click()
    view = page.locator("#term-output .proc-view").last
    view.wait_for(timeout=5000)
    pid = int(view.get_attribute("data-pid"))
    assert pid in listed | set(page.evaluate(rows))
    assert page.locator("#term-output .term-command").last.inner_text() == f"proc {pid}"
    assert "command" in view.inner_text() and "connections" in view.inner_text()
    assert_fits(page, "proc from a row")

    # From `proc <pid>` for a process this test started: its own command line.
    run_command(page, f"proc {sleeper.pid}")
    view = page.locator(f"#term-output .proc-view[data-pid='{sleeper.pid}']").last
    view.wait_for(timeout=5000)
    text = view.inner_text()
    assert MARKER in text.replace("\n", "") and "sleeping" in text
    assert "not watched yet" in text  # not in the top tables: its trail starts with this question
    time.sleep(1.5)  # a few samples at 0.25 s
    view.locator("button", has_text="refresh").click()
    page.wait_for_function(
        f"document.querySelectorAll(\"#term-output .proc-view[data-pid='{sleeper.pid}']\").length === 2")
    again = page.locator(f"#term-output .proc-view[data-pid='{sleeper.pid}']").last
    assert "samples" in again.inner_text() and again.locator("canvas.proc-spark").count() == 2
    assert_fits(page, "proc <pid>")
    page.evaluate("window.scrollTo(0, 0)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"proc-{name}.png"), full_page=True)

    # Its kill button is the ordinary kill: a confirmation first, then the signal.
    again.locator("button", has_text="kill").click()
    confirm = page.locator("#term-output .term-error .term-confirm").last
    confirm.wait_for(timeout=5000)
    assert "confirm_required" in page.locator("#term-output .term-error").last.inner_text()
    assert sleeper.poll() is None
    confirm.click()
    sleeper.wait(timeout=10)
    assert sleeper.returncode == -15  # SIGTERM
    context.close()
    assert page_errors.errors == []
