"""A figure over rounds (median, min-max, spread), a target row, and how the
report's tables print them: the SSE and console tables (report.py,
console_report.py) and the soak's (soak_report.py) share these."""

from __future__ import annotations

import statistics


def stat(values: list) -> dict | None:
    """Median, min, max, count and spread of the values that are not None; None if none are."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    return {
        "median": round(med, 4),
        "min": round(lo, 4),
        "max": round(hi, 4),
        "n": len(values),
        # (max - min) / median: how noisy this figure was across rounds.
        "spread": round((hi - lo) / med, 3) if med else None,
    }


def target(name: str, goal: str, measured: str, ok: bool | None) -> dict:
    """A row of the Targets table: PASS, FAIL, or n/a when it was not judged (ok None)."""
    status = "n/a" if ok is None else ("PASS" if ok else "FAIL")
    return {"target": name, "goal": goal, "measured": measured, "status": status}


def fmt_stat(s: dict | None, digits: int = 1, noise: bool = True) -> str:
    """`median (min-max)` of a stat, the median alone for one round or without noise; `-` for none."""
    if not s:
        return "-"
    med = f"{s['median']:.{digits}f}"
    if noise and s["n"] > 1:
        return f"{med} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"
    return med


def rounds_range(s: dict, digits: int) -> str:
    """` (rounds min-max)` after a median, when there was more than one round."""
    if s["n"] > 1:
        return f" (rounds {s['min']:.{digits}f}-{s['max']:.{digits}f})"
    return ""


def ratio_range(r: dict) -> str:
    """` [min-max]` of a ratio's per-round values, when they differ."""
    if r["per_round_min"] is not None and r["per_round_min"] != r["per_round_max"]:
        return f" [{r['per_round_min']}-{r['per_round_max']}]"
    return ""


def fmt(v, spec: str = "", none: str = "-") -> str:
    """A value formatted by spec, or `none` when it is None."""
    return none if v is None else format(v, spec)
