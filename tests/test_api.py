"""HTTP endpoints through Flask's test client (unit level; live tests use gunicorn)."""

import json

from tests.conftest import METRICS
from tests.support.sseclient import SSEParser


def test_snapshot_is_503_until_the_first_sample_then_the_sample(client, svc):
    r = client.get("/api/snapshot")
    assert r.status_code == 503 and r.json["error"]["code"] == "no_sample"
    svc.sampler.tick()
    r = client.get("/api/snapshot")
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.json["seq"] == 1 and r.json["host"] == svc.host


def test_history_validates_seconds(client, svc):
    svc.sampler.tick()
    svc.sampler.tick()
    r = client.get("/api/history?seconds=60")
    assert r.status_code == 200 and r.json["count"] == 2
    assert r.json["last_event_id"] == svc.hub.head.id
    for bad in ("0", "-1", "abc", "nan", "inf", "99999999999"):
        r = client.get(f"/api/history?seconds={bad}")
        assert r.status_code == 400, bad
        assert r.json["error"]["code"] == "bad_request"
        assert "seconds must be" in r.json["error"]["message"]


def test_healthz_reports_sampler_age_and_subscribers(client, svc):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json["sampler"]["state"] == "starting"
    svc.sampler.tick()
    body = client.get("/healthz").json
    assert body["sampler"]["state"] == "sampling" and body["sampler"]["age"] < 1
    assert body["subscribers"] == 0


def test_healthz_is_503_when_the_sampler_is_stuck(client, svc):
    svc.sampler.tick()
    svc.local.latest_at -= 60  # no sample has arrived for a minute
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json["status"] == "unhealthy" and r.json["sampler"]["state"] == "stuck"
    svc.sampler.pause()
    assert client.get("/healthz").status_code == 200  # paused on purpose is not stuck


def test_errors_are_json_with_the_right_status(client, anon, svc):
    def error(response, status, code):
        assert response.status_code == status and response.mimetype == "application/json", response
        assert set(response.json) == {"error"} and set(response.json["error"]) == {"code", "message"}
        assert response.json["error"]["code"] == code and response.json["error"]["message"]

    error(client.get("/no/such/page"), 404, "not_found")
    error(client.post("/api/snapshot"), 405, "method_not_allowed")
    error(client.get("/api/snapshot"), 503, "no_sample")
    error(client.get("/api/history?seconds=-1"), 400, "bad_request")
    error(anon.get("/api/snapshot"), 401, "unauthorized")
    error(anon.get("/api/snapshot", headers={"Authorization": "Bearer not-the-right-token"}), 401, "bad_token")
    error(anon.get("/api/snapshot", headers={"Authorization": f"Bearer {METRICS}"}), 403, "forbidden")


def test_events_through_the_wsgi_iterator(client, svc):
    svc.sampler.tick()
    first = svc.hub.head.id
    svc.sampler.tick()
    r = client.get("/events", headers={"Last-Event-ID": first, "Accept-Encoding": "gzip"},
                   buffered=False)
    assert r.status_code == 200
    assert r.mimetype == "text/event-stream"
    assert r.headers["Cache-Control"] == "no-cache, no-transform"
    assert r.headers["X-Accel-Buffering"] == "no"
    assert "Content-Encoding" not in r.headers
    it = iter(r.response)
    parser = SSEParser()
    parser.feed(next(it).decode())  # retry + comment, at once
    assert parser.retry == 2000 and parser.comments == ["connected"]
    (ev,) = parser.feed(next(it).decode())  # the one sample it missed
    assert ev.type == "metrics" and ev.json["seq"] == 2 and ev.last_event_id == svc.hub.head.id
    assert len(svc.hub.subscribers) == 1
    r.close()
    assert len(svc.hub.subscribers) == 0


def test_head_on_events_sends_headers_only(client, svc):
    r = client.head("/events")
    assert r.status_code == 200 and r.mimetype == "text/event-stream"
    assert not svc.hub.subscribers


def test_history_then_stream_has_no_gap(client, svc):
    for _ in range(3):
        svc.sampler.tick()
    hist = client.get("/api/history").json
    svc.sampler.tick()  # published between the history fetch and the stream's start
    r = client.get(f"/events?last_event_id={hist['last_event_id']}", buffered=False)
    it = iter(r.response)
    parser = SSEParser()
    parser.feed(next(it).decode())
    (ev,) = parser.feed(next(it).decode())
    assert ev.json["seq"] == hist["columns"]["seq"][-1] + 1
    r.close()
    json.dumps(hist)  # serializable as sent


def test_a_stream_that_cannot_get_a_descriptor_gets_503_and_frees_its_slot(client):
    class NoDescriptorsLeft:  # what `dup()` does when the open-files limit is reached
        def dup(self):
            raise OSError(24, "Too many open files")

    for _ in range(101):  # one more than MAX_CONNECTIONS_PER_CLIENT: a leaked slot would show as 429
        resp = client.get("/events", environ_base={"gunicorn.socket": NoDescriptorsLeft(),
                                                   "SERVER_PROTOCOL": "HTTP/1.1"})
        assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
        assert resp.get_json()["error"]["code"] == "server_full"
    assert client.get("/healthz").status_code == 200
