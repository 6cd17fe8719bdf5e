"""Alert rules on sample fields, evaluated once per sample with a hold time.

A rule such as `cpu > 90 --for 30` goes pending when the condition first
holds and fires once it has held for 30 s; it resolves as soon as the
condition stops holding. Only transitions (firing, resolved) become events.
A sample without the value (no rate yet, collector missing) changes nothing.
"""

from __future__ import annotations

import itertools
import operator
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from .history import SERIES

OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}

_SIMPLE = {s.name: s for s in SERIES}
METRICS_HELP = ", ".join(list(_SIMPLE) + ["disk:<mount>"])


def metric_getter(metric: str) -> Callable[[dict], float | None]:
    """How to read metric from a sample, or ValueError naming the known metrics."""
    if metric in _SIMPLE:
        return _SIMPLE[metric].get
    if metric.startswith("disk:") and len(metric) > 5:
        mount = metric[5:]

        def disk_percent(sample: dict) -> float | None:
            for disk in sample.get("disks") or ():
                if disk.get("mount") == mount:
                    return disk.get("percent")
            return None

        return disk_percent
    raise ValueError(f"unknown metric {metric[:40]!r}; known: {METRICS_HELP}")


def unit_of(metric: str) -> str:
    return "%" if metric.startswith("disk:") else _SIMPLE[metric].unit


@dataclass
class Rule:
    id: str
    metric: str
    op: str
    threshold: float
    hold: float
    by: str | None
    created: float = field(default_factory=time.time)
    state: str = "ok"  # ok, pending, firing
    since: float | None = None  # when the condition started holding
    value: float | None = None  # the latest value seen

    def describe(self) -> str:
        hold = f" for {self.hold:g}s" if self.hold else ""
        return f"{self.metric} {self.op} {self.threshold:g}{hold}"

    def public(self) -> dict:
        return asdict(self)


class Alerts:
    def __init__(self) -> None:
        self.rules: dict[str, Rule] = {}
        self._ids = itertools.count(1)

    def add(self, metric: str, op: str, threshold: float, hold: float, by: str | None) -> Rule:
        metric_getter(metric)  # validates
        if op not in OPS:
            raise ValueError(f"operator must be one of {' '.join(OPS)}")
        rule = Rule(f"a{next(self._ids)}", metric, op, threshold, hold, by)
        self.rules[rule.id] = rule
        return rule

    def remove(self, rule_id: str) -> Rule:
        try:
            return self.rules.pop(rule_id)
        except KeyError:
            raise KeyError(rule_id) from None

    def firing(self) -> list[Rule]:
        return [r for r in self.rules.values() if r.state == "firing"]

    def evaluate(self, sample: dict, now: float | None = None) -> list[tuple[Rule, str]]:
        """Apply one sample; returns the (rule, "firing"|"resolved") transitions."""
        now = sample.get("ts", time.time()) if now is None else now
        changes = []
        for rule in list(self.rules.values()):
            value = metric_getter(rule.metric)(sample)
            if value is None:
                continue
            rule.value = value
            if OPS[rule.op](value, rule.threshold):
                if rule.since is None:
                    rule.since = now
                if rule.state != "firing" and now - rule.since >= rule.hold:
                    rule.state = "firing"
                    changes.append((rule, "firing"))
                elif rule.state == "ok":
                    rule.state = "pending"
            else:
                was = rule.state
                rule.state, rule.since = "ok", None
                if was == "firing":
                    changes.append((rule, "resolved"))
        return changes
