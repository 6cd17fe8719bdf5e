// Live charts (uPlot). One columnar store feeds every chart: history from
// /api/history first, then one row per `metrics` event. Charts redraw at most
// once per animation frame and not at all while the tab is hidden.

import uPlot from "../vendor/uPlot-1.6.32.esm.js";
import { bytes, num } from "./format.js";

const CHARTS = [
  {
    key: "cpu", title: "CPU", unit: "%", range: [0, 100], cores: true, wide: true,
    series: [{ label: "total", col: "cpu", color: "--c1", width: 2 }],
  },
  {
    key: "memory", title: "Memory", unit: "%", range: [0, 100],
    series: [
      { label: "memory", col: "memory", color: "--c2", width: 2 },
      { label: "swap", col: "swap", color: "--c3" },
      { label: "container", col: "container_memory", color: "--c4", optional: true },
    ],
  },
  {
    key: "load", title: "Load average", unit: "",
    series: [
      { label: "1 min", col: "load1", color: "--c1", width: 2 },
      { label: "5 min", col: "load5", color: "--c2" },
      { label: "15 min", col: "load15", color: "--c3" },
    ],
  },
  {
    key: "disk", title: "Disk I/O", unit: "B/s",
    series: [
      { label: "read", col: "disk_read", color: "--c2", width: 2 },
      { label: "write", col: "disk_write", color: "--c5", width: 2 },
    ],
  },
  {
    key: "net", title: "Network", unit: "B/s",
    series: [
      { label: "received", col: "net_rx", color: "--c1", width: 2 },
      { label: "sent", col: "net_tx", color: "--c4", width: 2 },
    ],
  },
];

const COLUMNS = ["cpu", "memory", "swap", "container_memory", "load1", "load5", "load15",
  "disk_read", "disk_write", "net_rx", "net_tx"];

function dig(sample, path) {
  let v = sample;
  for (const step of path) { if (v == null) return null; v = v[step]; }
  return v ?? null;
}

function sumDisks(sample, field) {
  const disks = sample.disks || [];
  if (!disks.length || disks.some((d) => d[field] == null)) return null;
  return disks.reduce((a, d) => a + d[field], 0);
}

// Same extraction as the server's history columns (dashboard/history.py).
function row(sample) {
  return {
    ts: sample.ts,
    cores: dig(sample, ["cpu", "per_core"]) || [],
    cpu: dig(sample, ["cpu", "percent"]),
    memory: dig(sample, ["memory", "percent"]),
    swap: dig(sample, ["swap", "percent"]),
    container_memory: dig(sample, ["container", "memory_percent"]),
    load1: dig(sample, ["load", "load1"]),
    load5: dig(sample, ["load", "load5"]),
    load15: dig(sample, ["load", "load15"]),
    disk_read: sumDisks(sample, "read_bps"),
    disk_write: sumDisks(sample, "write_bps"),
    net_rx: dig(sample, ["net", "rx_bps"]),
    net_tx: dig(sample, ["net", "tx_bps"]),
  };
}

function timeOfDay(epochSeconds, short = false) {
  const d = new Date(epochSeconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return short ? hm : `${hm}:${pad(d.getSeconds())}`;
}

function showLatest(u) {
  const n = u.data[0].length;
  if (n) u.setLegend({ idx: n - 1 }, false);
}

// The width a chart gets: its figure's content box (clientWidth counts the
// padding too), never under 200 px.
function plotWidth(figure) {
  const style = getComputedStyle(figure);
  const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
  return Math.max(200, Math.floor(figure.clientWidth - padding));
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function axisValues(unit) {
  if (unit === "B/s") return (u, splits) => splits.map((v) => (v == null ? "" : bytes(v, 0)));
  if (unit === "%") return (u, splits) => splits.map((v) => (v == null ? "" : v + "%"));
  return (u, splits) => splits.map((v) => (v == null ? "" : num(v, v < 10 ? 1 : 0)));
}

function legendValue(unit) {
  return (u, v) => {
    if (v == null) return "—";
    if (unit === "B/s") return bytes(v) + "/s";
    if (unit === "%") return v.toFixed(1) + " %";
    return v.toFixed(2);
  };
}

export class Charts {
  constructor(root, { maxSeconds }) {
    this.root = root;
    this.maxSeconds = maxSeconds;
    this.window = 900;
    this.store = { ts: [], cores: [] };
    for (const c of COLUMNS) this.store[c] = [];
    this.plots = [];
    this.pending = false;
    this.build();
    new ResizeObserver(() => this.resize()).observe(root);
    document.addEventListener("visibilitychange", () => this.schedule());
  }

  // ---- data --------------------------------------------------------------

  load(columns) {
    const s = this.store;
    s.ts = columns.ts.slice();
    for (const c of COLUMNS) s[c] = (columns[c] || []).slice();
    s.cores = (columns.cores || []).map((col) => col.slice());
    this.rebuildIfShapeChanged();
    this.schedule();
  }

  push(sample) {
    const r = row(sample);
    const s = this.store;
    s.ts.push(r.ts);
    for (const c of COLUMNS) s[c].push(r[c]);
    while (s.cores.length < r.cores.length) s.cores.push(new Array(s.ts.length - 1).fill(null));
    s.cores.forEach((col, i) => col.push(i < r.cores.length ? r.cores[i] : null));
    this.trim();
    this.rebuildIfShapeChanged();
    this.schedule();
  }

  clear() {
    this.load({ ts: [], cores: [] });
  }

  trim() {
    const s = this.store;
    const limit = s.ts[s.ts.length - 1] - this.maxSeconds;
    let drop = 0;
    while (drop < s.ts.length && s.ts[drop] < limit) drop++;
    if (!drop) return;
    s.ts.splice(0, drop);
    for (const c of COLUMNS) s[c].splice(0, drop);
    for (const col of s.cores) col.splice(0, drop);
  }

  setWindow(seconds) {
    this.window = seconds;
    this.schedule();
  }

  // ---- drawing -------------------------------------------------------------

  build() {
    for (const p of this.plots) p.plot.destroy();
    this.root.replaceChildren();
    this.plots = [];
    this.shape = this.shapeKey();
    this.coreCount = this.store.cores.length;
    const grid = cssVar("--grid"), text = cssVar("--muted");
    for (const def of CHARTS) {
      const figure = document.createElement("figure");
      figure.className = def.wide ? "chart wide" : "chart";
      figure.dataset.chart = def.key;
      const caption = document.createElement("figcaption");
      caption.textContent = def.title;
      figure.append(caption);
      this.root.append(figure);
      const series = [{ label: "time", value: (u, v) => (v == null ? "—" : timeOfDay(v)) }];
      const cols = [];
      for (const s of def.series) {
        if (s.optional && !this.hasData(s.col)) continue;
        series.push({ label: s.label, stroke: cssVar(s.color), width: s.width || 1.25,
          value: legendValue(def.unit), spanGaps: false, points: { show: false } });
        cols.push(s.col);
      }
      if (def.cores) {
        for (let i = 0; i < this.coreCount; i++) {
          series.push({ label: `core ${i}`, class: "core", stroke: cssVar("--core"), width: 1,
            value: legendValue(def.unit), points: { show: false } });
        }
      }
      const opts = {
        width: plotWidth(figure),
        height: 150,
        series,
        cursor: { drag: { x: false, y: false }, points: { size: 5 } },
        legend: { live: true },
        // Idle (no pointer on the chart), the legend shows the latest values.
        hooks: { setCursor: [(u) => { if (u.cursor.idx == null) showLatest(u); }] },
        scales: { x: { time: true }, y: def.range ? { range: def.range } : { range: (u, min, max) => [0, Math.max(max, def.unit === "B/s" ? 1024 : 1)] } },
        axes: [
          { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid },
            values: (u, splits) => splits.map((v) => timeOfDay(v, u.scales.x.max - u.scales.x.min > 600)) },
          { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, values: axisValues(def.unit), size: 68 },
        ],
      };
      const plot = new uPlot(opts, this.dataFor(def, cols), figure);
      this.plots.push({ def, cols, plot, figure });
    }
  }

  dataFor(def, cols) {
    const s = this.store;
    const data = [s.ts, ...cols.map((c) => s[c])];
    if (def.cores) data.push(...s.cores.slice(0, this.coreCount));
    return data;
  }

  hasData(col) {
    return this.store[col].some((v) => v != null);
  }

  // Rebuild when the set of lines changes (cores appear, a container limit shows up).
  shapeKey() {
    return [this.store.cores.length, ...CHARTS.flatMap((d) => d.series.filter((s) => s.optional).map((s) => this.hasData(s.col)))].join();
  }

  rebuildIfShapeChanged() {
    if (this.shapeKey() !== this.shape) this.build();
  }

  schedule() {
    if (this.pending || document.hidden) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  draw() {
    const ts = this.store.ts;
    const max = ts.length ? ts[ts.length - 1] : Date.now() / 1000;
    // Until the window fills, show what there is rather than an empty chart.
    const min = Math.max(ts.length ? ts[0] : max - 60, max - this.window);
    for (const { def, cols, plot } of this.plots) {
      plot.batch(() => {
        plot.setData(this.dataFor(def, cols), false);
        plot.setScale("x", { min, max: Math.max(max, min + 10) });
      });
      if (plot.cursor.idx == null) showLatest(plot);
    }
  }

  resize() {
    for (const { plot, figure } of this.plots) {
      const width = plotWidth(figure);
      if (width !== plot.width) plot.setSize({ width, height: 150 });
    }
  }

  // Colors come from CSS variables: rebuild with the same data on theme change.
  restyle() {
    this.build();
    this.schedule();
  }
}
