"""The fleet page in real Chromium: live rows, names as text, filters, a click to the host page."""

import subprocess
import sys

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


def test_a_thousand_simulated_hosts_stay_live_from_phone_width_to_a_wall(start_server, redis_server, browser,
                                                                         page_errors, tmp_path):
    # bench/fleet_sim.py writes what 1,000 samplers write for the fleet view into a real redis-server
    # (every 2 s here: the suite shares two cores); three of them stop after their first write.
    sim_log = open(tmp_path / "fleet_sim.log", "wb")
    sim = subprocess.Popen([sys.executable, "-m", "bench.fleet_sim", "--redis", redis_server.url, "--hosts", "1000",
                            "--seconds", "900", "--interval", "2", "--stale", "3"],
                           cwd=REPO, stdout=sim_log, stderr=subprocess.STDOUT)
    sim_log.close()
    try:
        server = start_server({"REDIS_URL": redis_server.url, "SAMPLE_INTERVAL": "1", "HOST_STALE_SECONDS": "10",
                               "HOST_NAME": "front"})
        shots = []
        for width, height, scheme in ((390, 844, "light"), (390, 844, "dark"), (1920, 1080, "light"),
                                      (1920, 1080, "dark")):
            context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
            page = page_errors(context.new_page())
            open_with_login_link(page, f"{server.base}/?token={TOKEN}")
            page.goto(f"{server.base}/fleet")
            # Every simulated host and this one, the three silent ones marked stale by the web process.
            page.wait_for_function("document.getElementById('fl-count').textContent.startsWith('1001 hosts')",
                                   timeout=60000)
            page.wait_for_function("document.getElementById('fl-count').textContent.endsWith(' 3 stale')",
                                   timeout=60000)
            page.wait_for_function("document.querySelectorAll('.fl-row').length === 1001", timeout=30000)
            assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing wider than the screen
            # Worst first: a firing host leads.
            assert page.locator(".fl-row").first.get_attribute("data-state") == "alerts"
            # Live with a thousand: one host's CPU cell is rewritten as its summaries come.
            page.locator("#fl-filter").fill("web-0001")
            page.wait_for_function("document.querySelectorAll('.fl-row').length === 1")
            cpu = page.locator(".fl-row .fl-num").first
            before = cpu.inner_text()
            page.wait_for_function(f"document.querySelector('.fl-row .fl-num').textContent !== {before!r}",
                                   timeout=30000)
            page.locator("#fl-filter").fill("db-")
            page.wait_for_function("document.querySelectorAll('.fl-row').length === 250")
            assert all(name.startswith("db-") for name in page.locator(".fl-name").all_inner_texts())
            page.locator("#fl-filter").fill("")
            page.wait_for_function("document.querySelectorAll('.fl-row').length === 1001")
            SHOTS.mkdir(parents=True, exist_ok=True)
            shot = SHOTS / f"fleet-1000-{width}-{scheme}.png"
            page.screenshot(path=str(shot))
            shots.append(shot)
            context.close()
        assert all(shot.stat().st_size > 10_000 for shot in shots)
        assert sim.poll() is None, (tmp_path / "fleet_sim.log").read_text()  # the simulator kept writing
        assert page_errors.errors == []
    finally:
        sim.kill()
        sim.wait(10)
