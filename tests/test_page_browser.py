"""The dashboard page in real Chromium against the real server."""


def test_page_loads_clean_and_charts_move(start_server, browser, page_errors):
    server = start_server({"SAMPLE_INTERVAL": "0.25"})
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = page_errors(context.new_page())
    page.goto(server.base + "/")
    page.wait_for_function("document.querySelector('#sse-pill').dataset.state === 'open'", timeout=10000)
    first = page.evaluate("window.dashboard.charts.store.ts.length")
    page.wait_for_function(f"window.dashboard.charts.store.ts.length >= {first} + 4", timeout=10000)
    assert page.locator('[data-v="cpu"]').inner_text().endswith("%")
    assert page.locator("#procs tbody tr").count() == 10
    assert page.locator("#charts .chart canvas").count() == 5
    assert page.locator('[data-f="gaps"]').inner_text() == "0"
    context.close()
    assert page_errors.errors == []
