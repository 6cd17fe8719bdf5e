"""What console commands do to the server: the `console.operations.Operations`
interface, implemented over the `control.shared.Shared` state and this process's parts.

Every change is published as an event, so it shows on every dashboard's
stream and as a push on every console. Whether the state lives in this process
or in Redis is the `Shared` implementation's business: with Redis a failed
write raises StoreUnavailable (the command is refused).
"""

from __future__ import annotations

import os
from typing import Callable

from .alerts.delivery import Notifier
from .alerts.rules import Rule, RuleState, alert_event, check
from .console.sessions import Consoles
from .control.shared import Shared
from .fleet.asks import Asks
from .sampling import process_details
from .sampling.containers import Containers
from .sampling.processes import ProcessTable
from .sampling.trails import summary
from .store.audit import AuditStore, StoreUnavailable
from .stream.events import Config, Notice
from .stream.subscriber import Subscriber
from .stream.views import Views


class Operations:
    """Each collaborator is handed in: the shared state (embedded or Redis, never asked
    which), this process's views, process table, notifier, audit log and consoles."""

    def __init__(self, shared: Shared, views: Views, processes: ProcessTable, containers: Containers | None,
                 notifier: Notifier, audit: AuditStore, consoles: Consoles, *, asks: Asks | None = None,
                 record: Callable[..., None],
                 notify_errors: tuple[type[BaseException], ...], config: dict, version: str,
                 uptime: Callable[[], float]) -> None:
        self.shared = shared
        self.views = views
        self.processes = processes
        self.containers = containers  # sampling.containers.Containers: names, details, restart
        self.asks = asks  # fleet.asks.Asks: another host's sampler asked to act (None: one host)
        self.notifier = notifier
        self.audit = audit
        self.open_consoles = consoles
        self.record = record  # keeps an alert transition for notifications (never raises)
        self.notify_errors = notify_errors
        self.config = config
        self.version = version
        self.uptime = uptime  # seconds since this process started serving
        self.process_control = bool(config["ALLOW_PROCESS_CONTROL"])

    # ---- reading ----------------------------------------------------------------

    def status(self) -> dict:
        stats = self.shared.stats()
        views = list(self.views)
        return {
            "version": self.version,
            "host": self.shared.host,
            "pid": os.getpid(),
            "mode": stats.mode,
            "uptime": round(self.uptime(), 1),
            "sampler": {
                "interval": stats.interval,
                "paused": stats.paused,
                "here": stats.sampling_here,
                "seq": stats.seq,
                "last_duration_ms": None if stats.last_duration is None
                else round(stats.last_duration * 1000, 2),
            },
            "viewers": sum(len(v.hub.subscribers) for v in views),
            "consoles": len(self.open_consoles),
            "events_published": sum(v.hub.stats.published for v in views),
            "alerts_firing": sum(len(r["firing"]) for r in self.alert_rules()),
        }

    def streams(self) -> list[Subscriber]:
        return self.views.streams()

    def consoles(self) -> list:
        return self.open_consoles.sessions()

    def audit_latest(self, n: int) -> list[dict]:
        return self.audit.latest(n)

    def hosts(self) -> list[dict]:
        """Every host this dashboard can show, this one first."""
        return self.shared.hosts()

    def process_rows(self, host: str | None = None) -> list[dict]:
        """The full process table of host, from the latest sample (never a new scan)."""
        return self.shared.process_rows(host or self.shared.host)

    def process_details(self, pid: int) -> dict:
        """One process of this host looked into now (psutil, that pid only), with its CPU and memory
        over the samples that showed it; from now on its trail is kept while it lives. LookupError
        when there is no such process. Never its environment."""
        table = self.processes
        key, details = process_details.read(pid)
        table.trails.ask(key)
        latest = next((p for p in table.latest if (p.pid, p.created) == key), None)
        trail = table.trails.of(key)
        details.update({
            "cpu": None if latest is None else latest.cpu,
            "rss": None if latest is None else latest.rss,
            "watched": summary(trail),
            "history": {"columns": ["ts", "cpu", "rss"], "rows": [list(point) for point in trail]},
        })
        return details

    def container_section(self, host: str | None = None) -> dict | None:
        return (self.views.view(host).latest or {}).get("containers")

    def container_id(self, name: str) -> str:
        return self.containers.find(name)

    def container_details(self, cid: str) -> dict:
        return self.containers.details(cid)

    def container_restart(self, cid: str, wait: int = 10) -> None:
        self.containers.restart(cid, wait)

    def elsewhere(self, host: str | None) -> bool:
        """True when host names another host than this one."""
        return bool(host) and host != self.shared.host

    def remote_container(self, host: str, name: str) -> dict:
        """One container of another host, from its latest sample (name, or the start of its id)
        and its figures over the samples this process holds; KeyError for an unknown host,
        LookupError when it lists no such container."""
        view = self.views.view(host)
        section = (view.latest or {}).get("containers") or {}
        rows = [r for r in section.get("list") or () if isinstance(r, dict)]
        found = [r for r in rows if r.get("name") == name] or (
            [r for r in rows if str(r.get("id", "")).startswith(name)] if len(name) >= 4 else [])
        if len(found) != 1:
            raise LookupError(f"{len(found)} containers on {host} have ids starting with {name[:80]!r}; give more of it"
                              if found else f"no running container named {name[:80]!r} in {host}'s latest sample; "
                              f"see 'containers --host {host}'")
        row = found[0]
        trail = view.containers.trail(str(row.get("id")))
        cpus = [c for _, c, _ in trail if c is not None]
        mems = [m for _, _, m in trail if m is not None]
        return {
            "id": row.get("id"), "name": row.get("name"), "image": row.get("image"), "state": row.get("state"),
            "host": host, "engine": section.get("engine"), "missing": section.get("missing"),
            "restarts": row.get("restarts"), "cpu_limit": row.get("cpu_limit"), "mem_limit": row.get("mem_limit"),
            "now": row,
            "watched": None if not trail else {
                "since": trail[0][0], "samples": len(trail),
                "cpu_avg": round(sum(cpus) / len(cpus), 1) if cpus else None, "cpu_max": max(cpus, default=None),
                "mem_pct_min": min(mems, default=None), "mem_pct_max": max(mems, default=None)},
            "history": {"columns": ["ts", "cpu_pct", "mem_pct"], "rows": [list(p) for p in trail]},
            "read_from": f"{host}'s samples; labels, init pid and cgroup are read by a console on {host} itself",
        }

    def ask_container_restart(self, host: str, name: str, wait: int, by: str) -> dict:
        """Ask host's sampler to restart one of its containers (fleet/asks.py): its reply.
        NoAnswer when it does not reply in time; LookupError without Redis."""
        if self.asks is None:
            raise LookupError("only this host is shown here (no REDIS_URL)")
        return self.asks.ask(host, {"do": "container restart", "name": name, "wait": wait, "by": by},
                             timeout=wait + 15)

    def alert_rules(self) -> list[dict]:
        """Rules with the hosts where they fire."""
        rules = self.shared.rules()
        states = self.shared.alert_states()
        out = []
        for rid, rule in rules.items():
            firing = sorted(h for (r, h), st in states.items() if r == rid and st["state"] == "firing")
            here = {h: st for (r, h), st in states.items() if r == rid}
            out.append({**rule, "firing": firing, "states": here})
        return out

    # ---- changing ---------------------------------------------------------------

    def config_event(self, change: str, by: str | None) -> Config:
        return Config(interval=self.shared.interval(), paused=self.shared.paused(), alerts=self.alert_rules(),
                      change=change, by=by)

    def set_interval(self, seconds: float, by: str | None = None) -> Config:
        self.shared.set_interval(seconds)
        event = self.config_event(f"interval {seconds:g}", by)
        self.shared.publish_event(event)
        return event

    def set_paused(self, paused: bool, by: str | None = None) -> tuple[bool, Config]:
        changed = self.shared.set_paused(paused)
        event = self.config_event("pause" if paused else "resume", by)
        if changed:
            self.shared.publish_event(event)
        return changed, event

    def add_alert(self, metric: str, op: str, value: float, hold: float, by: str | None,
                  hosts: str | None = None) -> Rule:
        """ValueError (a bad_args reply) for a bad rule, or one past MAX_ALERT_RULES.
        hosts: one host, a pattern (`web-*`), or None for every host."""
        limit = self.config["MAX_ALERT_RULES"]
        check(metric, op, value)  # malformed, or a rule that could never fire
        self._check_mount(metric)
        rule = self.shared.add_rule(metric, op, value, hold, by, limit, **({"hosts": hosts} if hosts else {}))
        if rule is None:
            raise ValueError(f"there are already {limit} alert rules (MAX_ALERT_RULES); "
                             "clear one first (alert list, alert clear <id>)")
        self.shared.publish_event(self.config_event(f"alert set {rule.id}: {rule.describe()}", by))
        return rule

    def _check_mount(self, metric: str) -> None:
        """A disk rule must name a mount some host reports (once any host has reported)."""
        if not metric.startswith("disk:"):
            return
        samples = [view.latest for view in self.views if view.latest is not None]
        mounts = sorted({d.get("mount") for s in samples for d in s.get("disks") or () if d.get("mount")})
        if samples and metric[5:] not in mounts:
            raise ValueError(f"no host reports a disk mounted at {metric[5:][:60]!r}; "
                             f"mounts: {', '.join(mounts) or 'none'}")

    def remove_alert(self, rule_id: str, by: str | None) -> Rule:
        before = next((r for r in self.alert_rules() if r["id"] == rule_id), None)
        rule = self.shared.remove_rule(rule_id)
        for host in (before or {}).get("firing", []):
            st = RuleState(**before["states"][host])
            self.shared.publish_event(alert_event(rule, st, "resolved", host, "rule cleared"))
            self.record(rule, st, "resolved", host, None, "rule cleared")
        self.shared.publish_event(self.config_event(f"alert clear {rule.id}", by))
        return rule

    def broadcast(self, message: str, by: str | None) -> Notice:
        event = Notice(message=message, by=by)
        self.shared.publish_event(event)
        return event

    # ---- notifications (alerts.delivery.Notifier over the store) ------------------------

    def _notify_call(self, fn, *args):
        """Run a notification store call; an unreachable store refuses the command."""
        try:
            return fn(*args)
        except self.notify_errors as exc:
            self.shared.trouble(exc)
            raise StoreUnavailable(str(exc)) from exc

    def notify_channels(self) -> list[dict]:
        return self._notify_call(self.notifier.channels)

    def notify_add(self, url: str, name: str | None, by: str | None) -> dict:
        return self._notify_call(self.notifier.add_channel, url, name, by)

    def notify_remove(self, name: str, by: str | None) -> dict:
        return self._notify_call(self.notifier.remove_channel, name)

    def notify_test(self, name: str | None, by: str | None) -> list[dict]:
        return self._notify_call(self.notifier.test, name, by)

    def alert_history(self, n: int) -> list[dict]:
        return self._notify_call(self.notifier.history, n)

    def silence_add(self, rule: str, seconds: float, reason: str | None, by: str | None) -> dict:
        if rule != "all" and rule not in {r["id"] for r in self.alert_rules()}:
            raise KeyError(rule)
        return self._notify_call(self.notifier.add_silence, rule, seconds, reason, by)

    def silences(self) -> list[dict]:
        return self._notify_call(self.notifier.store.silences)

    def silence_clear(self, silence_id: str, by: str | None) -> dict:
        found = self._notify_call(self.notifier.store.clear_silence, silence_id)
        if found is None:
            raise KeyError(silence_id)
        return found

    def drop_streams(self, name: str) -> int:
        subs = [(view.hub, s) for view in self.views for s in view.hub.subscribers
                if name == "all" or s.client == name]
        for hub, sub in subs:
            hub.close(sub, "dropped by an operator")
        return len(subs)
