"""Text from others is shown, never obeyed: controls and bidi marks become visible escapes in
the command-line client's output and in notification titles and bodies."""

import json
import re

import pytest

from dashboard.alerts import notify
from dashboard.alerts.rules import Rule, RuleState
from dashboard.console import client
from dashboard.escapes import json_visible, visible

# Every character the escaping covers: C0, DEL, C1, bidi embeddings, overrides, isolates, marks.
HIDDEN = ([chr(c) for c in range(0x20)] + [chr(c) for c in range(0x7F, 0xA0)]
          + [chr(c) for c in range(0x202A, 0x202F)] + [chr(c) for c in range(0x2066, 0x206A)]
          + ["\u200e", "\u200f", "\u061c"])
RAW = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
OSC_TITLE = "\x1b]0;pwn\x07"
OSC52 = "\x1b]52;c;cm0gLXJmIH4K\x07"  # writes "rm -rf ~" to the clipboard
RLO = "\u202eexe.txt"


@pytest.mark.parametrize("char", HIDDEN, ids=lambda c: f"U+{ord(c):04X}")
def test_each_hidden_character_is_shown_as_an_escape(char):
    shown = visible(f"a{char}b")
    assert RAW.search(shown) is None
    assert shown.startswith("a\\") and shown.endswith("b") and len(shown) > 3
    assert visible(shown) == shown  # escaping twice changes nothing


def test_ordinary_text_is_left_as_it_was():
    for text in ("python3 -m http.server", "café über 東京", "C:\\path", "emoji 🙂", "a b"):
        assert visible(text) == text
    assert visible(OSC_TITLE) == "\\x1b]0;pwn\\x07"
    assert visible("\u202eabc") == "\\u202eabc"
    assert visible("a\nb\tc\rd") == "a\\nb\\tc\\rd"


def test_json_output_keeps_the_data_and_loses_the_raw_characters():
    data = {"name": "\u202eabc\x85\x7f\x1b", "rows": [["é", 1]]}
    text = json_visible(json.dumps(data, indent=2, ensure_ascii=False))
    assert RAW.search(text.replace("\n", "")) is None and json.loads(text) == data


def test_the_client_shows_hostile_names_in_tables_details_pushes_and_errors():
    table = client.render({"columns": ["pid", "name", "user", "cpu", "rss"],
                           "rows": [[7, OSC_TITLE, "mallory\u202e", 1.0, 2048], [8, RLO, "x", 0.0, 0]],
                           "total": 2})
    details = client.render({"pid": 7, "name": OSC52, "cmdline": "sleep\n60\t\x1b[2J",
                             "children": {"columns": ["pid", "name"], "rows": [[9, "\x9b31m"]], "total": 1},
                             "values": {"web\x1b-1": 1.0}})
    pushes = [client.render_push({"type": "notice", "by": "bob\x1b[8m", "message": "one\r\ntwo\x07\nthree"}),
              client.render_push({"type": "alert", "state": "firing", "message": f"on {OSC_TITLE}"}),
              client.render_push({"type": "audit", "record": {"operator": "a\u2066", "addr": "1",
                                                              "line": OSC52, "outcome": "ok"}}),
              client.render_push({"type": "other\x1b", "x": "\u202e\x90"})]
    error = client.error_lines({"code": "confirm_required", "message": f"kill 7 ({OSC_TITLE})",
                                "confirm": "confirm A\x1b"})
    for text in [table, details, *pushes, *error, client.render(["\u202e", "\x85"])]:
        assert RAW.search(text.replace("\n", "")) is None, text
    assert "\\x1b]0;pwn\\x07" in table and "\\u202eexe.txt" in table
    assert "sleep\\n60\\t\\x1b[2J" in details and "\\x9b31m" in details
    # A broadcast's own line breaks are kept, as indented lines that cannot pass for the client's.
    assert pushes[0] == "[broadcast from bob\\x1b[8m] one\n    two\\x07\n    three"
    # A value never carries a raw line break: one row is one line.
    assert len(table.splitlines()) == 4 and len(details.splitlines()) == 8


def test_notification_bodies_show_hostile_process_names_as_escapes():
    hostile = [OSC_TITLE, OSC52, RLO, "\u2067x\u2069", "a\nFake: line", "\x9b2J"]
    procs = [{"pid": i, "name": name, "user": "u\u202e", "cpu": 50.0, "rss": 2**20}
             for i, name in enumerate(hostile[:5])]
    sample = {"ts": 1795000000.0, "seq": 1,
              "processes": {"count": 5, "top_cpu": procs, "top_mem": [{**procs[0], "name": hostile[5]}]}}
    rule = Rule("a1", "cpu", ">", 90, 30, "alice")
    firing = notify.transition(rule, RuleState("firing", 1.0, 95), "firing", "web\x1b]0;x\x07", sample)
    resolved = notify.transition(rule, RuleState("ok", None, 5), "resolved", "web-2", sample)
    for group in ([firing], [firing, resolved]):
        title, body = notify.compose(group)
        assert RAW.search(title) is None, title
        assert RAW.search(body.replace("\n", "")) is None, body
        assert "\\x1b]0;pwn\\x07" in body and "\\u202eexe.txt" in body and "\\x9b2J" in body
        # A name with a line break cannot start a line of its own in the message.
        assert not any(line.startswith("Fake:") for line in body.splitlines())
    assert firing["title"] == "[FIRING] cpu > 90 % for 30 s on web\\x1b]0;x\\x07"
    # A record stored before titles were escaped is escaped when it is sent.
    old = {**resolved, "title": f"[RESOLVED] cpu > 90 % on {RLO}"}
    assert "\\u202e" in notify.compose([old])[0] and RAW.search(notify.compose([old])[0]) is None
    assert all(RAW.search(line) is None for line in notify.details(old))
