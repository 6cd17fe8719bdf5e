"""The server's real stream, read by a strict WHATWG parser and by Chromium's EventSource."""

import json
import shlex

from tests.support.sseclient import SSEClient
from tests.support.wsclient import TOKEN, Console

TRICKY = [
    "line one\nline two",
    "data: forged\n\nevent: alert\nid: 999999999999999-0\ndata: {}",
    "carriage\rreturns\r\nand CRLF",
    "  leading spaces, a colon: and a trailing space ",
    "ünïcødé 🚀 \u2028 \u2029 \x0b\x0c",
    ": looks like a comment",
    "retry: 1",
    "\n\nblank lines around\n\n",
]


def test_strict_parser_and_chromium_agree_and_user_text_cannot_forge_events(start_server, browser, page_errors):
    server = start_server({"SAMPLE_INTERVAL": "0.5", "HEARTBEAT_SECONDS": "0.3"})
    context = browser.new_context()
    page = page_errors(context.new_page())
    page.goto(server.base + "/healthz")
    # EventSource sends cookies, not headers: log this browser in first (a viewer would do).
    page.evaluate("""(token) => fetch('/login', {method: 'POST', headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({token})}).then(r => { if (!r.ok) throw new Error('login ' + r.status); })""",
                  TOKEN)
    page.evaluate("""() => {
        window.seen = []; window.opened = false;
        const es = new EventSource('/events');
        es.onopen = () => { window.opened = true; };
        for (const t of ['metrics', 'notice', 'config', 'alert', 'resync', 'message'])
            es.addEventListener(t, (e) => window.seen.push({type: e.type, data: e.data, id: e.lastEventId}));
    }""")
    page.wait_for_function("window.opened")
    raw = SSEClient(server.port)
    raw.wait_for(lambda c: c.parser.comments, timeout=5)
    op = Console(server.port)
    for text in TRICKY:
        op.ok("broadcast " + shlex.quote(text))  # one quoted string: sent exactly
    raw.wait_for(lambda c: len(c.events_of("notice")) == len(TRICKY), timeout=10)
    page.wait_for_function(f"window.seen.filter(e => e.type === 'notice').length === {len(TRICKY)}")
    n = len(raw.events_of("metrics"))
    raw.read_events(n + 3)  # a few samples after the notices, seen by both
    page.wait_for_function(f"window.seen.filter(e => e.id === '{raw.events_of('metrics')[-1].last_event_id}').length")

    # Each message is one notice event, intact, in order.
    notices = raw.events_of("notice")
    assert [json.loads(e.data)["message"] for e in notices] == TRICKY
    assert b"\r" not in raw.raw  # no raw CR from user text, anywhere in the stream
    assert not raw.parser.anomalies
    assert raw.parser.retry == 2000 and "heartbeat" in raw.parser.comments
    assert all(e.type in ("metrics", "notice") for e in raw.parser.events)  # nothing forged

    # Chromium saw the same events with the same ids and data.
    seen = page.evaluate("window.seen")
    ours = {e.last_event_id: (e.type, e.data) for e in raw.parser.events}
    common = [s for s in seen if s["id"] in ours]
    assert len(common) >= len(TRICKY) + 2
    for s in common:
        assert ours[s["id"]] == (s["type"], s["data"])
    ids = [s["id"] for s in seen]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    raw.close()
    context.close()
    assert page_errors.errors == []
