// Charts (uPlot). Short windows follow the stream: one columnar store fed by
// /api/history first, then one row per `metrics` event. Long windows (hours
// to a year) show a fixed answer of /api/history from the roll-up tiers, with
// a min-max band around each line, reloaded by the page each minute. Every
// chart shares one cursor (uPlot's cursor sync); dragging across a chart zooms
// all of them, a double-click goes back one zoom. Charts redraw at most once
// per animation frame and not at all while the tab is hidden.

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

// The most points a live chart keeps: an hour at the fastest interval (0.25 s).
const MAX_POINTS = 4 * 3600;

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

const pad = (n) => String(n).padStart(2, "0");

// Hovered time: with the date on rolled-up windows (a point stands for a step).
function timeOfDay(epochSeconds, short = false, fixed = null) {
  const d = new Date(epochSeconds * 1000);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (fixed) return `${d.getMonth() + 1}/${d.getDate()} ${hm}`;
  return short ? hm : `${hm}:${pad(d.getSeconds())}`;
}

// Axis labels: seconds on short spans, hours and minutes, then dates.
function axisTime(epochSeconds, span) {
  const d = new Date(epochSeconds * 1000);
  if (span > 3 * 86400) return `${d.getMonth() + 1}/${d.getDate()}`;
  if (span > 86400) return `${d.getMonth() + 1}/${d.getDate()} ${pad(d.getHours())}h`;
  return timeOfDay(epochSeconds, span > 600);
}

// A CSS color with an alpha, for min-max bands.
function translucent(color, alpha) {
  const hex = /^#([0-9a-f]{6})$/i.exec(color);
  if (hex) {
    const n = parseInt(hex[1], 16);
    return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
  }
  return color;
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
  if (unit === "B/s") return (u, splits) => splits.map((v) => (v == null ? "" : bytes(v, 0) + "/s"));
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
  constructor(root, { maxSeconds, onZoom }) {
    this.root = root;
    this.maxSeconds = maxSeconds;
    this.window = 900;
    this.store = { ts: [], cores: [] };
    for (const c of COLUMNS) this.store[c] = [];
    this.fixed = null; // a long window's columns (rolled up), shown instead of the store
    this.zooms = []; // [min, max] of each zoom level, innermost last
    this.onZoom = onZoom || (() => {});
    this.plots = [];
    this.pending = false;
    this.onDraw = null; // counted by the page (see main.js)
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
    // Already there (history loaded after it arrived): a time goes in once.
    if (s.ts.length && !(r.ts > s.ts[s.ts.length - 1])) return;
    s.ts.push(r.ts);
    for (const c of COLUMNS) s[c].push(r[c]);
    while (s.cores.length < r.cores.length) s.cores.push(new Array(s.ts.length - 1).fill(null));
    s.cores.forEach((col, i) => col.push(i < r.cores.length ? r.cores[i] : null));
    this.trim();
    if (this.fixed) return; // a long window shows its own columns
    this.rebuildIfShapeChanged();
    this.schedule();
  }

  clear() {
    this.load({ ts: [], cores: [] });
  }

  trim() {
    const s = this.store;
    const limit = s.ts[s.ts.length - 1] - this.maxSeconds;
    // By time, and by count too: a page open for days holds at most MAX_POINTS columns.
    let drop = Math.max(0, s.ts.length - MAX_POINTS);
    while (drop < s.ts.length && s.ts[drop] < limit) drop++;
    if (!drop) return;
    s.ts.splice(0, drop);
    for (const c of COLUMNS) s[c].splice(0, drop);
    for (const col of s.cores) col.splice(0, drop);
  }

  setWindow(seconds) {
    this.window = seconds;
    this.zooms = [];
    this.schedule();
  }

  // A long window: columns from a roll-up tier (null: back to following the stream).
  showFixed(answer) {
    const had = this.fixed !== null;
    this.fixed = answer;
    if (had !== (answer !== null) || this.shapeKey() !== this.shape) this.build();
    this.schedule();
  }

  get zoomed() {
    return this.zooms.length > 0;
  }

  zoomTo(min, max) {
    if (!(max - min >= 1)) return;
    // Synced charts all report the one selection: it is one zoom.
    const top = this.zooms[this.zooms.length - 1];
    if (top && Math.abs(top[0] - min) < 1 && Math.abs(top[1] - max) < 1) return;
    this.zooms.push([min, max]);
    this.onZoom(this.zooms[this.zooms.length - 1]);
    this.schedule();
  }

  zoomOut() {
    if (!this.zooms.length) return;
    this.zooms.pop();
    this.onZoom(this.zooms.length ? this.zooms[this.zooms.length - 1] : null);
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
      const series = [{ label: "time", value: (u, v) => (v == null ? "—" : timeOfDay(v, false, this.fixed)) }];
      const cols = [];
      const bands = [];
      for (const s of def.series) {
        if (s.optional && !this.hasData(s.col)) continue;
        series.push({ label: s.label, stroke: cssVar(s.color), width: s.width || 1.25,
          value: legendValue(def.unit), spanGaps: false, points: { show: false } });
        cols.push(s.col);
      }
      // Rolled-up windows: each line's minimum and maximum, filled between as a band.
      if (this.fixed) {
        for (const s of def.series) {
          if (!cols.includes(s.col) || !this.fixed.columns[s.col + "_max"]) continue;
          const color = cssVar(s.color);
          series.push({ label: `${s.label} max`, class: "band", stroke: "transparent", width: 0,
            value: legendValue(def.unit), spanGaps: false, points: { show: false } });
          series.push({ label: `${s.label} min`, class: "band", stroke: "transparent", width: 0,
            value: legendValue(def.unit), spanGaps: false, points: { show: false } });
          cols.push(s.col + "_max", s.col + "_min");
          bands.push({ series: [series.length - 2, series.length - 1], fill: translucent(color, 0.18) });
        }
      }
      if (def.cores && !this.fixed) {
        for (let i = 0; i < this.coreCount; i++) {
          series.push({ label: `core ${i}`, class: "core", stroke: cssVar("--core"), width: 1,
            value: legendValue(def.unit), points: { show: false } });
        }
      }
      const opts = {
        width: plotWidth(figure),
        height: 150,
        series,
        bands,
        cursor: {
          // One cursor across every chart; dragging selects a time range to zoom into.
          sync: { key: "dashboard", setSeries: false },
          drag: { x: true, y: false, setScale: false },
          points: { size: 5 },
          bind: { dblclick: () => () => { this.zoomOut(); return null; } },
        },
        legend: { live: true },
        hooks: {
          // Idle (no pointer on the chart), the legend shows the latest values.
          setCursor: [(u) => { if (u.cursor.idx == null) showLatest(u); }],
          setSelect: [(u) => {
            if (u.select.width >= 5) {
              this.zoomTo(u.posToVal(u.select.left, "x"), u.posToVal(u.select.left + u.select.width, "x"));
            }
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          }],
        },
        scales: { x: { time: true }, y: def.range ? { range: def.range } : { range: (u, min, max) => [0, Math.max(max, def.unit === "B/s" ? 1024 : 1)] } },
        axes: [
          { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid },
            values: (u, splits) => splits.map((v) => axisTime(v, u.scales.x.max - u.scales.x.min)) },
          { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, values: axisValues(def.unit), size: def.unit === "B/s" ? 80 : 68 },
        ],
      };
      const plot = new uPlot(opts, this.dataFor(def, cols), figure);
      this.plots.push({ def, cols, plot, figure });
    }
  }

  dataFor(def, cols) {
    if (this.fixed) {
      const c = this.fixed.columns;
      return [c.ts, ...cols.map((name) => c[name] || c.ts.map(() => null))];
    }
    const s = this.store;
    const data = [s.ts, ...cols.map((c) => s[c])];
    if (def.cores) data.push(...s.cores.slice(0, this.coreCount));
    return data;
  }

  // The first time a long window's answer has any value, or null.
  firstData() {
    const c = this.fixed.columns;
    const cols = COLUMNS.map((name) => c[name]).filter(Boolean);
    const i = c.ts.findIndex((_, k) => cols.some((col) => col[k] != null));
    return i < 0 ? null : c.ts[i];
  }

  hasData(col) {
    const values = this.fixed ? this.fixed.columns[col] || [] : this.store[col];
    return values.some((v) => v != null);
  }

  // Rebuild when the set of lines changes (cores appear, a container limit shows up,
  // bands come or go with rolled-up windows).
  shapeKey() {
    return [this.fixed ? "fixed" : this.store.cores.length,
      ...CHARTS.flatMap((d) => d.series.filter((s) => s.optional).map((s) => this.hasData(s.col)))].join();
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

  range() {
    if (this.zooms.length) return this.zooms[this.zooms.length - 1];
    if (this.fixed) {
      // A young install asked for a month: from its first data (ten steps at least), not a month-wide blank.
      const { since, until, step } = this.fixed;
      const first = this.firstData();
      const start = first === null ? since : Math.max(since, Math.min(first - (step || 0), until - 10 * (step || 60)));
      return [start, until];
    }
    const ts = this.store.ts;
    const max = ts.length ? ts[ts.length - 1] : Date.now() / 1000;
    // Until the window fills, show what there is rather than an empty chart.
    return [Math.max(ts.length ? ts[0] : max - 60, max - this.window), max];
  }

  draw() {
    if (this.onDraw) this.onDraw();
    const [min, max] = this.range();
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
