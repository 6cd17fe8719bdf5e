"""Logs, request ids, /metrics, forwarding headers and the Host allowlist (unit level)."""

import json
import logging
import os

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dashboard import create_app
from dashboard.logs import JsonFormatter, request_id
from dashboard.web.proxy import allowed_hosts, host_allowed, hostname
from tests.conftest import TOKEN


def json_lines(caplog):
    fmt = JsonFormatter()
    return [json.loads(fmt.format(r)) for r in caplog.records]


def test_every_request_is_one_json_line_with_its_id(client, caplog):
    with caplog.at_level(logging.INFO, logger="dashboard.request"):
        r = client.get(f"/?token={TOKEN}", headers={"X-Request-ID": "router-abc-123456"})
        r2 = client.get("/healthz")
    assert r.headers["X-Request-ID"] == "router-abc-123456"
    assert len(r2.headers["X-Request-ID"]) == 32  # made here when the router sent none
    lines = [line for line in json_lines(caplog) if line["msg"] == "request"]
    assert [(x["path"], x["status"], x["request_id"]) for x in lines] == [
        ("/", 200, "router-abc-123456"), ("/healthz", 200, r2.headers["X-Request-ID"])]
    assert TOKEN not in caplog.text  # the query string is never logged
    assert all(isinstance(x["ms"], float) and x["method"] == "GET" for x in lines)


@pytest.mark.parametrize("header", ["", "short", "has spaces in it", "x" * 65, "ok\nforged"])
def test_odd_request_ids_are_replaced(header):
    assert request_id(header) != header and len(request_id(header)) == 32


def test_json_formatter_keeps_one_line_and_the_exception():
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logging.getLogger("x").makeRecord("x", logging.ERROR, "f", 1, "failed", (), None)
        import sys

        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["level"] == "error" and "ValueError: boom" in parsed["exception"]


def metrics(client):
    text = client.get("/metrics").get_data(as_text=True)
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_say_their_charset_once(client):
    content_type = client.get("/metrics").headers["Content-Type"]
    assert content_type.startswith("text/plain; version=") and content_type.count("charset") == 1, content_type


def test_metrics_carry_the_host_and_the_apps_own_numbers(client, svc):
    svc.sampler.tick()
    svc.sampler.tick()
    families = metrics(client)
    host = svc.host
    cpu = families["dashboard_host_cpu_percent"].samples[0]
    assert cpu.labels == {"host": host} and 0 <= cpu.value <= 100
    cores = {s.labels["core"] for s in families["dashboard_host_cpu_core_percent"].samples}
    assert cores == {str(i) for i in range(os.cpu_count())}
    assert families["dashboard_host_memory_total_bytes"].samples[0].value > 0
    assert any(s.labels["mount"] == "/" for s in families["dashboard_host_disk_used_bytes"].samples)
    assert families["dashboard_events_published"].samples[0].value == 2
    assert families["dashboard_viewers"].samples[0].value == 0
    assert families["dashboard_consoles"].samples[0].value == 0


def test_metrics_leave_out_what_a_sample_of_another_shape_lacks_and_never_fail(client, svc):
    # A host's latest sample can come from another process through Redis (an agent of another
    # version, synthetic history): rows without their label and figures that are not numbers are
    # left out; a sample of another shape costs that host's figures only.
    view = next(iter(svc.views))
    view.latest = {"ts": 1, "cpu": {"percent": "n/a", "per_core": [12.5]},
                   "disks": [{"used": 5, "total": 10}, {"mount": "/data", "used": 7, "total": 9}],
                   "net": {"interfaces": [{"rx_bps": 1.0}]}, "memory": {"used": 3, "total": 4}}
    families = metrics(client)
    assert [s.labels["mount"] for s in families["dashboard_host_disk_used_bytes"].samples] == ["/data"]
    assert families["dashboard_host_cpu_core_percent"].samples[0].value == 12.5
    assert not families["dashboard_host_cpu_percent"].samples
    assert not families["dashboard_host_network_receive_bytes_per_second"].samples
    view.latest = {"ts": 1, "cpu": 57, "disks": "none"}  # another shape altogether
    assert client.get("/metrics").status_code == 200
    assert "dashboard_viewers" in metrics(client)


def test_command_counts_and_latency_are_exported(svc, client):
    from dashboard.console.operator import Operator
    from dashboard.console.sessions import ConsoleSession

    class WS:
        def send(self, text):
            pass

    session = ConsoleSession(WS(), Operator("a", "operator", "s", "x", "bearer"), svc.desk)
    svc.sampler.tick()
    for line in ("status", "status", "nope"):
        session.handle(json.dumps({"id": 1, "line": line}))
    families = metrics(client)
    counts = {(s.labels["command"], s.labels["outcome"]): s.value
              for s in families["dashboard_commands"].samples if s.name.endswith("_total")}
    assert counts == {("status", "ok"): 2, ("?", "unknown_command"): 1}
    buckets = [s for s in families["dashboard_command_seconds"].samples
               if s.name.endswith("_count") and s.labels["command"] == "status"]
    assert buckets[0].value == 2


@pytest.mark.parametrize(
    "header, allowlist, ok",
    [
        ("127.0.0.1:8000", ("127.0.0.1", "localhost", "::1"), True),
        ("localhost", ("127.0.0.1", "localhost", "::1"), True),
        ("[::1]:8000", ("127.0.0.1", "localhost", "::1"), True),
        ("evil.example:8000", ("127.0.0.1", "localhost", "::1"), False),
        ("127.0.0.1.evil.example", ("127.0.0.1", "localhost", "::1"), False),
        ("dash.example.com", (".example.com",), True),
        ("example.com", (".example.com",), True),
        ("badexample.com", (".example.com",), False),
        ("anything", ("*",), True),
        ("DASH.EXAMPLE.COM:443", ("dash.example.com",), True),
    ],
)
def test_host_allowlist(header, allowlist, ok):
    assert host_allowed(header, allowlist) is ok


def test_allowed_hosts_defaults_follow_the_bind_address():
    assert allowed_hosts((), "127.0.0.1") == ("127.0.0.1", "localhost", "::1")
    assert allowed_hosts((), "0.0.0.0") == ("*",)
    assert allowed_hosts(("Dash.Example.com",), "0.0.0.0") == ("dash.example.com",)
    assert hostname("[::1]:80") == "::1"


def test_dns_rebinding_gets_400(tmp_path):
    app = create_app({"HOST": "127.0.0.1", "OPERATOR_TOKEN": TOKEN, "AUDIT_DB": str(tmp_path / "a.db"),
                      "DATA_DIR": str(tmp_path / "data")})
    c = app.test_client()
    assert c.get("/healthz", headers={"Host": "127.0.0.1:8000"}).status_code == 200
    r = c.get("/events", headers={"Host": "attacker.example:8000"})
    assert r.status_code == 400 and r.json["error"]["code"] == "host_not_allowed"
    app.extensions["dashboard"].shutdown()


def test_forwarding_headers_only_from_trusted_proxies(tmp_path):
    def build(allow):
        return create_app({"OPERATOR_TOKEN": TOKEN, "AUDIT_DB": str(tmp_path / f"{allow}.db"),
                           "DATA_DIR": str(tmp_path / f"data-{allow}"),
                           "FORWARDED_ALLOW_IPS": allow, "ALLOWED_HOSTS": ("*",)})

    headers = {"X-Forwarded-Prefix": "/monitor", "X-Forwarded-Host": "dash.example.com",
               "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    trusted = build("127.0.0.1").test_client().get("/", headers=headers).get_data(as_text=True)
    assert 'data-base="/monitor"' in trusted and "/monitor/static/js/main.js" in trusted
    untrusted = build("10.1.1.1").test_client().get("/", headers=headers).get_data(as_text=True)
    assert 'data-base=""' in untrusted and '"/static/js/main.js"' in untrusted


def test_a_connection_caught_by_a_stopping_worker_is_one_warning_not_a_traceback():
    import errno
    import logging
    import socket as stdsocket

    from dashboard.logs import ClosedListenerFilter, JsonFormatter

    def record_of(raise_it):
        try:
            raise_it()
        except OSError:
            import sys
            return logging.LogRecord("gunicorn.error", logging.ERROR, __file__, 1,
                                     "Socket error processing request.", (), sys.exc_info())

    closed = stdsocket.socket()
    closed.close()

    def getsockname():  # what gunicorn's handler calls on the listener a stopping worker closed
        closed.getsockname()

    shutdown = record_of(getsockname)
    assert shutdown.exc_info[1].errno == errno.EBADF
    assert ClosedListenerFilter().filter(shutdown)
    line = JsonFormatter().format(shutdown)
    assert shutdown.levelname == "WARNING" and "Traceback" not in line and "worker stopped" in line

    def other():  # any other bad descriptor is still an error with its traceback
        raise OSError(errno.EBADF, "Bad file descriptor")

    fault = record_of(other)
    assert ClosedListenerFilter().filter(fault)
    assert fault.levelname == "ERROR" and "Traceback" in JsonFormatter().format(fault)
