"""Property-based tests: no input crashes the parser, the commands, the envelope
or the encoder, and no input gets past the role allowlist."""

import json
import re

import gevent
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dashboard.console import cmdline

from dashboard.console import commands

from dashboard.console import protocol

from dashboard.stream import sse
from dashboard.console.operator import Operator
from dashboard.console.cmdline import ArgError
from dashboard.console.commands import CommandError
from dashboard.console.operator import ROLES
from dashboard.stream.hub import Hub
from dashboard.console.protocol import ProtocolError
from tests.support.sseclient import SSEParser

CODES = {"bad_request", "bad_args", "unknown_command", "forbidden", "not_found", "confirm_required",
         "unavailable"}
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
OPERATOR = Operator("op", "operator", "s1", "127.0.0.1", "bearer")
OBSERVER = Operator("ob", "observer", "s2", "127.0.0.1", "bearer")

words = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
names = st.sampled_from(sorted(commands.REGISTRY))
lines = st.one_of(
    st.text(max_size=200),
    st.builds(lambda n, ws: " ".join([n, *ws]), names, st.lists(words, max_size=6)),
    st.builds(lambda n, ws: n + " " + " ".join(ws), names,
              st.lists(st.sampled_from(["--sort", "--host", "--for", "--signal", "--", "-1", "1e9", "nan",
                                        "'", '"', "\\", "all", "cpu", ">", "0.25", "x" * 70]), max_size=8)),
)


@FAST
@given(st.text(max_size=300))
def test_splitting_never_fails_but_with_arg_error(text):
    try:
        out = cmdline.split(text)
    except ArgError as exc:
        assert "cannot split the line" in str(exc)
    else:
        assert all(isinstance(w, str) for w in out)


@FAST
@given(lines, st.sampled_from([OPERATOR, OBSERVER]))
def test_every_line_resolves_or_gives_a_known_error_and_roles_hold(line, who):
    try:
        cmd, values = commands.resolve(line, who)
    except CommandError as exc:
        assert exc.code in CODES and exc.message
        json.dumps({"message": exc.message, **exc.extra})
    else:
        assert ROLES[cmd.role] <= ROLES[who.role]  # an observer never reaches an operator command
        assert set(values) == {p.name for p in cmd.args}


@FAST
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200),
                 st.builds(json.dumps, st.recursive(
                     st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
                     lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
                     max_leaves=10)),
                 st.builds(lambda i, text: json.dumps({"id": i, "line": text}),
                           st.one_of(st.integers(), st.text(max_size=140), st.floats(allow_nan=False)),
                           st.text(max_size=50))))
def test_the_envelope_parses_or_names_the_problem(frame):
    try:
        rid, line = protocol.parse_request(frame)
    except ProtocolError as exc:
        assert exc.code in ("bad_json", "bad_request")
        reply = json.loads(protocol.reply_error(exc.id, exc.code, exc.message))
        assert reply["ok"] is False
    else:
        assert isinstance(line, str)
        assert json.loads(protocol.reply_ok(rid, None))["id"] == rid


safe_field = st.text(alphabet=st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)),
                     min_size=1, max_size=30)


@FAST
@given(st.text(max_size=300), safe_field, safe_field)
def test_any_data_round_trips_through_the_strict_parser(data, event, ev_id):
    parser = SSEParser()
    parser.feed(sse.frame(data, event=event, id=ev_id).decode("utf-8", "surrogatepass"))
    (ev,) = parser.events
    assert ev.data == re.sub(r"\r\n|\r", "\n", data)
    assert ev.type == event and ev.last_event_id == ev_id
    assert not parser.anomalies


@FAST
@given(st.builds(lambda a, c, b: a + c + b, st.text(max_size=12), st.sampled_from(["\r", "\n", "\x00", "\r\n"]),
                 st.text(max_size=12)))
def test_line_breaks_can_never_enter_a_field(bad):
    for kwargs in ({"id": bad}, {"event": bad}):
        try:
            sse.frame("x", **kwargs)
        except ValueError:
            continue
        raise AssertionError(f"accepted {kwargs!r}")


@FAST
@given(st.text(max_size=80))
def test_any_last_event_id_opens_a_stream(last):
    hub = Hub()
    for i in range(3):
        hub.publish_raw("notice", json.dumps({"i": i}))
    sub, preamble = hub.open(last)
    assert preamble.startswith(b"retry: ")
    hub.close(sub, "done")
    hub.release(sub)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.text(max_size=120), lines.map(lambda text: json.dumps({"id": 1, "line": text}))),
                min_size=1, max_size=5))
@example(['{"id": 1, "line": "help \' \'"}'])  # found by this test once: a blank command name
def test_any_frames_get_exactly_one_reply_each(svc, frames):
    from dashboard.console.sessions import ConsoleSession

    sent = []

    class WS:
        def send(self, text):
            sent.append(json.loads(text))

    svc.config.update(ALLOW_PROCESS_CONTROL=False)
    # Rate limits are not what this is about (a costly command such as proc takes 15 at once): the
    # connection's and the login's budgets (the latter kept across sessions) must not run dry.
    svc.desk.rate, svc.desk.burst = 10_000.0, 10_000
    svc.desk.logins.rate, svc.desk.logins.burst = 10_000.0, 10_000
    session = ConsoleSession(WS(), OPERATOR, svc.desk)
    for f in frames:
        session.handle(f)
    gevent.sleep(0.01)
    replies = [m for m in sent if "ok" in m]
    assert len(replies) == len(frames)
    assert all(m["ok"] or m["error"]["code"] in CODES | {"bad_json", "internal"} for m in replies)
    assert not [m for m in replies if not m["ok"] and m["error"]["code"] == "internal"]
    session.writer.kill()
