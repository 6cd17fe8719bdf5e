"""The benchmark's plots: fan-out CPU and delay against viewers (fanout.png), the
soak's series over minutes (soak.png). Each returns None when drawn, else why not."""

from __future__ import annotations

from pathlib import Path

from .servers import KINDS

NO_MATPLOTLIB = "matplotlib is not installed (bin/bench installs it from requirements-bench.txt)"


def _pyplot():
    """matplotlib.pyplot drawing to files (Agg), or None when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fanout_plot(summary: dict, path: Path) -> str | None:
    """Server CPU and p99 delay against viewers, one line per server. None if drawn."""
    plt = _pyplot()
    if plt is None:
        return NO_MATPLOTLIB
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric, label in ((axes[0], "server_cpu_percent", "server CPU (% of one core)"),
                              (axes[1], "delay_p99_ms", "delivery delay p99 (ms)")):
        for server, kind in KINDS.items():
            points = sorted(
                (int(n), e[metric]) for n, e in summary.get(server, {}).items()
                if e.get(metric) and e[metric]["median"] > 0
            )
            if not points:
                continue
            xs = [n for n, _ in points]
            med = [s["median"] for _, s in points]
            lo = [s["median"] - s["min"] for _, s in points]
            hi = [s["max"] - s["median"] for _, s in points]
            ax.errorbar(xs, med, yerr=[lo, hi], marker="o", capsize=3, label=kind.label)
        counts = sorted({int(n) for e in summary.values() for n in e})
        ax.set_xlabel("viewers")
        ax.set_ylabel(label + ", log scale")
        ax.grid(True, which="both", alpha=0.3)
        # Log scales: the naive server sits one to two orders of magnitude above.
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(counts, [f"{n:,}" for n in counts])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        # Labels at 1, 2, 5 of each decade: decades alone leave a line unreadable.
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axes[0].legend(fontsize=8)
    fig.suptitle("SSE fan-out at 1 event/s (medians, bars: min-max over rounds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def soak_plot(result: dict, path: Path) -> str | None:
    """RSS, open files, greenlets and the connection counts over minutes. None if drawn."""
    plt = _pyplot()
    if plt is None:
        return NO_MATPLOTLIB

    samples = [s for s in result["samples"] if s["phase"] != "boot"]
    load = [s for s in samples if s["phase"] == "load"]
    if not load:
        return "no samples under load"
    verdict_of = {v["series"]: v for v in result["verdicts"]}
    fig, axes = plt.subplots(2, 2, figsize=(12, 7), sharex=True)
    panels = ((axes[0][0], "rss_mb", "RSS (MB)"), (axes[0][1], "open_files", "open files"),
              (axes[1][0], "greenlets", "greenlets alive"))
    k = max(1, len(load) // 3)
    for ax, key, label in panels:
        xs = [s["minute"] for s in samples if s.get(key) is not None]
        ys = [s[key] for s in samples if s.get(key) is not None]
        ax.plot(xs, ys, marker=".", color="tab:blue")
        idle = [s for s in samples if s["phase"] in ("start", "end") and s.get(key) is not None]
        ax.scatter([s["minute"] for s in idle], [s[key] for s in idle], color="tab:green", zorder=3,
                   label="no clients (start, end)")
        v = verdict_of.get(key, {})
        if "first_third_median" in v:
            for part, med in ((load[:k], v["first_third_median"]), (load[-k:], v["last_third_median"])):
                ax.hlines(med, part[0]["minute"], part[-1]["minute"], colors="tab:orange", linewidth=2)
            ax.axvspan(load[0]["minute"], load[k - 1]["minute"], color="tab:orange", alpha=0.08)
            ax.axvspan(load[-k]["minute"], load[-1]["minute"], color="tab:orange", alpha=0.08)
        ax.set_title(f"{label}: {v.get('verdict', 'n/a')}", fontsize=10)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if key != "rss_mb":  # RSS never nears 0: zoomed in, so a slow climb shows
            ax.set_ylim(bottom=0)
    axes[0][0].legend(fontsize=8, loc="lower right")
    ax = axes[1][1]
    xs = [s["minute"] for s in samples]
    ax.plot(xs, [s["viewers"] for s in samples], marker=".", label="viewers (server)")
    ax.plot(xs, [s["consoles"] for s in samples], marker=".", label="consoles (server)")
    ax.set_ylabel("open connections")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    cpu = [(s["minute"], s["cpu_percent"]) for s in samples if s["phase"] == "load" and s.get("cpu_percent") is not None]
    if cpu:
        ax2 = ax.twinx()
        ax2.plot([x for x, _ in cpu], [y for _, y in cpu], color="tab:red", alpha=0.6, label="server CPU %")
        ax2.set_ylabel("server CPU (% of one core)")
        ax2.set_ylim(bottom=0)
        ax2.legend(fontsize=8, loc="lower right")
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(f"connections; server CPU: {verdict_of.get('cpu_percent', {}).get('verdict', 'n/a')}", fontsize=10)
    for a in axes[1]:
        a.set_xlabel("minutes since the load started (0: start sample, last: end sample)")
    p = result["params"]
    fig.suptitle(f"Soak: {p['minutes']:g} min, {p['viewers']} viewers and {p['consoles']} consoles coming and going "
                 f"(orange: medians of the first and last thirds)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None
