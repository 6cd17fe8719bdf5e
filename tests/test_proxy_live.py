"""Behind a real nginx at /monitor/, gzip on: URLs, the stream and the socket all work."""

import re
import urllib.request

import pytest

from tests.support.browser import open_with_login_link
from tests.support.nginx import Nginx
from tests.support.sseclient import SSEClient
from tests.support.wsclient import TOKEN, Console


@pytest.fixture
def proxied(start_server, tmp_path):
    server = start_server({"SAMPLE_INTERVAL": "0.5"})
    nginx = Nginx(tmp_path / "nginx", server.port).start()
    yield server, nginx
    nginx.stop()


def test_page_urls_carry_the_prefix(proxied):
    server, nginx = proxied
    with urllib.request.urlopen(nginx.base + "/", timeout=10) as resp:
        html = resp.read().decode()
    assert 'data-base="/monitor"' in html
    for url in re.findall(r'(?:href|src)="(/[^"]*)"', html):
        assert url.startswith("/monitor/"), url
        with urllib.request.urlopen(f"http://127.0.0.1:{nginx.port}{url}", timeout=10) as resp:
            assert resp.status == 200


def test_each_event_comes_through_gzip_on_its_own(start_server, tmp_path):
    # No wall-time bound (a busy machine makes any one late): nothing else is
    # published for a minute (a sample a minute, heartbeats every 50 s), so a
    # proxy that held compressed bytes back until more came would never hand
    # over the broadcast's notice within the wait.
    server = start_server({"SAMPLE_INTERVAL": "60", "HEARTBEAT_SECONDS": "50"})
    nginx = Nginx(tmp_path / "nginx", server.port).start()
    try:
        with SSEClient(nginx.port, path="/monitor/events", headers={"Accept-Encoding": "gzip"}) as viewer:
            assert viewer.status == 200 and viewer.headers.get("content-encoding") == "gzip"
            assert viewer.wait_for(lambda c: b": connected" in c.raw, timeout=30), viewer.raw
            op = Console(server.port)
            for i in range(3):
                op.ok(f"broadcast flushed {i}")
                assert viewer.wait_for(lambda c, n=i + 1: len(c.events_of("notice")) >= n, timeout=30), \
                    viewer.raw[-300:]
                assert viewer.parser.events[-1].json["message"] == f"flushed {i}"
            op.close()
        assert not viewer.parser.anomalies
    finally:
        nginx.stop()


def test_the_whole_page_works_through_the_proxy(proxied, browser, page_errors):
    server, nginx = proxied
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = page_errors(context.new_page())
    open_with_login_link(page, f"{nginx.base}/?token={TOKEN}")
    page.wait_for_function("document.querySelector('#sse-pill').dataset.state === 'open'", timeout=10000)
    page.wait_for_function("document.querySelector('#ws-pill').dataset.state === 'open'", timeout=10000)
    assert page.url == nginx.base + "/"  # the token left the address bar, the prefix stayed
    page.fill("#term-input", "status")
    page.press("#term-input", "Enter")
    page.wait_for_function("document.querySelector('#term-output').textContent.includes('events_published')")
    page.wait_for_function("window.dashboard.charts.store.ts.length >= 4", timeout=10000)
    context.close()
    assert page_errors.errors == []
