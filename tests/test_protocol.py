import json

import pytest

from dashboard.console import protocol
from dashboard.console.protocol import ProtocolError, parse_request


def test_a_good_request():
    assert parse_request('{"id": 7, "line": "status"}') == (7, "status")
    assert parse_request('{"id": "a-1", "line": "top 3"}') == ("a-1", "top 3")


@pytest.mark.parametrize(
    "frame, code, rid",
    [
        ("not json", "bad_json", None),
        ('{"id": 1, "line": "x"', "bad_json", None),
        ("[1, 2]", "bad_request", None),
        ('"status"', "bad_request", None),
        ('{"line": "status"}', "bad_request", None),
        ('{"id": true, "line": "status"}', "bad_request", None),
        ('{"id": null, "line": "status"}', "bad_request", None),
        ('{"id": {"a": 1}, "line": "status"}', "bad_request", None),
        ('{"id": 9007199254740993, "line": "status"}', "bad_request", None),
        ('{"id": "' + "x" * 200 + '", "line": "status"}', "bad_request", None),
        ('{"id": 3}', "bad_request", 3),
        ('{"id": 3, "line": 5}', "bad_request", 3),
        ('{"id": 3, "line": "' + "y" * 5000 + '"}', "bad_request", 3),
        ('{"id": 3, "line": "status", "extra": 1}', "bad_request", 3),
        ("[" * 100000, "bad_json", None),
        (b"\x00\x01binary", "bad_request", None),
    ],
)
def test_malformed_requests_name_the_problem_and_keep_the_id_when_they_can(frame, code, rid):
    with pytest.raises(ProtocolError) as err:
        parse_request(frame)
    assert err.value.code == code
    assert err.value.id == rid
    assert err.value.message


def test_replies_and_pushes():
    assert json.loads(protocol.reply_ok(1, {"a": 1})) == {"id": 1, "ok": True, "result": {"a": 1}}
    err = json.loads(protocol.reply_error("x", "bad_args", "no", usage="top"))
    assert err == {"id": "x", "ok": False, "error": {"code": "bad_args", "message": "no", "usage": "top"}}
    push = json.loads(protocol.push("notice", message="hi"))
    assert push == {"type": "notice", "message": "hi"} and "id" not in push
