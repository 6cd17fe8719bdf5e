"""Global events and a host's samples come from two Redis streams: merged into each view
in order, an entry made in the same millisecond as one already shown is not lost."""

import time
from types import SimpleNamespace

from dashboard.fleet.sharing import GLOBAL_SEQ, Fleet
from dashboard.store.redis_store import RedisStore
from dashboard.stream.views import Views
from dashboard.stream.wire import encode

CONFIG = {"HISTORY_SECONDS": 60, "VIEWER_BACKLOG": 64, "VIEWER_WRITE_TIMEOUT": 5, "HEARTBEAT_SECONDS": 15,
          "SSE_RETRY_MS": 1000, "VIEWER_SEND_BUFFER": 0}


def test_a_sample_made_in_the_millisecond_of_a_global_event_already_shown_is_kept(redis_server):
    store = RedisStore(redis_server.url, "m", history_seconds=60)
    views = Views("h1", CONFIG)
    fleet = Fleet(store, views, SimpleNamespace(sampler=None, lease_seconds=5), on_push=None, stale_seconds=3)
    fleet.events_after = fleet.fleet_store.last_event_id()
    fleet._backfill(views.local)
    ms = int(time.time() * 1000)
    store.r.xadd(fleet.fleet_store.events, {"t": "notice", "d": '{"message":"hi"}'}, id=f"{ms}-0")
    fleet.read_once(block_ms=100)
    sample = {"ts": ms / 1000, "seq": 1, "host": "h1", "interval": 1.0, "cpu": {"percent": 5.0}}
    store.r.xadd(store.stream("h1"), {"t": "metrics", "d": encode(sample)}, id=f"{ms}-0")
    fleet.read_once(block_ms=100)
    frames = views.local.hub.frames()
    assert [f.type for f in frames] == ["notice", "metrics"]
    assert frames[0].key == (ms, GLOBAL_SEQ) and frames[1].key > frames[0].key
    assert views.local.latest["seq"] == 1
    # Read in one batch, a host's entry and a global one of the same millisecond do not collide.
    store.r.xadd(store.stream("h1"), {"t": "metrics", "d": encode({**sample, "seq": 2})}, id=f"{ms + 5}-0")
    store.r.xadd(fleet.fleet_store.events, {"t": "notice", "d": '{"message":"again"}'}, id=f"{ms + 5}-0")
    fleet.read_once(block_ms=100)
    assert [f.type for f in views.local.hub.frames()][-2:] == ["metrics", "notice"]
    store.close()
