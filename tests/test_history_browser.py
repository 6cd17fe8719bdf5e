"""Long windows in real Chromium: a month of roll-ups with min-max bands, drag to zoom,
double-click back, and one cursor across every chart."""

import time

from tests.support.browser import open_with_login_link, wait_state
from tests.support.wsclient import TOKEN
from tests.support.server import REPO
from tests.support.waiting import eventually
from tests.test_lasting import NAMES, TIERS, month_of_points
from tests.test_page_browser import new_page

from dashboard.store.history_store import HistoryStore

SHOTS = REPO / "artifacts" / "screenshots"
DAY = 86400


def filled_server(start_server, tmp_path):
    """A server whose store already holds a month of this host's roll-ups (with a hole)."""
    now = time.time()
    hole = (now - 10 * DAY, now - 9 * DAY)
    store = HistoryStore(str(tmp_path / "data-app"), TIERS, NAMES, 3600)
    items = [(tier, "web-1", point) for tier, _host, point in month_of_points(now - 3600, hole)]
    store.write_points(items)
    store.close()
    return start_server({"SAMPLE_INTERVAL": "0.5", "HOST_NAME": "web-1"})


# Every chart shows the range the charts' state asks for. Drawing waits for the next
# animation frame after the state changes, so a test waits for this, not only the state.
DRAWN = """(() => {
    const c = window.dashboard.charts;
    const [min, max] = c.range();
    return c.plots.every((p) => Math.abs(p.plot.scales.x.min - min) < 1
                                && Math.abs(p.plot.scales.x.max - Math.max(max, min + 10)) < 1);
})()"""


def wait_drawn(page, state):
    page.wait_for_function(f"({state}) && {DRAWN}", timeout=10000)


def pick(page, seconds, tier):
    page.select_option("#window", str(seconds))
    wait_drawn(page, f"window.dashboard.charts.fixed && window.dashboard.charts.fixed.tier === '{tier}'"
                     f" && window.dashboard.charts.fixed.columns.ts.length > 10")


def test_the_30_day_window_shows_roll_ups_with_bands_and_a_gap(start_server, browser, page_errors, tmp_path):
    server = filled_server(start_server, tmp_path)
    context, page = new_page(browser, page_errors, f"{server.base}/?token={TOKEN}")
    wait_state(page, "sse-pill", "open")
    pick(page, 30 * DAY, "hour")
    info = page.evaluate("""() => {
        const c = window.dashboard.charts;
        const cpu = c.plots.find((p) => p.def.key === "cpu").plot;
        return { step: c.fixed.step, points: cpu.data[0].length, bands: cpu.bands.length,
                 nulls: cpu.data[1].filter((v) => v == null).length,
                 note: document.querySelector('#chart-note').textContent,
                 xmin: cpu.scales.x.min, xmax: cpu.scales.x.max };
    }""")
    assert info["step"] == 3600 and 700 <= info["points"] <= 722 and info["bands"] == 1
    assert info["nulls"] >= 24  # the day the server was down, drawn as a gap
    assert "band = min to max" in info["note"]
    assert info["xmax"] - info["xmin"] > 29 * DAY
    page.wait_for_timeout(300)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#charts").screenshot(path=str(SHOTS / "history-30-days.png"))
    # More than a month of data: the year is offered; a fresh server offers up to 30 days.
    assert page.locator('#window option[value="31536000"]').count() == 1
    fresh = start_server({"SAMPLE_INTERVAL": "0.5"}, name="fresh")
    other_context = browser.new_context()  # its own cookie jar: cookies ignore ports
    other = other_context.new_page()
    open_with_login_link(other, f"{fresh.base}/?token={TOKEN}")
    values = other.eval_on_selector_all("#window option", "els => els.map((e) => Number(e.value))")
    assert values == [300, 900, 3600, 21600, 86400, 604800, 2592000]
    other_context.close()
    # Back to a short window: the charts follow the stream again.
    page.select_option("#window", "300")
    page.wait_for_function("window.dashboard.charts.fixed === null")
    context.close()
    assert page_errors.errors == []


def test_drag_zooms_every_chart_and_double_click_goes_back(start_server, browser, page_errors, tmp_path):
    server = filled_server(start_server, tmp_path)
    context, page = new_page(browser, page_errors, f"{server.base}/?token={TOKEN}")
    wait_state(page, "sse-pill", "open")
    pick(page, 30 * DAY, "hour")
    over = page.locator("[data-chart=cpu] .u-over")
    box = over.bounding_box()
    y = box["y"] + box["height"] / 2
    # Drag across the last thirtieth of the chart: about a day, so minute roll-ups come back.
    page.mouse.move(box["x"] + box["width"] * 0.96, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.98, y, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.995, y, steps=5)
    page.mouse.up()
    wait_drawn(page, "window.dashboard.charts.zooms.length === 1 && window.dashboard.charts.fixed.tier === 'minute'")
    spans = page.evaluate("""() => window.dashboard.charts.plots.map((p) => p.plot.scales.x.max - p.plot.scales.x.min)""")
    assert all(abs(s - spans[0]) < 1 for s in spans) and spans[0] < 2 * DAY  # every chart zoomed alike
    page.mouse.dblclick(box["x"] + box["width"] / 2, y)
    wait_drawn(page, "window.dashboard.charts.zooms.length === 0 && window.dashboard.charts.fixed.tier === 'hour'")
    spans = page.evaluate("""() => window.dashboard.charts.plots.map((p) => p.plot.scales.x.max - p.plot.scales.x.min)""")
    assert all(s > 29 * DAY for s in spans)
    context.close()
    assert page_errors.errors == []


def test_a_window_left_before_its_answer_came_does_not_keep_refreshing(start_server, browser, page_errors,
                                                                     tmp_path):
    # Long windows refresh each minute. One picked and left while its answer was on its way must
    # not leave a timer behind: a page open all day would fetch for every such window.
    server = filled_server(start_server, tmp_path)
    context, page = new_page(browser, page_errors, f"{server.base}/?token={TOKEN}")
    wait_state(page, "sse-pill", "open")
    page.clock.install()
    held = []
    page.route("**/api/history?seconds=2592000*", lambda route: held.append(route))
    page.select_option("#window", str(30 * DAY))
    # Each evaluate lets Playwright run the route handler meanwhile.
    eventually(lambda: page.evaluate("true") and held, timeout=10, what="the month's request held")
    pick(page, 7 * DAY, "minute")
    with page.expect_response(lambda r: "seconds=2592000" in r.url):
        held[0].continue_()
    page.wait_for_function("new Promise((ok) => setTimeout(() => ok(true), 0))")  # its answer handled
    asked = []
    page.on("request", lambda r: asked.append(r.url) if "/api/history" in r.url else None)
    with page.expect_request(lambda r: "seconds=604800" in r.url):
        page.clock.run_for(61_000)
    page.evaluate("1")
    assert not [u for u in asked if "seconds=2592000" in u], asked
    context.close()
    assert page_errors.errors == []


def test_one_cursor_moves_on_every_chart(start_server, browser, page_errors, tmp_path):
    server = filled_server(start_server, tmp_path)
    context, page = new_page(browser, page_errors, f"{server.base}/?token={TOKEN}")
    wait_state(page, "sse-pill", "open")
    pick(page, 7 * DAY, "minute")
    box = page.locator("[data-chart=load] .u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] / 2, steps=4)
    page.wait_for_timeout(200)
    cursors = page.evaluate("""() => window.dashboard.charts.plots.map((p) => p.plot.cursor.idx)""")
    assert cursors[0] is not None and len(set(cursors)) == 1, cursors  # the same time everywhere
    context.close()
    assert page_errors.errors == []


def test_a_young_install_asked_for_a_month_shows_its_data_not_a_month_of_blank(start_server, browser, page_errors):
    server = start_server({"SAMPLE_INTERVAL": "0.5"})
    context, page = new_page(browser, page_errors, f"{server.base}/?token={TOKEN}")
    wait_state(page, "sse-pill", "open")
    page.select_option("#window", str(30 * DAY))
    wait_drawn(page, "window.dashboard.charts.fixed && window.dashboard.charts.firstData() !== null")
    info = page.evaluate("""() => {
        const c = window.dashboard.charts;
        const cpu = c.plots.find((p) => p.def.key === "cpu").plot;
        return { first: c.firstData(), step: c.fixed.step, since: c.fixed.since,
                 xmin: cpu.scales.x.min, xmax: cpu.scales.x.max,
                 note: document.querySelector('#chart-note').textContent };
    }""")
    assert info["since"] < info["first"] - 20 * DAY  # the answer covers the month asked for...
    assert info["xmax"] - info["xmin"] <= 11 * info["step"]  # ...the chart shows where there is data
    assert info["xmin"] <= info["first"]
    assert "Data since" in info["note"]
    context.close()
    assert page_errors.errors == []
