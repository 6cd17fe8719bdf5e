"""The record of an alert transition, kept with its evidence for every notification channel.

`Recorder.record` is all the sampler's path does for notifications: one write to
the store (the history entry, and one outbox entry per channel unless a silence
holds); nothing is sent here (alerts/delivery.py sends, from one loop). It
loads neither gevent, nor Apprise, nor the egress policy: the agent records its
host's transitions with it, and the web processes deliver them.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Iterable

from ..escapes import visible
from .rules import Rule, RuleState, unit_of, where

log = logging.getLogger("dashboard.notify")

EVIDENCE_ROWS = 5


def _evidence(sample: dict | None) -> dict:
    procs = (sample or {}).get("processes") or {}
    keep = ("pid", "name", "user", "cpu", "rss")
    pick = lambda rows: [{k: r.get(k) for k in keep} for r in (rows or [])[:EVIDENCE_ROWS]]  # noqa: E731
    return {"sample_ts": (sample or {}).get("ts"), "seq": (sample or {}).get("seq"),
            "count": procs.get("count"), "top_cpu": pick(procs.get("top_cpu")),
            "top_mem": pick(procs.get("top_mem"))}


def title(state: str, rule: dict, host: str) -> str:
    """`[FIRING] cpu > 90 % for 30 s on web-1` (a host or mount name's controls shown as escapes)."""
    unit = rule.get("unit") or ""
    hold = f" for {rule['hold']:g} s" if rule.get("hold") else ""
    return visible(f"[{state.upper()}] {rule['metric']} {rule['op']} {rule['threshold']:g}"
                   f"{' ' + unit if unit else ''}{hold} on {host}")


def transition(rule: Rule, st: RuleState, change: str, host: str, sample: dict | None,
               why: str = "", now: float | None = None) -> dict:
    """The record kept (and sent) for one transition; `id` and `link` come when it is stored."""
    ts = (sample or {}).get("ts") or (time.time() if now is None else now)
    host = where(host, st)  # a container rule: <host>/<container>, with the container's figures
    r = {"id": rule.id, "metric": rule.metric, "op": rule.op, "threshold": rule.threshold,
         "hold": rule.hold, "unit": unit_of(rule.metric)}
    return {"ts": ts, "state": change, "host": host, "rule": r, "value": st.value,
            "since": st.since, "why": why, "title": title(change, r, host),
            "evidence": {**_evidence(sample), **({"container": st.evidence} if st.evidence else {})},
            "silenced": None, "channels": []}


class Recorder:
    """Records transitions in a notification store (store/notify_store.py); `counts` is shared with
    whoever reports them, and `wake` tells the delivery loop there is something to send."""

    def __init__(self, store, env_names: Callable[[], Iterable[str]], *,
                 fallback_sample: Callable[[str], dict | None] = lambda host: None, counts: dict | None = None,
                 wake: Callable[[], object] = lambda: None) -> None:
        self.store = store
        self.env_names = env_names  # the channels of NOTIFY_URLS, by name
        self.fallback_sample = fallback_sample
        self.counts = {"recorded": 0, "silenced": 0} if counts is None else counts
        self.wake = wake
        self._fired: dict[tuple[str, str], dict] = {}

    def channel_names(self) -> list[str]:
        return list(dict.fromkeys([*self.env_names(), *(c["name"] for c in self.store.channels())]))

    def silence_for(self, rule_id: str) -> dict | None:
        return next((s for s in self.store.silences() if s["rule"] in (rule_id, "all")), None)

    def record(self, rule: Rule, st: RuleState, change: str, host: str, sample: dict | None,
               why: str = "") -> dict:
        sample = sample if sample is not None else self.fallback_sample(host)
        t = transition(rule, st, change, host, sample, why)
        key = (rule.id, host)
        if change == "resolved":
            fired = self._fired.pop(key, None) or self._last_firing(rule.id, host)
            if fired:
                t["fired"] = fired
        silence = self.silence_for(rule.id)
        channels = [] if silence else self.channel_names()
        if silence:
            t["silenced"] = {"id": silence["id"], "reason": silence.get("reason"), "until": silence["until"]}
        t["channels"] = channels
        t = self.store.record(t, channels)
        if change == "firing":
            self._fired[key] = {"id": t["id"], "ts": t["ts"], "evidence": t["evidence"]}
        self.counts["recorded"] += 1
        self.counts["silenced"] += 1 if silence else 0
        log.info("alert %s recorded as %s%s", t["title"], t["id"],
                 f" (silenced by {silence['id']})" if silence else f" for {len(channels)} channel(s)")
        self.wake()
        return t

    def _last_firing(self, rule_id: str, host: str) -> dict | None:
        for t in self.store.history(200):
            if t["rule"]["id"] == rule_id and t["host"] == host and t["state"] == "firing":
                return {"id": t["id"], "ts": t["ts"], "evidence": t["evidence"]}
        return None
