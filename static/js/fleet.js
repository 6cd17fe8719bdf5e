// The fleet page: every host on one screen, live, from /api/fleet then /fleet/events.
//
// Each event carries only the hosts and fields that changed; only their cells
// are touched, and rows are re-ordered at most once per animation frame (and
// only when the order changed), so a thousand hosts cost little. Host names are
// set as text, never as HTML.

const base = document.body.dataset.base || "";
const rowsEl = document.getElementById("fl-rows");
const countEl = document.getElementById("fl-count");
const emptyEl = document.getElementById("fl-empty");
const pill = document.getElementById("fl-pill");
const sortEl = document.getElementById("fl-sort");
const firingEl = document.getElementById("fl-firing");
const filterEl = document.getElementById("fl-filter");
const SVG = "http://www.w3.org/2000/svg";
const RANK = { alerts: 0, stale: 1, paused: 2, up: 3 };

const hosts = new Map(); // name -> { data, el, cells }
let lastId = null;
let es = null;
let pending = false;

function bytes(v) {
  if (v == null) return "—";
  const units = ["B", "K", "M", "G", "T"];
  let i = 0;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${v < 10 && i ? v.toFixed(1) : Math.round(v)}${units[i]}`;
}
const pct = (v) => (v == null ? "—" : `${Math.round(v)}%`);
const num = (v) => (v == null ? "—" : String(v));

function cell(row, cls, label) {
  const span = document.createElement("span");
  span.className = cls;
  if (label) span.dataset.l = label; // shown before the figure where there is no header row
  row.appendChild(span);
  return span;
}

function makeRow(name) {
  const li = document.createElement("li");
  li.className = "fl-row";
  const a = document.createElement("a");
  a.className = "fl-name";
  a.href = `${base}/?host=${encodeURIComponent(name)}`;
  a.textContent = name; // text, never HTML
  li.appendChild(a);
  const cells = {
    state: cell(li, "fl-state"), cpu: cell(li, "fl-num", "cpu"), mem: cell(li, "fl-num", "mem"),
    disk: cell(li, "fl-num", "disk"), load: cell(li, "fl-num", "load"), net: cell(li, "fl-num fl-net"),
    containers: cell(li, "fl-num fl-ctr"),
  };
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "fl-spark");
  svg.setAttribute("viewBox", "0 0 30 10");
  svg.setAttribute("preserveAspectRatio", "none");
  const line = document.createElementNS(SVG, "polyline");
  svg.appendChild(line);
  li.appendChild(svg);
  cells.spark = line;
  li.addEventListener("click", (e) => { if (e.target !== a) a.click(); });
  return { data: { name }, el: li, cells };
}

function paint(h, fields) {
  const d = h.data, c = h.cells;
  if ("state" in fields) { c.state.textContent = d.state; h.el.dataset.state = d.state; }
  if ("cpu" in fields) c.cpu.textContent = pct(d.cpu);
  if ("mem" in fields) c.mem.textContent = pct(d.mem);
  if ("disk" in fields) c.disk.textContent = pct(d.disk);
  if ("load" in fields) c.load.textContent = num(d.load);
  if ("rx" in fields || "tx" in fields) c.net.textContent = `${bytes(d.rx)}/${bytes(d.tx)}`;
  if ("containers" in fields) c.containers.textContent = num(d.containers);
  if ("firing" in fields) c.state.title = d.firing ? `${d.firing} alert(s) firing` : "";
  if ("spark" in fields) {
    const pts = [];
    (d.spark || []).forEach((v, i) => { if (v != null) pts.push(`${i},${(10 - v / 10).toFixed(1)}`); });
    c.spark.setAttribute("points", pts.join(" "));
  }
}

function apply(changes) {
  for (const [name, fields] of Object.entries(changes)) {
    let h = hosts.get(name);
    if (!h) { h = makeRow(name); hosts.set(name, h); fields.state = fields.state || "up"; }
    Object.assign(h.data, fields);
    paint(h, fields);
  }
  schedule();
}

function schedule() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(arrange);
}

function order(a, b) {
  if (sortEl.value === "worst") {
    const r = (RANK[a.state] ?? 3) - (RANK[b.state] ?? 3);
    if (r) return r;
    // By tens of percent: a host does not jump rows for every point of CPU.
    const c = Math.floor((b.cpu ?? -10) / 10) - Math.floor((a.cpu ?? -10) / 10);
    if (c) return c;
  }
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function arrange() {
  pending = false;
  const text = filterEl.value.trim().toLowerCase();
  const shown = [...hosts.values()].filter((h) =>
    (!firingEl.checked || h.data.state === "alerts") && (!text || h.data.name.toLowerCase().includes(text)));
  shown.sort((a, b) => order(a.data, b.data));
  const kids = rowsEl.children;
  let same = kids.length === shown.length;
  for (let i = 0; same && i < shown.length; i++) same = kids[i] === shown[i].el;
  if (!same) rowsEl.replaceChildren(...shown.map((h) => h.el));
  emptyEl.hidden = shown.length > 0 || hosts.size === 0;
  const firing = [...hosts.values()].filter((h) => h.data.state === "alerts").length;
  const stale = [...hosts.values()].filter((h) => h.data.state === "stale").length;
  countEl.textContent = `${hosts.size} host${hosts.size === 1 ? "" : "s"} · ${firing} firing · ${stale} stale`;
}

async function load() {
  const resp = await fetch(`${base}/api/fleet`, { cache: "no-store", credentials: "same-origin" });
  if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
  const body = await resp.json();
  hosts.clear();
  rowsEl.replaceChildren();
  apply(body.hosts || {});
  lastId = body.last_event_id;
}

function setState(s) { pill.dataset.state = s; pill.textContent = s; }

function follow() {
  if (es) es.close();
  es = new EventSource(`${base}/fleet/events?last_event_id=${encodeURIComponent(lastId || "")}`);
  es.onopen = () => setState("live");
  es.onerror = () => setState(es.readyState === EventSource.CLOSED ? "offline" : "reconnecting");
  es.addEventListener("fleet", (e) => { lastId = e.lastEventId; apply(JSON.parse(e.data).hosts || {}); });
  es.addEventListener("resync", () => { start(); });
}

async function start() {
  setState("connecting");
  try {
    await load();
    follow();
  } catch (err) {
    setState("offline");
    setTimeout(start, 5000);
  }
}

for (const el of [sortEl, firingEl, filterEl]) el.addEventListener("input", schedule);
start();
