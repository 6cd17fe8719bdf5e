// Entry point: history first, then the live stream; wires data to the views.

import { Banners } from "./banners.js";
import { updateCards, ProcessTable } from "./cards.js";
import { ContainerTable, updateContainersCard } from "./containers.js";
import { Charts } from "./charts.js";
import { ContainerCharts } from "./container_charts.js";
import { ConsolePanel } from "./console.js";
import { initConsoleRoom } from "./drawer.js";
import { Evidence } from "./evidence.js";
import { bytes, clock, count, ms } from "./format.js";
import { MetricsStream } from "./stream.js";
import { initTheme } from "./theme.js";

const base = document.body.dataset.base || "";
const historySeconds = Number(document.body.dataset.historySeconds) || 3600;
const $ = (sel) => document.querySelector(sel);
// The host this page shows: ?host=… or the server's own. Every request names
// it, so a reconnect that lands on another worker or dyno follows the same host.
const host = new URLSearchParams(location.search).get("host") || document.body.dataset.host;
const hostQuery = `host=${encodeURIComponent(host)}`;

// A private dashboard before login has no metrics panel (see locked()).
const isLocked = !!document.body.dataset.locked;
// Windows up to this long follow the stream; longer ones show roll-ups.
const liveSeconds = Math.min(historySeconds, 3600);
const longestSeconds = Number(document.body.dataset.longestSeconds) || historySeconds;
const charts = isLocked ? null : new Charts($("#charts"), { maxSeconds: liveSeconds, onZoom: (range) => zoomed(range) });
const banners = new Banners($("#banners"));
const evidence = new Evidence(base);
banners.onEvidence = (query) => evidence.open(query);
// Clicking a process row asks the console about it (`proc <pid>`), once the console exists.
let inspect = null;
const containers = isLocked ? null : new ContainerTable($("#containers"), document.querySelectorAll("[data-csort]"));
const containerCharts = isLocked ? null
  : new ContainerCharts($("#container-charts"), { base, hostQuery, seconds: liveSeconds });
for (const tab of isLocked ? [] : document.querySelectorAll("[data-csort]")) {
  tab.addEventListener("click", () => containerCharts.sortBy(tab.dataset.csort));
}
const procs = isLocked ? null : new ProcessTable($("#procs"), document.querySelectorAll("[data-sort]"),
  (pid) => inspect && inspect(pid));
initTheme($("#theme-toggle"), () => { if (charts) { charts.restyle(); containerCharts.restyle(); } });
initConsoleRoom($("#console-wide"), $("#console-jump"), $("#term-input"));

const windowSelect = $("#window");
// How far back this host's data goes: the year shows once there is more than a month.
const reachSeconds = Number(document.body.dataset.reachSeconds) || historySeconds;
for (const option of isLocked ? [] : [...windowSelect.options]) {
  // Windows the server cannot answer (no lasting store, shorter retention) are not offered.
  const seconds = Number(option.value);
  if (seconds > longestSeconds || (seconds > 30 * 86400 && reachSeconds <= 30 * 86400)) option.remove();
}
let refreshTimer = null;
let fetchSerial = 0;

function note(text) {
  setText(document, "#chart-note", text);
}

function describe(answer) {
  if (!answer || answer.tier === "raw") return "";
  const step = answer.step >= 3600 ? `${answer.step / 3600} h` : `${answer.step / 60} min`;
  const first = charts.firstData();
  const young = first !== null && first - answer.since > 2 * answer.step
    ? ` Data since ${new Date(first * 1000).toLocaleString([], { hour12: false })}: the chart starts there.` : "";
  return `${answer.tier} roll-ups, one point per ${step}: line = mean, band = min to max. Drag to zoom, double-click to go back.${young}`;
}

// A window or zoom the stream does not cover: ask the server for it (again each minute
// while it ends now). `until` pins a zoomed range.
async function showLong(seconds, until = null) {
  const serial = ++fetchSerial;
  clearInterval(refreshTimer);
  const load = async () => {
    const pan = until ? `&until=${Math.round(until)}` : "";
    try {
      const resp = await fetch(`${base}/api/history?seconds=${Math.round(seconds)}${pan}&${hostQuery}`, { cache: "no-store" });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      const answer = await resp.json();
      if (serial !== fetchSerial) return; // another window was picked meanwhile
      charts.showFixed(answer.tier === "raw" ? null : answer);
      note(describe(answer));
    } catch (e) {
      if (serial === fetchSerial) note(`History unavailable (${e.message}); showing the live stream.`);
    }
  };
  await load();
  // Only the window still shown refreshes: one picked while this answer was on its way
  // would otherwise leave a timer fetching every minute for as long as the page is open.
  if (!until && serial === fetchSerial) refreshTimer = setInterval(load, 60000);
}

function pickWindow() {
  const seconds = Number(windowSelect.value);
  charts.setWindow(seconds);
  if (seconds <= liveSeconds) {
    ++fetchSerial;
    clearInterval(refreshTimer);
    charts.showFixed(null);
    note("");
  } else {
    showLong(seconds);
  }
}

// Zooming into a rolled-up window asks for that range, from the finest tier that has it.
function zoomed(range) {
  if (Number(windowSelect.value) <= liveSeconds) return;
  if (range) showLong(range[1] - range[0], range[1]);
  else showLong(Number(windowSelect.value));
}

if (!isLocked) {
  charts.setWindow(Number(windowSelect.value));
  windowSelect.addEventListener("change", pickWindow);
}

function setText(root, selector, text) {
  const el = root.querySelector(selector);
  if (el && el.textContent !== text) el.textContent = text;
}
const setFact = (root, key, text) => setText(root, `[data-f="${key}"]`, text);
const setCompare = (key, text) => setText(document, `[data-c="${key}"]`, text);

// What the page has done, counted (the browser benchmark and tests compare these
// between a visible and a hidden page).
const work = { samples: 0, draws: 0, skipped: 0, catchUps: 0 };

function showSample(sample) {
  work.samples++;
  updateCards($("#cards"), sample);
  updateContainersCard($("#cards"), sample);
  procs.update(sample);
  containers.update(sample);
  // The busiest containers' charts: picked once the first sample lists containers, then fed.
  if (sample.containers && !containerCharts.data && !containerCharts.asked) {
    containerCharts.asked = true;
    containerCharts.pick();
  }
  containerCharts.push(sample);
  setText(document, "#updated", "updated " + clock(sample.ts));
  const missing = Object.entries(sample.missing || {}).map(([k, why]) => `${k}: ${why}`);
  setText(document, "#missing", missing.length ? "Not shown — " + missing.join("; ") : "");
}

async function loadHistory() {
  const seconds = liveSeconds;
  const resp = await fetch(`${base}/api/history?seconds=${seconds}&${hostQuery}`, { cache: "no-store" });
  if (!resp.ok) throw Object.assign(new Error(`history: HTTP ${resp.status}`), { status: resp.status });
  return resp.json();
}

function watchStream(stream) {
  const facts = $("#sse-facts");
  const pill = $("#sse-pill");
  let offlineTimer = null;
  stream.addEventListener("metrics", (ev) => {
    if (held) { held.push(ev.detail); return; } // catching up: after the history lands
    charts.push(ev.detail);
    showSample(ev.detail);
  });
  stream.addEventListener("notice", (ev) => banners.notice(ev.detail));
  stream.addEventListener("alert", (ev) => banners.alert(ev.detail));
  stream.addEventListener("config", (ev) => {
    banners.syncRules(ev.detail.alerts || []);
    banners.show("config", "info", `Changed by ${ev.detail.by || "server"}`, ev.detail.change, { timeout: 6000 });
  });
  stream.addEventListener("resync", async () => {
    // The server could not replay what we missed (it restarted, or we were
    // away longer than its buffer): reload history instead.
    try { charts.load((await loadHistory()).columns); } catch (e) { charts.clear(); }
    if (Number(windowSelect.value) > liveSeconds) showLong(Number(windowSelect.value));
  });
  stream.addEventListener("state", (ev) => {
    const state = ev.detail;
    pill.dataset.state = state;
    setText(pill, ".pill-state", state);
    setFact(facts, "state", state);
    // A short blip is normal (a deploy, a dropped connection); say so when it lasts.
    clearTimeout(offlineTimer);
    if (state === "open") {
      banners.dismiss("offline");
    } else {
      offlineTimer = setTimeout(() => banners.show("offline", "offline", "Server unreachable",
        "The live stream is down; reconnecting by itself…", { dismissible: false }), 3000);
    }
  });
  stream.addEventListener("stats", (ev) => {
    if (document.hidden) return; // shown again on return (see watchVisibility)
    const s = ev.detail;
    setFact(facts, "messages", `0 / ${count(s.events)}`);
    setFact(facts, "bytes", `0 B / ${bytes(s.bytes)}`);
    setFact(facts, "last-id", stream.lastId || "—");
    setFact(facts, "reconnects", count(s.reconnects));
    setFact(facts, "gaps", count(s.gaps));
    setFact(facts, "latency", ms(s.latencyMs));
    setFact(facts, "role", stream.share ? (stream.role === "leader" ? "this tab holds the stream" : "relayed from another tab") : "no (own stream)");
    setCompare("sse-dir", ` · ${count(s.events)} in, 0 out`);
    setCompare("sse-re", ` · ${count(s.reconnects)} reconnects, ${count(s.gaps)} gaps`);
    setCompare("sse-lat", ` · latency ${ms(s.latencyMs)}`);
    if (s.events) setCompare("sse-cost", ` · ${Math.round(s.bytes / s.events)} B per event`);
  });
}

function watchConsole(panel, stream) {
  const facts = $("#ws-facts");
  const pill = $("#ws-pill");
  const dropSse = $("#drop-sse");
  const dropWs = $("#drop-ws");
  const enableDrops = () => {
    const ok = panel.state === "open" && panel.socket && panel.socket.welcome && panel.socket.welcome.role === "operator";
    for (const b of [dropSse, dropWs]) {
      b.disabled = !ok;
      b.title = ok ? "Ask the server to close this connection, then watch it recover" : "Log in to the console as an operator to drop connections";
    }
  };
  panel.addEventListener("state", (ev) => {
    pill.dataset.state = ev.detail === "signed out" ? "closed" : ev.detail;
    setText(pill, ".pill-state", ev.detail);
    setFact(facts, "state", ev.detail);
    enableDrops();
  });
  panel.addEventListener("stats", (ev) => {
    if (document.hidden) return;
    const s = ev.detail;
    setFact(facts, "messages", `${count(s.sent)} / ${count(s.received)}`);
    setFact(facts, "bytes", `${bytes(s.bytesOut)} / ${bytes(s.bytesIn)}`);
    setFact(facts, "reconnects", count(s.reconnects));
    setFact(facts, "rtt", ms(s.rttMs));
    setCompare("ws-dir", ` · ${count(s.sent)} out, ${count(s.received)} in`);
    setCompare("ws-re", ` · ${count(s.reconnects)} reconnects`);
    setCompare("ws-lat", ` · round trip ${ms(s.rttMs)}`);
    const n = s.sent + s.received;
    if (n) setCompare("ws-cost", ` · ${Math.round((s.bytesOut + s.bytesIn) / n)} B per message`);
    enableDrops();
  });
  dropSse.addEventListener("click", () => panel.run(`drop sse ${stream.client}`));
  dropWs.addEventListener("click", () => panel.run(`drop console ${panel.socket.welcome.connection}`));
}

// Metrics that arrive while the page catches up wait here (null: not catching up).
let held = null;

// Hidden, the page draws nothing and reads no metrics event (the stream keeps
// only its place: see stream.js). It keeps the stream open rather than closing
// it: other tabs may be reading it through this one, and alerts still reach the
// title and favicon. Shown again, it reloads the live window from history once,
// then applies what came meanwhile.
function watchVisibility(stream, panel) {
  const catchUp = async () => {
    work.catchUps++;
    held = [];
    try {
      charts.load((await loadHistory()).columns);
    } catch (e) { /* keep what is drawn; the stream goes on */ }
    const waiting = held;
    held = null;
    for (const sample of waiting) charts.push(sample); // older than the history: ignored
    const latest = waiting[waiting.length - 1];
    if (latest) showSample(latest);
    else {
      try {
        const snap = await fetch(`${base}/api/snapshot?${hostQuery}`, { cache: "no-store" });
        if (snap.ok) showSample(await snap.json());
      } catch (e) { /* the next event fills the cards */ }
    }
  };
  const apply = () => {
    stream.setHidden(document.hidden);
    if (document.hidden) return;
    stream.dispatchEvent(new CustomEvent("stats", { detail: stream.stats }));
    if (panel.socket) panel.dispatchEvent(new CustomEvent("stats", { detail: panel.socket.stats }));
    if (work.skipped !== stream.skipped) {
      work.skipped = stream.skipped;
      catchUp();
    }
  };
  document.addEventListener("visibilitychange", apply);
  apply();
}

// The host picker: shown once there is more than one host to choose from.
async function watchHosts() {
  const label = $("#host-picker-label");
  const picker = $("#host-picker");
  picker.addEventListener("change", () => {
    const url = new URL(location.href);
    url.searchParams.set("host", picker.value);
    location.assign(url.pathname + url.search);
  });
  const refresh = async () => {
    try {
      const resp = await fetch(`${base}/api/hosts`, { cache: "no-store" });
      const hosts = (await resp.json()).hosts || [];
      if (!hosts.some((h) => h.name === host)) hosts.push({ name: host, stale: true });
      label.hidden = hosts.length < 2;
      const options = hosts.map((h) => {
        const o = document.createElement("option");
        o.value = h.name;
        o.textContent = h.name + (h.local ? " (this server)" : "") + (h.stale ? " — stale" : "");
        o.selected = h.name === host;
        return o;
      });
      picker.replaceChildren(...options);
    } catch (e) { /* unreachable: the offline banner says so */ }
  };
  await refresh();
  setInterval(refresh, 10000);
}

// A private dashboard before login: only the way in. After a login the page
// reloads, and the server sends it with the host's data.
function locked() {
  const pill = $("#sse-pill");
  pill.dataset.state = "closed";
  setText(pill, ".pill-state", "signed out");
  setFact($("#sse-facts"), "state", "signed out: log in to see this host");
  // The way in goes where the host's metrics will be, not in the (hidden) console.
  $(".lock-gate").append($("#login-form"));
  const panel = new ConsolePanel($("#console"), base, { onLogin: () => { location.reload(); return false; } });
  panel.init();
  window.dashboard = { console: panel };
}

async function main() {
  if (isLocked) return locked();
  setText(document, "#host-name", host);
  document.title = `${host} · live dashboard`;
  banners.baseTitle = document.title;
  banners.renderBadge();
  let lastEventId = null;
  try {
    const history = await loadHistory();
    charts.load(history.columns);
    lastEventId = history.last_event_id;
  } catch (e) {
    if (e.status === 404) {
      banners.show("unknown-host", "offline", "Unknown host",
        `No host named “${host}” reports to this dashboard. Pick another one, or drop ?host= from the address.`,
        { dismissible: false });
      watchHosts();
      return;
    }
    console.warn("no history, following the live stream only", e);
  }
  try {
    const snap = await fetch(`${base}/api/snapshot?${hostQuery}`, { cache: "no-store" });
    if (snap.ok) showSample(await snap.json());
  } catch (e) { /* the stream fills the cards within a second */ }

  const stream = new MetricsStream({ url: `${base}/events?${hostQuery}`, lastEventId });
  watchStream(stream);
  stream.start();

  const privatePage = async () => ((await fetch(`${base}/api/session`).then((r) => r.json()).catch(() => ({}))).access === "login");
  const panel = new ConsolePanel($("#console"), base, {
    onLogout: async () => { if (await privatePage()) location.reload(); },
  });
  watchConsole(panel, stream);
  inspect = (pid) => panel.inspect(pid);
  watchVisibility(stream, panel);
  panel.init();
  watchHosts();
  // A notification's link names the transition: open its evidence at once.
  const alertId = new URLSearchParams(location.search).get("alert");
  if (alertId) evidence.open({ id: alertId });
  charts.onDraw = () => work.draws++;
  window.dashboard = { stream, charts, console: panel, banners, evidence, work };
}

main();
