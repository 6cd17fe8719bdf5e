"""Chromium from the distribution, driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.support.system import require

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def require_chromium() -> None:
    require("chromium", "chromium", also=(CHROMIUM,))


def launch(playwright, home: str):
    require_chromium()
    os.makedirs(home, exist_ok=True)
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=ARGS,
        env={**os.environ, "HOME": home},
    )


def cleanup(home: str) -> None:
    shutil.rmtree(home, ignore_errors=True)


# ---- helpers for tests that drive the page ---------------------------------


def wait_state(page, pill: str, state: str, timeout: float = 30000) -> None:
    """Wait until a transport pill (sse-pill, ws-pill) shows state. While the page reloads (a login
    on a private page does) the pill is briefly not there: that is "not yet", not an error."""
    page.wait_for_function(f"document.querySelector('#{pill}')?.dataset.state === '{state}'", timeout=timeout)


# The reply to the latest command: the first result or error line after its
# echo (a system line or a push may land in between, e.g. "connected to ...").
_REPLY = """(commands) => {
  const rows = [...document.querySelectorAll('#term-output .term-line')];
  if (rows.filter((r) => r.classList.contains('term-command')).length < commands) return null;
  const echo = rows.map((r) => r.classList.contains('term-command')).lastIndexOf(true);
  const reply = rows.slice(echo + 1).find((r) => r.matches('.term-result, .term-error'));
  return reply ? reply.innerText : null;
}"""


def run_command(page, line: str) -> str:
    """Type a line into the page's console and return the text of its reply."""
    commands = page.locator("#term-output .term-command").count() + 1
    page.fill("#term-input", line)
    page.press("#term-input", "Enter")
    return page.wait_for_function(_REPLY, arg=commands, timeout=5000).json_value()


def open_with_login_link(page, url: str, timeout: float = 60000, tries: int = 3) -> None:
    """Open url (a login link, ...?token=...): the page logs in, then reloads with
    the host's data. Waiting for the cards means waiting for that second load.

    Chromium fails every request in flight with ERR_NETWORK_CHANGED when a network
    interface comes or goes on the machine, as a container's veth does when the
    containers tests (running beside this one) start or stop one: a page whose
    module scripts failed that way never runs. A person reloads; so does this."""
    for attempt in range(1, tries + 1):
        page.goto(url)
        try:
            page.wait_for_selector("#cards", timeout=timeout / tries)
            # The cards are HTML; the page's script ran only if it made its stream.
            page.wait_for_function("() => !!(window.dashboard && window.dashboard.stream)",
                                   timeout=timeout / tries)
            break
        except PlaywrightTimeout:
            if attempt == tries:
                raise
    # The cards come with the HTML; the page's module script runs before "load".
    page.wait_for_load_state("load", timeout=timeout)
