"""Alert rules on sample fields, evaluated once per sample with a hold time.

A rule such as `cpu > 90 --for 30` goes pending when the condition first
holds and fires once it has held for 30 s; it resolves as soon as the
condition stops holding. Only transitions (firing, resolved) become events.
A sample without the value (no rate yet, collector missing) changes nothing.

Rules are shared; a rule applies to every host, or to the hosts its `hosts`
pattern matches (one name, or a shell-style set such as `web-*`). The state
of a rule is kept per host, by whoever samples that host.

A container rule (`container:web cpu > 80`, `container:* memory > 90`: a
name, or a pattern with `*` and `?`, then `cpu` or `memory`, each in % of the
container's own limit) is checked on every running container of the sample
that matches, with a state of its own per container (kept under
`<host>/<container>`), so each container fires and resolves once; the
container's figures go with the state as its evidence. A container that is no
longer running resolves its firing rules ("container gone").
"""

from __future__ import annotations

import fnmatch
import operator
import time
from fnmatch import fnmatchcase
from dataclasses import asdict, dataclass, field
from typing import Callable

from ..sampling.series import SERIES
from ..stream.events import Alert

OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}

_SIMPLE = {s.name: s for s in SERIES}
METRICS_HELP = ", ".join(list(_SIMPLE) + ["disk:<mount>", "container:<name|pattern> cpu|memory"])
# A container rule's field: the key of its row in the sample (% of the container's limit).
CONTAINER_FIELDS = {"cpu": "cpu_pct", "memory": "mem_pct"}
# What a container rule keeps of the container's row as its evidence.
EVIDENCE = ("id", "name", "image", "cpu", "cpu_pct", "cpu_limit", "mem", "mem_pct", "mem_limit", "cache",
            "pids", "restarts", "uptime")


def container_metric(metric: str) -> tuple[str, str] | None:
    """(name pattern, row key) of a container rule's metric, None for another metric, or ValueError."""
    if not metric.startswith("container:"):
        return None
    pattern, _, field = metric[10:].rpartition(" ")
    if not pattern or field not in CONTAINER_FIELDS:
        raise ValueError(f"a container rule is 'container:<name|pattern> cpu' or '... memory', "
                         f"not {metric[:60]!r}")
    return pattern, CONTAINER_FIELDS[field]


def join_container_metric(words: list[str]) -> list[str]:
    """`container:web cpu > 80` as typed is one metric: its first two words joined."""
    if len(words) >= 2 and words[0].startswith("container:") and words[1] not in OPS:
        return [f"{words[0]} {words[1]}"] + words[2:]
    return words


def metric_getter(metric: str) -> Callable[[dict], float | None]:
    """How to read metric from a sample, or ValueError naming the known metrics."""
    if metric in _SIMPLE:
        return _SIMPLE[metric].get
    if container_metric(metric) is not None:
        return lambda sample: None  # per container: see Alerts.evaluate
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
    return "%" if metric.startswith(("disk:", "container:")) else _SIMPLE[metric].unit


@dataclass
class Rule:
    id: str
    metric: str
    op: str
    threshold: float
    hold: float
    by: str | None
    created: float = field(default_factory=time.time)
    hosts: str | None = None  # a host name or a pattern (`web-*`); None: every host

    def describe(self) -> str:
        hold = f" for {self.hold:g}s" if self.hold else ""
        on = f" on {self.hosts}" if self.hosts else ""
        return f"{self.metric} {self.op} {self.threshold:g}{hold}{on}"

    def applies(self, host: str) -> bool:
        return self.hosts is None or fnmatchcase(host, self.hosts)

    def public(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Rule":
        return cls(d["id"], d["metric"], d["op"], float(d["threshold"]), float(d["hold"]), d.get("by"),
                   float(d.get("created", 0)), d.get("hosts") or None)


@dataclass
class RuleState:
    state: str = "ok"  # ok, pending, firing
    since: float | None = None  # when the condition started holding
    value: float | None = None  # the latest value seen
    subject: str | None = None  # the container, for a container rule
    evidence: dict | None = None  # the container's figures at the latest sample

    def public(self) -> dict:
        return asdict(self)


def check(metric: str, op: str, threshold: float | None = None) -> None:
    """ValueError for a rule that is malformed or could never fire: percentages live in 0..100
    and every metric here is at least 0, so `cpu > 1000` or `load1 < 0` would wait forever."""
    metric_getter(metric)
    if op not in OPS:
        raise ValueError(f"operator must be one of {' '.join(OPS)}")
    if threshold is None:
        return
    percent = unit_of(metric) == "%"
    if threshold < 0 or (op == "<" and threshold == 0):
        raise ValueError(f"{metric} is never below 0, so '{metric} {op} {threshold:g}' could never fire")
    if percent and (threshold > 100 or (op == ">" and threshold == 100)):
        raise ValueError(f"{metric} is a percentage (0 to 100), so '{metric} {op} {threshold:g}' "
                         "could never fire")


class Alerts:
    def __init__(self) -> None:
        self.rules: dict[str, Rule] = {}
        self.states: dict[tuple[str, str], RuleState] = {}  # (rule id, host)
        self.next_id = 1

    def restore(self, rules: list[dict], next_id: int, states: list | None = None) -> None:
        """Take up rules kept across a restart, with each one's state per host, so a
        rule that was firing is still firing (and is not announced again)."""
        self.rules = {d["id"]: Rule.from_dict(d) for d in rules}
        # Firing states only: a pending one starts counting its hold time again.
        self.states = {(rid, host): RuleState(**st) for rid, host, st in states or ()
                       if rid in self.rules and st.get("state") == "firing"}
        self.next_id = max(int(next_id), 1)

    def saved(self) -> dict:
        """What restore() takes back: rules, the next id and the states."""
        return {"rules": [r.public() for r in self.rules.values()], "next_id": self.next_id,
                "states": [[rid, host, st.public()] for (rid, host), st in self.states.items()]}

    def add(self, metric: str, op: str, threshold: float, hold: float, by: str | None,
            hosts: str | None = None) -> Rule:
        check(metric, op, threshold)
        rule = Rule(f"a{self.next_id}", metric, op, threshold, hold, by, hosts=hosts)
        self.next_id += 1
        self.rules[rule.id] = rule
        return rule

    def remove(self, rule_id: str) -> Rule:
        rule = self.rules.pop(rule_id)  # KeyError when unknown
        for key in [k for k in self.states if k[0] == rule_id]:
            del self.states[key]
        return rule

    def replace(self, rules: dict[str, dict]) -> None:
        """Take the shared rule set (from Redis); keep state of rules that stay."""
        self.rules = {rid: Rule.from_dict(d) for rid, d in rules.items()}
        self.states = {k: v for k, v in self.states.items() if k[0] in self.rules}

    def firing(self) -> list[tuple[Rule, str]]:
        return [(self.rules[rid], host) for (rid, host), st in self.states.items()
                if st.state == "firing" and rid in self.rules]

    def state_of(self, rule_id: str, host: str) -> RuleState:
        return self.states.setdefault((rule_id, host), RuleState())

    def evaluate(self, sample: dict, host: str, now: float | None = None) -> list[tuple[Rule, RuleState, str]]:
        """Apply one sample of host; returns the (rule, state, "firing"|"resolved") transitions."""
        now = sample.get("ts", time.time()) if now is None else now
        changes = []
        for rule in list(self.rules.values()):
            if not rule.applies(host):
                continue
            if rule.metric.startswith("container:"):
                changes += self._containers(rule, sample, host, now)
                continue
            value = metric_getter(rule.metric)(sample)
            if value is None:
                continue
            st = self.state_of(rule.id, host)
            change = self._step(rule, st, value, now)
            if change:
                changes.append((rule, st, change))
        return changes

    @staticmethod
    def _step(rule: Rule, st: RuleState, value: float, now: float) -> str | None:
        st.value = value
        if OPS[rule.op](value, rule.threshold):
            if st.since is None:
                st.since = now
            if st.state != "firing" and now - st.since >= rule.hold:
                st.state = "firing"
                return "firing"
            if st.state == "ok":
                st.state = "pending"
            return None
        was = st.state
        st.state, st.since = "ok", None
        return "resolved" if was == "firing" else None

    def _containers(self, rule: Rule, sample: dict, host: str, now: float) -> list:
        """A container rule on every matching container of the sample, each with its own state."""
        section = sample.get("containers")
        if not isinstance(section, dict) or not isinstance(section.get("list"), list):
            return []  # not collected in this sample: nothing changes
        pattern, key = container_metric(rule.metric)
        changes, seen = [], set()
        for row in section["list"]:
            name = row.get("name") if isinstance(row, dict) else None
            if not isinstance(name, str) or not fnmatch.fnmatchcase(name, pattern):
                continue
            seen.add(f"{host}/{name}")
            value = row.get(key)
            if not isinstance(value, (int, float)):
                continue
            st = self.state_of(rule.id, f"{host}/{name}")
            st.subject, st.evidence = name, {k: row.get(k) for k in EVIDENCE}
            change = self._step(rule, st, value, now)
            if change:
                changes.append((rule, st, change))
        prefix = host + "/"
        for state_key in [k for k in self.states if k[0] == rule.id and k[1].startswith(prefix)]:
            if state_key[1] not in seen:  # not running any more
                st = self.states.pop(state_key)
                if st.state == "firing":
                    st.state, st.since = "ok", None
                    st.evidence = {**(st.evidence or {}), "gone": True}
                    changes.append((rule, st, "resolved"))
        return changes


def where(host: str, st: RuleState) -> str:
    """Where the rule fired: the host, or `<host>/<container>` for a container rule."""
    if st.subject and not host.endswith("/" + st.subject):
        return f"{host}/{st.subject}"
    return host


def alert_event(rule: Rule, st: RuleState, change: str, host: str, why: str = "") -> Alert:
    value = "?" if st.value is None else f"{st.value:g}{unit_of(rule.metric)}"
    host = where(host, st)
    if not why and (st.evidence or {}).get("gone"):
        why = "container gone"
    message = f"{host}: {rule.describe()}: {change} at {value}" + (f" ({why})" if why else "")
    return Alert(rule=rule.public(), host=host, state=change, value=st.value, message=message,
                 container=st.evidence)
