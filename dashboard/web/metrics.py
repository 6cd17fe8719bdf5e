"""GET /metrics: Prometheus exposition (prometheus_client), so the same instance
feeds Prometheus and Grafana.

Host values come from the latest sample of every host this process serves
(label `host`); nothing is measured at scrape time, so a scrape costs no
psutil call. The app's own numbers (viewers, consoles, events, drops,
commands and their latency) are this process's: with several workers, each
reports its own.
"""

from __future__ import annotations

import time
from typing import Protocol

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from ..control.tally import BUCKETS
from ..control.tally import Counters
from ..stream.views import Views

bp = Blueprint("metrics", __name__)

P = "dashboard_"

# Always exported, so a dashboard can graph them before the first refusal.
REFUSAL_REASONS = ("connections", "worker_full", "consoles", "console_rate", "body_too_large",
                   "body_timeout", "shutting_down", "stream_deferred")


def _gauge(name: str, doc: str, *labels: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(P + name, doc, labels=["host", *labels])



class Serves(Protocol):
    """What /metrics reads of the process it serves: the views' hubs and one counters snapshot."""

    views: Views

    def stats(self) -> Counters: ...

class DashboardCollector:
    def __init__(self, svc: Serves) -> None:
        self.svc = svc

    def collect(self):
        yield from self._host_metrics()
        yield from self._app_metrics()

    def _host_metrics(self):
        m = {
            "cpu": _gauge("host_cpu_percent", "CPU busy over the last interval, all cores (percent)"),
            "core": _gauge("host_cpu_core_percent", "CPU busy per core (percent)", "core"),
            "load": _gauge("host_load_average", "load average", "period"),
            "mem_used": _gauge("host_memory_used_bytes", "RAM in use (total minus available)"),
            "mem_total": _gauge("host_memory_total_bytes", "RAM installed"),
            "swap_used": _gauge("host_swap_used_bytes", "swap in use"),
            "swap_total": _gauge("host_swap_total_bytes", "swap configured"),
            "disk_used": _gauge("host_disk_used_bytes", "disk space used", "mount"),
            "disk_total": _gauge("host_disk_total_bytes", "disk size", "mount"),
            "disk_read": _gauge("host_disk_read_bytes_per_second", "disk reads", "mount"),
            "disk_write": _gauge("host_disk_write_bytes_per_second", "disk writes", "mount"),
            "net_rx": _gauge("host_network_receive_bytes_per_second", "bytes received", "interface"),
            "net_tx": _gauge("host_network_transmit_bytes_per_second", "bytes sent", "interface"),
            "procs": _gauge("host_processes", "processes running"),
            "uptime": _gauge("host_uptime_seconds", "seconds since boot"),
            "c_cpu_limit": _gauge("container_cpu_limit_cores", "the container's CPU quota"),
            "c_cpu_used": _gauge("container_cpu_used_cores", "CPU the container used"),
            "c_mem_limit": _gauge("container_memory_limit_bytes", "the container's memory limit"),
            "c_mem_used": _gauge("container_memory_working_set_bytes", "the container's working set"),
            "age": _gauge("host_sample_age_seconds", "seconds since the host's latest sample was taken"),
        }

        def put(key, value, *labels):
            # A host's samples may come from another process through Redis (an agent of another
            # version, a store restored from elsewhere): a row without its label or a figure that is
            # not a number is left out, never a failed /metrics.
            if value is None or None in labels:
                return
            try:
                m[key].add_metric([str(label) for label in labels], float(value))
            except (TypeError, ValueError):
                pass

        for view in self.svc.views:
            s = view.latest
            if not s:
                continue
            h = view.name
            try:  # a sample of another shape (see put) costs its host's figures, not /metrics
                put("age", time.time() - s.get("ts", 0), h)
                cpu = s.get("cpu") or {}
                put("cpu", cpu.get("percent"), h)
                for i, v in enumerate(cpu.get("per_core") or []):
                    put("core", v, h, str(i))
                for period in ("1", "5", "15"):
                    put("load", (s.get("load") or {}).get("load" + period), h, period)
                put("mem_used", (s.get("memory") or {}).get("used"), h)
                put("mem_total", (s.get("memory") or {}).get("total"), h)
                put("swap_used", (s.get("swap") or {}).get("used"), h)
                put("swap_total", (s.get("swap") or {}).get("total"), h)
                for d in s.get("disks") or []:
                    put("disk_used", d.get("used"), h, d.get("mount"))
                    put("disk_total", d.get("total"), h, d.get("mount"))
                    put("disk_read", d.get("read_bps"), h, d.get("mount"))
                    put("disk_write", d.get("write_bps"), h, d.get("mount"))
                for i in (s.get("net") or {}).get("interfaces") or []:
                    put("net_rx", i.get("rx_bps"), h, i.get("name"))
                    put("net_tx", i.get("tx_bps"), h, i.get("name"))
                put("procs", (s.get("processes") or {}).get("count"), h)
                put("uptime", s.get("uptime"), h)
                c = s.get("container") or {}
                put("c_cpu_limit", c.get("cpu_limit"), h)
                put("c_cpu_used", c.get("cpu_cores_used"), h)
                put("c_mem_limit", c.get("memory_limit"), h)
                put("c_mem_used", c.get("memory_usage"), h)
            except (AttributeError, TypeError):
                continue
        yield from m.values()

    def _app_metrics(self):
        views = self.svc.views
        counters = self.svc.stats()  # one snapshot: no branch on how the process shares
        viewers = _gauge("viewers", "open event streams in this process")
        behind = _gauge("viewers_catching_up", "open event streams whose socket could not take the "
                        "latest events at once (their writer is sending what they missed)")
        published = CounterMetricFamily(P + "events_published", "events fanned out", labels=["host"])
        opened = CounterMetricFamily(P + "streams_opened", "event streams opened", labels=["host"])
        dropped = CounterMetricFamily(P + "viewers_dropped", "viewers dropped for falling behind",
                                      labels=["host", "reason"])
        for view in views:
            st = view.hub.stats
            viewers.add_metric([view.name], len(view.hub.subscribers))
            behind.add_metric([view.name], view.hub.catching_up)
            published.add_metric([view.name], st.published)
            opened.add_metric([view.name], st.opened)
            dropped.add_metric([view.name, "backlog"], st.dropped_slow)
            dropped.add_metric([view.name, "buffer"], st.dropped_buffer)
        yield from (viewers, behind, published, opened, dropped)
        cache = CounterMetricFamily(P + "history_cache", "/api/history answers served from the cache "
                                    "(hit) or built (build)", labels=["host", "outcome"])
        for host, (hits, builds) in counters.history_cache.items():
            cache.add_metric([host, "hit"], hits)
            cache.add_metric([host, "build"], builds)
        yield cache
        sharing = counters.sharing
        yield GaugeMetricFamily(P + "consoles", "open console connections in this process",
                                value=counters.consoles)
        yield GaugeMetricFamily(P + "sampler_running", "1 when this process samples its host",
                                value=1 if sharing.sampling_here else 0)
        if sharing.last_duration is not None:
            yield GaugeMetricFamily(P + "sampler_duration_seconds", "time the latest sample took",
                                    value=sharing.last_duration)
        yield CounterMetricFamily(P + "login_failures", "wrong tokens presented (login, bearer, handshake)",
                                  value=counters.login_failures)
        yield CounterMetricFamily(P + "login_throttled", "attempts refused with 429 while an address waits",
                                  value=counters.login_throttled)
        refused = CounterMetricFamily(P + "refused", "clients turned away, by reason (see the "
                                      "table in docs/faults.md)", labels=["reason"])
        for reason in sorted(set(REFUSAL_REASONS) | set(counters.refusals)):
            refused.add_metric([reason], counters.refusals.get(reason, 0))
        yield refused
        yield CounterMetricFamily(P + "audit_folded", "console requests counted into a summarising "
                                  "audit record instead of a record of their own",
                                  value=counters.audit_folded)
        commands = CounterMetricFamily(P + "commands", "console commands run", labels=["command", "outcome"])
        for (name, outcome), n in counters.commands.items():
            commands.add_metric([name, outcome], n)
        yield commands
        latency = HistogramMetricFamily(P + "command_seconds", "time to run a console command and record it",
                                        labels=["command"])
        bounds = [floatToGoString(b) for b in BUCKETS] + ["+Inf"]
        for name, (cumulative, total) in counters.command_seconds.items():
            latency.add_metric([name], list(zip(bounds, cumulative)), sum_value=total)
        yield latency
        notes = CounterMetricFamily(P + "notifications", "alert notifications by outcome: recorded "
                                    "(transitions kept), silenced, sent (messages), failed (attempts), given_up",
                                    labels=["outcome"])
        for outcome, n in counters.notifications.items():
            notes.add_metric([outcome], n)
        yield notes
        yield GaugeMetricFamily(P + "notifications_pending", "outbox entries waiting (in the delivering process)",
                                value=counters.notifications_pending)
        yield GaugeMetricFamily(P + "notifications_delivering", "1 when this process delivers notifications",
                                value=1 if counters.notifications_delivering else 0)
        if sharing.redis is not None:
            yield GaugeMetricFamily(P + "redis_shared", "1 while sharing through Redis",
                                    value=1 if sharing.redis["shared"] else 0)


def install(svc: Serves) -> CollectorRegistry:
    """A registry for one app, reading it through the collector above."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DashboardCollector(svc))
    return registry


@bp.get("/metrics")
def metrics():
    registry = current_app.extensions["dashboard.metrics"]
    # content_type, not mimetype: the latter appends a second "; charset=utf-8".
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
