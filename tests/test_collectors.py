"""Collectors against the real machine (psutil), and cgroup parsing on fake trees."""

import os
import socket
import threading
import time

import psutil
import pytest

from dashboard.sampling import collectors

from dashboard.sampling import processes
from dashboard.sampling.cgroups import Container, Paths, discover
from dashboard.sampling.collectors import Unavailable
from dashboard.sampling.rates import Rates


def two_rounds(fn, pause=0.2, between=None):
    r = Rates()
    r.begin(time.monotonic())
    first = fn(r)
    r.end()
    time.sleep(pause)
    if between is not None:
        between()
    r.begin(time.monotonic())
    second = fn(r)
    r.end()
    return first, second


def test_cpu_first_sample_has_no_rate_then_percentages():
    first, second = two_rounds(collectors.collect_cpu)
    assert first["percent"] is None and all(v is None for v in first["per_core"])
    assert 0.0 <= second["percent"] <= 100.0
    assert len(second["per_core"]) == second["count"] == os.cpu_count()
    assert all(0.0 <= v <= 100.0 for v in second["per_core"])


def test_memory_swap_load_uptime_are_plain_numbers():
    r = Rates()
    r.begin(0)
    mem = collectors.collect_memory(r)
    assert mem["total"] > 0 and 0 <= mem["percent"] <= 100
    assert mem["used"] == mem["total"] - mem["available"]
    assert set(collectors.collect_swap(r)) == {"total", "used", "percent"}
    assert set(collectors.collect_load(r)) == {"load1", "load5", "load15"}
    assert collectors.collect_uptime(r) > 0


def test_disks_report_usage_and_rates_after_the_first_round():
    first, second = two_rounds(collectors.collect_disks)
    root = next(d for d in second if d["mount"] == "/")
    assert root["total"] > 0 and 0 <= root["percent"] <= 100
    assert all(d["read_bps"] is None for d in first)
    if root["read_bps"] is not None:
        assert root["read_bps"] >= 0 and root["write_bps"] >= 0


def test_one_device_mounted_in_several_places_is_one_disk(monkeypatch):
    from collections import namedtuple

    import psutil

    from dashboard.sampling.mounts import Mounts

    Part = namedtuple("Part", "device mountpoint fstype opts")
    real = psutil.disk_partitions(all=False)
    root = next(p for p in real if p.mountpoint == "/")
    # The root device again under bind mounts (as a container's volumes or /run/netns are).
    binds = [Part(root.device, "/var/lib/containers/x", root.fstype, ""), Part(root.device, "/run/netns", root.fstype, "")]
    mounts = Mounts(partitions=lambda: binds + list(real))
    rates = Rates()
    rates.begin(time.monotonic())
    disks = collectors.collect_disks(rates, mounts)
    assert [d["mount"] for d in disks if d["device"] == root.device] == ["/"]
    assert len({d["device"] for d in disks}) == len(disks)


def _loopback_traffic(megabytes: int) -> None:
    """Send this many MB to ourselves over 127.0.0.1."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        sender = socket.create_connection(server.getsockname())
        receiver, _ = server.accept()
        chunk = b"x" * 65536
        received = 0

        def drain():
            nonlocal received
            while received < megabytes << 20:
                received += len(receiver.recv(1 << 20))

        reader = threading.Thread(target=drain)
        reader.start()
        for _ in range(megabytes * 16):
            sender.sendall(chunk)
        reader.join(10)
        sender.close()
        receiver.close()
    assert received == megabytes << 20


def test_net_rates_per_interface_and_totals_without_loopback():
    first, second = two_rounds(collectors.collect_net, between=lambda: _loopback_traffic(20))
    assert first["rx_bps"] is None and first["tx_bps"] is None
    by_name = {i["name"]: i for i in second["interfaces"]}
    assert "lo" in by_name and all(i["rx_bytes"] >= 0 for i in second["interfaces"])
    lo = by_name["lo"]
    lo_before = next(i for i in first["interfaces"] if i["name"] == "lo")
    assert lo["rx_bytes"] - lo_before["rx_bytes"] >= 20 << 20 and lo["rx_bps"] > 0
    others = [i for name, i in by_name.items() if not name.startswith("lo")]
    physical = [i for i in others if os.path.exists(f"/sys/class/net/{i['name']}/device")]
    # The totals are exactly the physical interfaces' rates (each rounded; every
    # other one's on a host without any): the loopback's 20 MB, counted on `lo`
    # above, are not in them.
    for key in ("rx_bps", "tx_bps"):
        rated = [i[key] for i in physical or others if i[key] is not None]  # a new one has no rate yet
        assert second[key] == pytest.approx(sum(rated), abs=1.0 + len(rated))
        assert lo[key] > 1e6  # so counting it would have shown


def test_an_interface_that_appears_between_samples_does_not_blank_the_total(monkeypatch, tmp_path):
    monkeypatch.setattr(collectors, "_is_physical", lambda name: False)  # summed like a container's
    first, second = _net_rounds(monkeypatch, tmp_path, [{"lo": (0, 0), "eth0": (1000, 2000)},
                                                        {"lo": (50, 50), "eth0": (3000, 2500), "wg0": (10**9, 10**9)}],
                                None, ("veth*",), both=True)
    assert first["rx_bps"] is None
    vpn = next(i for i in second["interfaces"] if i["name"] == "wg0")  # a VPN coming up
    assert vpn["rx_bps"] is None and (second["rx_bps"], second["tx_bps"]) == (2000, 500)


def _write_net_dev(path, counters: dict) -> None:
    """A /proc/net/dev as the kernel writes it: two header lines, then 16 numbers per interface."""
    lines = ["Inter-|   Receive                            |  Transmit",
             " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop "
             "fifo colls carrier compressed"]
    for name, (rx, tx) in counters.items():
        lines.append(f"{name:>6}: {rx} 7 0 0 0 0 0 0 {tx} 5 0 0 0 0 0 0")
    path.write_text("\n".join(lines) + "\n")


def _net_rounds(monkeypatch, tmp_path, rounds, physical, exclude, both=False):
    net_dev = tmp_path / "net_dev"
    monkeypatch.setattr(collectors, "NET_DEV", str(net_dev))
    if physical is not None:
        monkeypatch.setattr(collectors, "_is_physical", lambda name: name in physical)
    r, out = Rates(), []
    for now, counters in zip((0.0, 1.0), rounds):
        _write_net_dev(net_dev, counters)
        r.begin(now)
        try:
            out.append(collectors.collect_net(r, exclude))
        finally:
            r.end()
    return out if both else out[1]


def test_net_totals_count_the_nics_once_and_veth_ends_are_left_out(monkeypatch, tmp_path):
    # A container's bytes cross its veth, the bridge and the NIC: summed over all
    # three, the host's total would count them three times.
    start = {"lo": (0, 0), "eth0": (0, 0), "cni-podman0": (0, 0), "veth1a2b": (0, 0), "wg0": (0, 0)}
    end = {"lo": (9, 9), "eth0": (5000, 3000), "cni-podman0": (4000, 2000), "veth1a2b": (4000, 2000),
           "wg0": (700, 100)}
    out = _net_rounds(monkeypatch, tmp_path, [start, end], {"eth0"}, ("veth*",))
    assert [i["name"] for i in out["interfaces"]] == ["cni-podman0", "eth0", "lo", "wg0"]
    assert (out["rx_bps"], out["tx_bps"]) == (5000, 3000)  # the NIC's, once
    # NET_EXCLUDE empty: every interface listed; the totals are still the NIC's.
    out = _net_rounds(monkeypatch, tmp_path, [start, end], {"eth0"}, ())
    assert "veth1a2b" in [i["name"] for i in out["interfaces"]] and out["rx_bps"] == 5000
    # Inside a container (no NIC at all): every other interface but loopback.
    out = _net_rounds(monkeypatch, tmp_path, [{"lo": (0, 0), "eth0": (0, 0)}, {"lo": (50, 50), "eth0": (300, 200)}],
                      set(), ("veth*",))
    assert (out["rx_bps"], out["tx_bps"]) == (300, 200)


def test_net_counters_read_like_psutil_and_skip_the_excluded_before_parsing():
    # The same interfaces as psutil, each counter between two psutil reads taken around ours.
    before = psutil.net_io_counters(pernic=True)
    ours = collectors._net_counters(collectors._excluder(()))
    after = psutil.net_io_counters(pernic=True)
    assert set(ours) == set(before) == set(after)
    for name, (rx, tx) in ours.items():
        assert before[name].bytes_recv <= rx <= after[name].bytes_recv
        assert before[name].bytes_sent <= tx <= after[name].bytes_sent
    assert "lo" not in collectors._net_counters(collectors._excluder(("l*",)))


def test_a_line_it_cannot_read_is_skipped_not_fatal(monkeypatch, tmp_path):
    net_dev = tmp_path / "net_dev"
    net_dev.write_text("h1\nh2\n  eth0: 10 1 0 0 0 0 0 0 20 1 0 0 0 0 0 0\n  cut: 5 1\n")
    monkeypatch.setattr(collectors, "NET_DEV", str(net_dev))
    assert collectors._net_counters(collectors._excluder(())) == {"eth0": (10, 20)}


def test_net_exclude_is_read_from_the_environment_and_reaches_the_sampler(monkeypatch, tmp_path):
    from dashboard import settings
    from dashboard.control.build import host_sampler

    config = settings.load({"NET_EXCLUDE": "veth*, docker*", "DATA_DIR": str(tmp_path)})
    assert config["NET_EXCLUDE"] == ("veth*", "docker*")
    net_dev = tmp_path / "net_dev"
    _write_net_dev(net_dev, {"docker0": (0, 0), "eth9": (0, 0)})
    monkeypatch.setattr(collectors, "NET_DEV", str(net_dev))
    sampler, _, _ = host_sampler(config, "h", lambda sample: None)
    [net] = [c for c in sampler.collectors if c.name == "net"]
    r = Rates()
    r.begin(0.0)
    try:
        assert [i["name"] for i in net.collect(r)["interfaces"]] == ["eth9"]
    finally:
        r.end()


def test_sensors_either_report_or_say_why_not():
    r = Rates()
    r.begin(0)
    try:
        out = collectors.collect_sensors(r)
    except Unavailable as exc:
        assert "sensors" in str(exc)
    else:
        assert out["temperatures"] or out["fans"]


def test_process_table_finds_this_process_and_ranks_it():
    table = processes.ProcessTable(top_n=5)
    r = Rates()
    r.begin(time.monotonic())
    first = table(r)
    r.end()
    wall, cpu = time.monotonic(), time.process_time()
    while time.process_time() < cpu + 0.3:  # burn 0.3 s of CPU (however long a busy machine takes)
        pass
    r.begin(time.monotonic())
    second = table(r)
    r.end()
    burnt = 100 * (time.process_time() - cpu) / (time.monotonic() - wall)
    assert all(p["cpu"] is None for p in first["top_cpu"])
    assert second["count"] == len(table.latest) > 1
    me = next(p for p in table.latest if p.pid == os.getpid())
    assert me.cpu is not None and me.cpu > burnt / 2  # the share of a core it really had
    assert len(second["top_cpu"]) == 5
    cpus = [p["cpu"] for p in second["top_cpu"]]
    assert cpus == sorted(cpus, reverse=True)
    rss = [p["rss"] for p in second["top_mem"]]
    assert rss == sorted(rss, reverse=True)
    row = second["top_mem"][0]
    assert set(row) == {"pid", "name", "user", "cpu", "rss"} and row["user"]
    assert [p.pid for p in processes.matching(table.latest, str(os.getpid()))][:1] == [os.getpid()]
    assert processes.matching(table.latest, "no-such-process-name-xyz") == []


def test_top_refuses_an_unknown_sort():
    with pytest.raises(ValueError):
        processes.top([], 3, "disk")


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_limits_and_usage(tmp_path):
    d = tmp_path / "sys/fs/cgroup/app"
    write(d / "cpu.max", "150000 100000\n")
    write(d / "cpu.stat", "usage_usec 2000000\nuser_usec 1\n")
    write(d / "memory.max", "536870912\n")
    write(d / "memory.current", "300000000\n")
    write(d / "memory.stat", "anon 1\ninactive_file 100000000\n")
    c = Container(Paths("v2", str(d), str(d), str(d), nested=True))
    r = Rates()
    r.begin(0.0)
    out = c(r)
    r.end()
    assert out["cpu_limit"] == 1.5 and out["cpu_cores_used"] is None
    assert out["memory_limit"] == 536870912
    assert out["memory_usage"] == 200000000  # working set: usage minus inactive file cache
    assert out["memory_percent"] == pytest.approx(37.3, abs=0.1)
    write(d / "cpu.stat", "usage_usec 2750000\n")
    r.begin(1.0)
    out = c(r)
    assert out["cpu_cores_used"] == 0.75 and out["cpu_percent"] == 50.0


def test_cgroup_v1_unlimited_reads_as_none(tmp_path):
    cpu, acct, mem = tmp_path / "cpu", tmp_path / "cpuacct", tmp_path / "memory"
    write(cpu / "cpu.cfs_quota_us", "-1\n")
    write(cpu / "cpu.cfs_period_us", "100000\n")
    write(acct / "cpuacct.usage", "5000000000\n")
    write(mem / "memory.limit_in_bytes", "9223372036854771712\n")
    write(mem / "memory.usage_in_bytes", "1000\n")
    write(mem / "memory.stat", "total_inactive_file 400\n")
    out_r = Rates()
    out_r.begin(0.0)
    out = Container(Paths("v1", str(cpu), str(acct), str(mem), nested=True))(out_r)
    assert out["cpu_limit"] is None and out["memory_limit"] is None
    assert out["memory_usage"] == 600 and out["memory_percent"] is None


def test_root_cgroup_without_limits_outside_a_container_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setattr("dashboard.sampling.cgroups._in_container", lambda: False)
    d = tmp_path / "root"
    write(d / "cpu.max", "max 100000\n")
    write(d / "memory.max", "max\n")
    r = Rates()
    r.begin(0)
    with pytest.raises(Unavailable):
        Container(Paths("v2", str(d), str(d), str(d), nested=False))(r)
    with pytest.raises(Unavailable):
        Container(None)(r)


def test_discover_resolves_v1_v2_and_namespaced_paths(tmp_path):
    proc = tmp_path / "proc"
    sysfs = tmp_path / "cg"
    (sysfs / "memory/kube/pod1").mkdir(parents=True)
    (sysfs / "cpu").mkdir(parents=True)
    write(proc / "cgroup", "4:memory:/kube/pod1\n1:cpu,cpuacct:/elsewhere\n0::/\n")
    write(
        proc / "mountinfo",
        f"31 23 0:28 / {sysfs}/memory rw - cgroup cgroup rw,memory\n"
        f"32 23 0:29 / {sysfs}/cpu rw - cgroup cgroup rw,cpu,cpuacct\n"
        f"33 23 0:30 / {sysfs}/unified rw - cgroup2 cgroup2 rw\n",
    )
    p = discover(str(proc))
    assert p.version == "v1" and p.nested
    assert p.memory == f"{sysfs}/memory/kube/pod1"
    assert p.cpu == f"{sysfs}/cpu"  # /elsewhere is not visible: namespaced, use the mount

    write(proc / "cgroup", "0::/app.slice\n")
    write(proc / "mountinfo", f"40 1 0:40 / {sysfs} rw - cgroup2 cgroup2 rw\n")
    (sysfs / "app.slice").mkdir()
    p = discover(str(proc))
    assert (p.version, p.memory, p.nested) == ("v2", f"{sysfs}/app.slice", True)


def test_discover_on_this_machine_does_not_fail():
    p = discover()
    assert p is None or p.version in ("v1", "v2")
