// The busiest containers' CPU and memory over the last hour, as two uPlot charts in
// the containers section. /api/containers/history picks them (the highest mean over
// the window, by the table's sort) and gives their columns; each sample then adds a
// point for each of them; the pick is asked for again each minute and when the sort
// changes. Names come from the engine and may be anything: uPlot writes a string
// label with textContent, and it is cut to 40 characters.

import uPlot from "../vendor/uPlot-1.6.32.esm.js";

const TOP = 5;
const COLORS = ["--c1", "--c2", "--c3", "--c4", "--c5"];
const CHARTS = [
  { key: "cpu_pct", title: "Busiest containers: CPU, % of each one's limit" },
  { key: "mem_pct", title: "Busiest containers: memory, % of each one's limit" },
];
const REPICK_MS = 60_000;

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

const pad = (n) => String(n).padStart(2, "0");
function clock(seconds, short = false) {
  const d = new Date(seconds * 1000);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return short ? hm : `${hm}:${pad(d.getSeconds())}`;
}

// Idle (no pointer on the chart), the legend shows the latest values.
function showLatest(u) {
  const n = u.data[0].length;
  if (n) u.setLegend({ idx: n - 1 }, false);
}

function label(c) {
  const name = String(c.name ?? c.id);
  return name.length > 40 ? name.slice(0, 39) + "…" : name;
}

export class ContainerCharts {
  constructor(root, { base, hostQuery, seconds }) {
    this.root = root;
    this.url = `${base}/api/containers/history?seconds=${Math.round(seconds)}&top=${TOP}&${hostQuery}`;
    this.seconds = seconds;
    this.by = "cpu";
    this.data = null; // { ts: [], containers: [{ id, name, cpu_pct: [], mem_pct: [] }] }
    this.plots = [];
    this.pending = false;
    this.serial = 0;
    this.asked = false;
    this.timer = setInterval(() => { if (this.asked) this.pick(); }, REPICK_MS);
    new ResizeObserver(() => this.resize()).observe(root);
  }

  sortBy(by) {
    if (by === this.by) return;
    this.by = by;
    this.pick();
  }

  async pick() {
    if (document.hidden && this.data) return;
    const serial = ++this.serial;
    let answer;
    try {
      const resp = await fetch(`${this.url}&by=${this.by}`, { cache: "no-store" });
      if (!resp.ok) return;
      answer = await resp.json();
    } catch {
      return; // offline: the next minute asks again
    }
    if (serial !== this.serial || !answer || !Array.isArray(answer.ts)) return;
    this.data = answer;
    this.build();
  }

  // One sample: a point for each picked container (null where it is not listed).
  push(sample) {
    const d = this.data;
    if (!d || !sample.containers) return;
    const rows = Array.isArray(sample.containers.list) ? sample.containers.list : [];
    const byId = new Map(rows.filter((r) => r && typeof r === "object").map((r) => [String(r.id), r]));
    if (d.ts.length && sample.ts <= d.ts[d.ts.length - 1]) return;
    d.ts.push(sample.ts);
    let renamed = false;
    for (const c of d.containers) {
      const r = byId.get(c.id);
      c.cpu_pct.push(r && typeof r.cpu_pct === "number" ? r.cpu_pct : null);
      c.mem_pct.push(r && typeof r.mem_pct === "number" ? r.mem_pct : null);
      // Listed by id until the engine names it (docs/containers.md): the legend follows.
      if (r && r.name != null && String(r.name) !== String(c.name)) { c.name = r.name; renamed = true; }
    }
    if (renamed) this.build();
    const limit = sample.ts - this.seconds;
    let cut = 0;
    while (cut < d.ts.length && d.ts[cut] < limit) cut++;
    if (cut) {
      d.ts.splice(0, cut);
      for (const c of d.containers) { c.cpu_pct.splice(0, cut); c.mem_pct.splice(0, cut); }
    }
    this.schedule();
  }

  build() {
    for (const p of this.plots) p.plot.destroy();
    this.plots = [];
    this.root.replaceChildren();
    const d = this.data;
    this.root.hidden = !d || !d.containers.length;
    if (this.root.hidden) return;
    const grid = cssVar("--grid"), text = cssVar("--muted");
    for (const def of CHARTS) {
      const figure = document.createElement("figure");
      figure.className = "chart";
      figure.dataset.chart = `containers-${def.key}`;
      const caption = document.createElement("figcaption");
      caption.textContent = def.title;
      figure.append(caption);
      this.root.append(figure);
      const series = [{ label: "time", value: (u, v) => (v == null ? "—" : clock(v)) }];
      d.containers.forEach((c, i) => series.push({
        label: label(c), stroke: cssVar(COLORS[i % COLORS.length]), width: i ? 1.25 : 2, spanGaps: false,
        points: { show: false }, value: (u, v) => (v == null ? "—" : v.toFixed(1) + " %"),
      }));
      const plot = new uPlot({
        width: this.width(figure),
        height: 150,
        series,
        legend: { live: true },
        cursor: { drag: { x: false, y: false }, points: { size: 5 } },
        hooks: { setCursor: [(u) => { if (u.cursor.idx == null) showLatest(u); }] },
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(100, max || 0)] } },
        axes: [
          { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid },
            values: (u, splits) => splits.map((v) => clock(v, u.scales.x.max - u.scales.x.min > 600)) },
          { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 56,
            values: (u, splits) => splits.map((v) => (v == null ? "" : v + "%")) },
        ],
      }, this.columns(def.key), figure);
      showLatest(plot);
      this.plots.push({ def, plot, figure });
    }
  }

  columns(key) {
    const d = this.data;
    return [d.ts, ...d.containers.map((c) => c[key])];
  }

  width(figure) {
    const style = getComputedStyle(figure);
    return Math.max(200, Math.floor(figure.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight)));
  }

  schedule() {
    if (this.pending || document.hidden || !this.plots.length) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      for (const { def, plot } of this.plots) {
        plot.setData(this.columns(def.key));
        if (plot.cursor.idx == null) showLatest(plot);
      }
    });
  }

  resize() {
    for (const { plot, figure } of this.plots) {
      const width = this.width(figure);
      if (width !== plot.width) plot.setSize({ width, height: 150 });
    }
  }

  restyle() {
    if (this.data) this.build();
  }
}
