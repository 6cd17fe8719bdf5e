// The answer to `proc <pid>` in the console: what the process is, what it holds
// open, and its CPU and memory over the samples that showed it (two small
// lines drawn on canvases). Everything goes in as text, never as HTML.

import { bytes, clock, duration } from "./format.js";

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function isProcess(result) {
  return !!result && typeof result === "object" && typeof result.pid === "number"
    && "cmdline" in result && result.history && Array.isArray(result.history.rows);
}

const shown = (v) => (v === null || v === undefined ? "–" : String(v));

function connections(c) {
  if (c === null || c === undefined) return "–";
  if (typeof c !== "object") return String(c); // "denied"
  const parts = Object.entries(c).map(([state, n]) => `${state.toLowerCase()} ${n}`);
  return parts.length ? parts.join(" · ") : "none";
}

function children(c) {
  if (!c || typeof c !== "object") return shown(c);
  if (!c.rows.length) return "none";
  const names = c.rows.map(([pid, name]) => `${name} (${pid})`).join(", ");
  return c.total > c.rows.length ? `${c.total}: ${names}, …` : `${c.total}: ${names}`;
}

// One series as a line that fills its box; null values leave a gap.
function spark(values, color) {
  const canvas = el("canvas", "proc-spark");
  const ratio = window.devicePixelRatio || 1;
  const width = 240, height = 36;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  canvas.setAttribute("aria-hidden", "true");
  const nums = values.filter((v) => typeof v === "number");
  if (nums.length < 2) return canvas;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  const lo = Math.min(...nums), hi = Math.max(...nums);
  const span = hi - lo || 1;
  g.strokeStyle = color;
  g.lineWidth = 1.5;
  g.beginPath();
  let pen = false;
  values.forEach((v, i) => {
    if (typeof v !== "number") { pen = false; return; }
    const x = (i / (values.length - 1)) * (width - 2) + 1;
    const y = height - 2 - ((v - lo) / span) * (height - 4);
    if (pen) g.lineTo(x, y); else g.moveTo(x, y);
    pen = true;
  });
  g.stroke();
  return canvas;
}

export function renderProcess(d) {
  const view = el("div", "proc-view");
  view.dataset.pid = String(d.pid);
  const head = el("div", "proc-head");
  head.append(el("strong", "", d.name), el("span", "term-muted", ` pid ${d.pid} · ${shown(d.status)} · ${shown(d.user)}`));
  view.append(head);

  const dl = el("dl", "term-kv");
  const add = (key, value) => { dl.append(el("dt", "", key), el("dd", "", value)); };
  add("command", shown(d.cmdline) || "(none: a kernel thread)");
  if (typeof d.started === "number") add("started", `${clock(d.started)} (${duration(Date.now() / 1000 - d.started)} ago)`);
  add("parent", shown(d.ppid));
  add("threads", shown(d.threads));
  add("nice", shown(d.nice));
  add("open files", d.fds === null || d.fds === undefined ? shown(d.open_files)
    : `${shown(d.open_files)} files, ${shown(d.fds)} descriptors`);
  add("connections", connections(d.connections));
  add("children", children(d.children));
  add("now", `cpu ${d.cpu === null || d.cpu === undefined ? "–" : d.cpu.toFixed(1) + " %"} · rss ${bytes(d.rss)}`);
  view.append(dl);

  const rows = d.history.rows;
  const w = d.watched;
  if (w && rows.length) {
    // A process just asked about has a trail of a second or two: say so, not "over 0s".
    const span = rows[rows.length - 1][0] - w.since;
    const over = w.samples < 2 ? "in one sample"
      : `over ${span < 60 ? span.toFixed(1) + " s" : duration(span)} (${w.samples} samples)`;
    const cpu = el("div", "proc-trend");
    cpu.append(el("span", "term-muted",
      `cpu ${over}: avg ${w.cpu_avg === null ? "–" : w.cpu_avg + " %"}, max ${w.cpu_max === null ? "–" : w.cpu_max + " %"}`),
    spark(rows.map((r) => r[1]), "#60a5fa"));
    const mem = el("div", "proc-trend");
    mem.append(el("span", "term-muted", `memory: ${bytes(w.rss_min)} to ${bytes(w.rss_max)}`),
      spark(rows.map((r) => r[2]), "#a78bfa"));
    view.append(cpu, mem);
  } else {
    view.append(el("div", "term-muted", "not watched yet: its trail starts now, ask again in a while"));
  }

  const actions = el("div", "proc-actions");
  const again = el("button", "term-action", "refresh");
  again.type = "button";
  again.dataset.run = `proc ${d.pid}`;
  actions.append(again);
  if (d.kill) {
    const kill = el("button", "term-confirm", "kill…");
    kill.type = "button";
    kill.dataset.run = d.kill; // the ordinary kill: it asks for a confirmation first
    kill.title = `${d.kill} (asks for a confirmation)`;
    actions.append(kill);
  }
  view.append(actions);
  return view;
}
