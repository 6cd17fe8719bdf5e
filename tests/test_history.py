import time

from dashboard.sampling.series import SERIES
from dashboard.stream.history import History


def sample(seq, ts, cpu=10.0, cores=(5.0, 15.0)):
    return {
        "ts": ts,
        "seq": seq,
        "cpu": {"percent": cpu, "per_core": list(cores)},
        "memory": {"percent": 40.0},
        "load": {"load1": 0.5},
        "disks": [{"read_bps": 10.0, "write_bps": 1.0}, {"read_bps": 5.0, "write_bps": None}],
        "net": {"rx_bps": 100.0, "tx_bps": 50.0},
    }


def test_columns_are_oldest_first_with_one_column_per_core():
    h = History(3600)
    now = time.time()
    for i in range(3):
        h.add(f"{i}-0", sample(i + 1, now - 3 + i, cpu=float(i)))
    out = h.columns()
    cols = out["columns"]
    assert out["count"] == 3 and out["last_event_id"] == "2-0"
    assert cols["seq"] == [1, 2, 3] and cols["cpu"] == [0.0, 1.0, 2.0]
    assert cols["cores"] == [[5.0] * 3, [15.0] * 3]
    assert cols["disk_read"] == [15.0] * 3
    assert cols["disk_write"] == [None] * 3  # one disk had no rate yet: no partial sum
    assert cols["swap"] == [None] * 3  # missing data stays missing
    assert set(out["series"]) == {s.name for s in SERIES}


def test_window_and_expiry():
    h = History(10)
    now = time.time()
    h.add("1-0", sample(1, now - 20))  # already older than the history
    h.add("2-0", sample(2, now - 5))
    h.add("3-0", sample(3, now - 1))
    assert len(h) == 2
    assert h.columns(2)["columns"]["seq"] == [3]
    assert h.columns()["columns"]["seq"] == [2, 3]


def test_empty_history():
    out = History(60).columns(30)
    assert out["count"] == 0 and out["last_event_id"] is None and out["columns"]["cores"] == []
