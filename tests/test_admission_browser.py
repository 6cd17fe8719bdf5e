"""A restart storm's deferral as the page meets it: a page whose stream is told to come back
later (STREAM_OPENS_PER_SECOND) comes back by itself, through the browser's own EventSource
and the `retry:` it was given, and streams on with no gap."""

from tests.support.browser import open_with_login_link, wait_state
from tests.support.waiting import eventually
from tests.support.wsclient import TOKEN

PAGES = 3


def test_pages_told_to_come_back_later_come_back_by_themselves_with_no_gap(start_server, browser, page_errors):
    # One new stream a second, one at once: of three pages reconnecting in the same moment
    # one is let in and two are told to come back (a 200 holding only a retry:).
    server = start_server({"STREAM_OPENS_PER_SECOND": "1", "SAMPLE_INTERVAL": "0.5"})
    armed, held, asked = [False], [], {}

    def route_for(index):
        def route(r):
            if armed[0]:
                asked[index] = asked.get(index, 0) + 1
                if asked[index] == 1:
                    held.append(r)  # its reconnect waits until all three can go at once
                    return
            r.continue_()
        return route

    pages = []
    for index in range(PAGES):  # each its own browser context: its own login and EventSource
        context = browser.new_context(viewport={"width": 1000, "height": 700})
        context.route("**/events?*", route_for(index))
        page = page_errors(context.new_page())
        open_with_login_link(page, f"{server.base}/?token={TOKEN}")
        pages.append((context, page))
    for _context, page in pages:
        wait_state(page, "sse-pill", "open", timeout=60000)
    pages[0][1].wait_for_timeout(1500)  # the bucket fills again: one stream may go in at once
    armed[0] = True
    for _context, page in pages:
        page.evaluate("window.dashboard.stream.source.open()")  # drop and reconnect, Last-Event-ID kept
    eventually(lambda: pages[0][1].evaluate("true") and len(held) == PAGES, timeout=30,
               what="all three reconnects held")  # evaluate() lets the routes run
    for route in held:
        route.continue_()
    for _context, page in pages:
        wait_state(page, "sse-pill", "open", timeout=60000)
        start = page.evaluate("window.dashboard.charts.store.ts.length")
        page.wait_for_function(f"window.dashboard.charts.store.ts.length >= {start + 4}", timeout=60000)
        assert page.locator("#sse-facts [data-f='gaps']").inner_text() == "0"
    # One went in; the others were told to come back, and came back by themselves.
    assert len(asked) == PAGES and sum(1 for n in asked.values() if n >= 2) >= PAGES - 1, asked
    status, _headers, body = server.request("GET", "/metrics")
    line = next(x for x in body.decode().splitlines() if 'reason="stream_deferred"' in x)
    assert status == 200 and float(line.rsplit(" ", 1)[1]) >= PAGES - 1
    for context, _page in pages:
        context.close()
    assert page_errors.errors == []
