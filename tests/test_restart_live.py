"""SIGTERM under load, and every viewer coming back by itself after the restart."""

import signal
import threading

from tests.support.crowd import Crowd
from tests.support.wsclient import Console


def test_sigterm_with_1000_viewers_and_50_consoles(start_server):
    # The whole crowd comes from one address: give it the budget for that.
    env = {"SAMPLE_INTERVAL": "1", "SECRET_KEY": "kept-across-restarts", "SSE_RETRY_MS": "1000",
           "MAX_CONNECTIONS_PER_CLIENT": "2000", "MAX_CONSOLES_PER_LOGIN": "100"}
    server = start_server(env)
    crowd = Crowd(server.port, 1000).start()
    assert crowd.wait(lambda: all(v.seqs for v in crowd.viewers), timeout=60), \
        sum(1 for v in crowd.viewers if v.seqs)
    consoles = [Console(server.port, name=f"op{i}") for i in range(50)]
    assert server.get("/healthz")[1]["subscribers"] == 1000

    codes = []
    reader = threading.Thread(target=lambda: codes.extend(c.close_code(20) for c in consoles))
    reader.start()
    took = server.stop(signal.SIGTERM)
    reader.join(30)
    assert server.proc.returncode == 0
    assert took < 15, f"exit took {took:.1f}s"
    assert codes == [1001] * 50
    assert crowd.wait(lambda: all(v.clean_ends >= 1 for v in crowd.viewers), timeout=10)
    assert sum(v.cut_ends for v in crowd.viewers) == 0  # every stream ended with its final chunk

    before = {id(v): len(v.seqs) for v in crowd.viewers}
    again = start_server(env, port=server.port)
    # Nobody is told to come back: each reconnects by itself (retry + Last-Event-ID).
    assert crowd.wait(lambda: all(len(v.seqs) > before[id(v)] for v in crowd.viewers), timeout=60), \
        sum(1 for v in crowd.viewers if len(v.seqs) > before[id(v)])
    # The new process has a new buffer: each viewer was told to reload (resync), then went on.
    assert all("resync" in v.types for v in crowd.viewers)
    assert again.get("/healthz")[1]["subscribers"] == 1000
    crowd.stop()


def test_on_redis_viewers_resume_across_a_restart_with_no_gap(start_server, redis_server):
    env = {"SAMPLE_INTERVAL": "0.5", "SECRET_KEY": "kept-across-restarts", "SSE_RETRY_MS": "500",
           "REDIS_URL": redis_server.url, "HOST_NAME": "web-1", "SAMPLER_LEASE_SECONDS": "2",
           "MAX_CONNECTIONS_PER_CLIENT": "1000"}
    server = start_server(env)
    crowd = Crowd(server.port, 200, path="/events?host=web-1").start()
    assert crowd.wait(lambda: all(len(v.seqs) >= 2 for v in crowd.viewers), timeout=30)
    assert server.stop(signal.SIGTERM) < 15
    start_server(env, port=server.port)
    assert crowd.wait(lambda: all(v.connects >= 2 and len(v.seqs) >= 8 for v in crowd.viewers), timeout=60)
    crowd.stop()
    for v in crowd.viewers:
        assert "resync" not in v.types  # the stream lives in Redis: resumed exactly
        assert v.seqs == list(range(v.seqs[0], v.seqs[0] + len(v.seqs))), v.seqs  # no gap, no duplicate
