"""What console commands do to the server: the `console.operations.Operations`
interface, implemented over this process's parts (and Redis, when shared).

Every change is published as an event, so it shows on every dashboard's
stream and as a push on every console. With Redis the shared state lives
there and a failed write raises StoreUnavailable (the command is refused).
"""

from __future__ import annotations

import os
import time

from .alerts.rules import Rule, RuleState, alert_event, check
from .sampling import process_details
from .sampling.trails import summary
from .store.audit import StoreUnavailable
from .stream.events import Config, Notice
from .stream.subscriber import Subscriber


class Operations:
    def __init__(self, node) -> None:
        # node: the wiring.Instance that builds this (not imported: it imports us).
        self.node = node
        self.process_control = bool(node.config["ALLOW_PROCESS_CONTROL"])

    # ---- reading ----------------------------------------------------------------

    def status(self) -> dict:
        node = self.node
        sampler = node.sampler
        views = list(node.views)
        return {
            "version": node.version,
            "host": node.host,
            "pid": os.getpid(),
            "mode": self._mode(),
            "uptime": round(time.time() - node.started_at, 1),
            "sampler": {
                "interval": sampler.interval,
                "paused": sampler.paused,
                "here": sampler.running,
                "seq": (node.local.latest or {}).get("seq", sampler.seq),
                "last_duration_ms": None if sampler.last_duration is None
                else round(sampler.last_duration * 1000, 2),
            },
            "viewers": sum(len(v.hub.subscribers) for v in views),
            "consoles": len(node.consoles),
            "events_published": sum(v.hub.stats.published for v in views),
            "alerts_firing": sum(len(r["firing"]) for r in self.alert_rules()),
        }

    def _mode(self) -> str:
        if self.node.fleet is None:
            return "embedded (one process)"
        if self.node.shared:
            return "shared through Redis"
        return "local: Redis unreachable"

    def streams(self) -> list[Subscriber]:
        return self.node.views.streams()

    def consoles(self) -> list:
        return self.node.consoles.sessions()

    def audit_latest(self, n: int) -> list[dict]:
        return self.node.audit.latest(n)

    def hosts(self) -> list[dict]:
        """Every host this dashboard can show, this one first."""
        node = self.node
        out = {node.host: {"name": node.host, "local": True, "stale": False, "role": "web"}}
        if node.fleet is not None:
            for name, info in node.fleet.hosts().items():
                out.setdefault(name, {"name": name, "local": False})
                out[name].update(
                    {k: info.get(k) for k in ("last_seen", "stale", "role", "interval", "paused")})
        if node.local.latest is not None:
            out[node.host]["last_seen"] = node.local.latest.get("ts")
        return list(out.values())

    def process_rows(self, host: str | None = None) -> list[dict]:
        """The full process table of host, from the latest sample (never a new scan)."""
        node = self.node
        host = host or node.host
        if host == node.host and (not node.shared or node.fleet.sampling.holding):
            return node.processes.rows(node.processes.latest)
        if node.fleet is None:
            raise KeyError(host)
        rows = node.fleet.call(node.store.procs, host)
        if rows is None:
            raise KeyError(host)
        return rows

    def process_details(self, pid: int) -> dict:
        """One process of this host looked into now (psutil, that pid only), with its CPU and memory
        over the samples that showed it; from now on its trail is kept while it lives. LookupError
        when there is no such process. Never its environment."""
        table = self.node.processes
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
        return (self.node.views.view(host).latest or {}).get("containers")

    def container_id(self, name: str) -> str:
        return self.node.containers.find(name)

    def container_details(self, cid: str) -> dict:
        return self.node.containers.details(cid)

    def container_restart(self, cid: str, wait: int = 10) -> None:
        self.node.containers.restart(cid, wait)

    def alert_rules(self) -> list[dict]:
        """Rules with the hosts where they fire."""
        node = self.node
        if node.shared:
            rules = node.fleet.call(node.store.rules)
            states = node.fleet.call(node.store.alert_states)
        else:
            rules = {rid: r.public() for rid, r in node.alerts.rules.items()}
            states = {k: v.public() for k, v in node.alerts.states.items()}
        out = []
        for rid, rule in rules.items():
            firing = sorted(h for (r, h), st in states.items() if r == rid and st["state"] == "firing")
            here = {h: st for (r, h), st in states.items() if r == rid}
            out.append({**rule, "firing": firing, "states": here})
        return out

    # ---- changing ---------------------------------------------------------------

    def config_event(self, change: str, by: str | None) -> Config:
        sampler = self.node.sampler
        return Config(interval=sampler.interval, paused=sampler.paused, alerts=self.alert_rules(),
                      change=change, by=by)

    def set_interval(self, seconds: float, by: str | None = None) -> Config:
        node = self.node
        if node.shared:
            node.fleet.call(node.store.set_state, interval=seconds)
        node.sampler.set_interval(seconds)
        event = self.config_event(f"interval {seconds:g}", by)
        node.publish(event)
        return event

    def set_paused(self, paused: bool, by: str | None = None) -> tuple[bool, Config]:
        node = self.node
        sampler = node.sampler
        if node.shared:
            was = node.fleet.call(node.store.state).get("paused", False)
            node.fleet.call(node.store.set_state, paused=paused)
            changed = was != paused
            sampler.pause() if paused else sampler.resume()
        else:
            changed = sampler.pause() if paused else sampler.resume()
        event = self.config_event("pause" if paused else "resume", by)
        if changed:
            node.publish(event)
        return changed, event

    def add_alert(self, metric: str, op: str, value: float, hold: float, by: str | None) -> Rule:
        """ValueError (a bad_args reply) for a bad rule, or one past MAX_ALERT_RULES."""
        node = self.node
        limit = node.config["MAX_ALERT_RULES"]
        full = ValueError(f"there are already {limit} alert rules (MAX_ALERT_RULES); "
                          "clear one first (alert list, alert clear <id>)")
        check(metric, op, value)  # malformed, or a rule that could never fire
        self._check_mount(metric)
        if node.shared:
            # Checked and added in one step in Redis, so workers racing cannot pass the limit.
            raw = node.fleet.call(node.store.add_rule, {
                "metric": metric, "op": op, "threshold": value, "hold": hold, "by": by,
                "created": time.time()}, limit)
            if raw is None:
                raise full
            node.alerts.replace(node.fleet.call(node.store.rules))
            rule = node.alerts.rules[raw["id"]]
        else:
            if len(node.alerts.rules) >= limit:
                raise full
            rule = node.alerts.add(metric, op, value, hold, by)
        node.publish(self.config_event(f"alert set {rule.id}: {rule.describe()}", by))
        return rule

    def _check_mount(self, metric: str) -> None:
        """A disk rule must name a mount some host reports (once any host has reported)."""
        if not metric.startswith("disk:"):
            return
        samples = [view.latest for view in self.node.views if view.latest is not None]
        mounts = sorted({d.get("mount") for s in samples for d in s.get("disks") or () if d.get("mount")})
        if samples and metric[5:] not in mounts:
            raise ValueError(f"no host reports a disk mounted at {metric[5:][:60]!r}; "
                             f"mounts: {', '.join(mounts) or 'none'}")

    def remove_alert(self, rule_id: str, by: str | None) -> Rule:
        node = self.node
        before = next((r for r in self.alert_rules() if r["id"] == rule_id), None)
        if node.shared:
            raw = node.fleet.call(node.store.remove_rule, rule_id)
            if raw is None:
                raise KeyError(rule_id)
            rule = Rule.from_dict(raw)
            node.alerts.replace(node.fleet.call(node.store.rules))
        else:
            rule = node.alerts.remove(rule_id)
        for host in (before or {}).get("firing", []):
            st = RuleState(**before["states"][host])
            node.publish(alert_event(rule, st, "resolved", host, "rule cleared"))
            node.notify(rule, st, "resolved", host, None, "rule cleared")
        node.publish(self.config_event(f"alert clear {rule.id}", by))
        return rule

    def broadcast(self, message: str, by: str | None) -> Notice:
        event = Notice(message=message, by=by)
        self.node.publish(event)
        return event

    # ---- notifications (alerts.delivery.Notifier over the store) ------------------------

    def _notify_call(self, fn, *args):
        """Run a notification store call; an unreachable store refuses the command."""
        try:
            return fn(*args)
        except self.node.notify_errors as exc:
            if self.node.fleet is not None:
                self.node.fleet.trouble(exc)
            raise StoreUnavailable(str(exc)) from exc

    def notify_channels(self) -> list[dict]:
        return self._notify_call(self.node.notifier.channels)

    def notify_add(self, url: str, name: str | None, by: str | None) -> dict:
        return self._notify_call(self.node.notifier.add_channel, url, name, by)

    def notify_remove(self, name: str, by: str | None) -> dict:
        return self._notify_call(self.node.notifier.remove_channel, name)

    def notify_test(self, name: str | None, by: str | None) -> list[dict]:
        return self._notify_call(self.node.notifier.test, name, by)

    def alert_history(self, n: int) -> list[dict]:
        return self._notify_call(self.node.notifier.history, n)

    def silence_add(self, rule: str, seconds: float, reason: str | None, by: str | None) -> dict:
        if rule != "all" and rule not in {r["id"] for r in self.alert_rules()}:
            raise KeyError(rule)
        return self._notify_call(self.node.notifier.add_silence, rule, seconds, reason, by)

    def silences(self) -> list[dict]:
        return self._notify_call(self.node.notifier.store.silences)

    def silence_clear(self, silence_id: str, by: str | None) -> dict:
        found = self._notify_call(self.node.notifier.store.clear_silence, silence_id)
        if found is None:
            raise KeyError(silence_id)
        return found

    def drop_streams(self, name: str) -> int:
        subs = [(view.hub, s) for view in self.node.views for s in view.hub.subscribers
                if name == "all" or s.client == name]
        for hub, sub in subs:
            hub.close(sub, "dropped by an operator")
        return len(subs)
