// Entry point: history first, then the live stream; wires data to the views.

import { Banners } from "./banners.js";
import { updateCards, ProcessTable } from "./cards.js";
import { Charts } from "./charts.js";
import { ConsolePanel } from "./console.js";
import { bytes, clock, count, ms } from "./format.js";
import { MetricsStream } from "./stream.js";
import { initTheme } from "./theme.js";

const base = document.body.dataset.base || "";
const historySeconds = Number(document.body.dataset.historySeconds) || 3600;
const $ = (sel) => document.querySelector(sel);

const charts = new Charts($("#charts"), { maxSeconds: Math.min(historySeconds, 3600) });
const banners = new Banners($("#banners"));
const procs = new ProcessTable($("#procs"), document.querySelectorAll("[data-sort]"));
initTheme($("#theme-toggle"), () => charts.restyle());

const windowSelect = $("#window");
charts.setWindow(Number(windowSelect.value));
windowSelect.addEventListener("change", () => charts.setWindow(Number(windowSelect.value)));

function showSample(sample) {
  updateCards($("#cards"), sample);
  procs.update(sample);
  $("#updated").textContent = "updated " + clock(sample.ts);
  const missing = Object.entries(sample.missing || {}).map(([k, why]) => `${k}: ${why}`);
  $("#missing").textContent = missing.length ? "Not shown — " + missing.join("; ") : "";
}

function setFact(root, key, text) {
  const el = root.querySelector(`[data-f="${key}"]`);
  if (el && el.textContent !== text) el.textContent = text;
}

async function loadHistory() {
  const seconds = Math.min(historySeconds, 3600);
  const resp = await fetch(`${base}/api/history?seconds=${seconds}`, { cache: "no-store" });
  if (!resp.ok) throw new Error(`history: HTTP ${resp.status}`);
  return resp.json();
}

async function main() {
  let lastEventId = null;
  try {
    const history = await loadHistory();
    charts.load(history.columns);
    lastEventId = history.last_event_id;
  } catch (e) {
    console.warn("no history, following the live stream only", e);
  }
  try {
    const snap = await fetch(`${base}/api/snapshot`, { cache: "no-store" });
    if (snap.ok) showSample(await snap.json());
  } catch (e) { /* the stream fills the cards within a second */ }

  const stream = new MetricsStream({ url: `${base}/events`, lastEventId });
  const facts = $("#sse-facts");
  const pill = $("#sse-pill");
  stream.addEventListener("metrics", (ev) => {
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
    // The server could not replay what we missed: reload history instead.
    try { charts.load((await loadHistory()).columns); } catch (e) { charts.clear(); }
  });
  stream.addEventListener("state", (ev) => {
    pill.dataset.state = ev.detail;
    pill.querySelector(".pill-state").textContent = ev.detail;
    setFact(facts, "state", ev.detail);
  });
  stream.addEventListener("stats", (ev) => {
    const s = ev.detail;
    setFact(facts, "events", count(s.events));
    setFact(facts, "bytes", bytes(s.bytes));
    setFact(facts, "last-id", stream.lastId || "—");
    setFact(facts, "reconnects", count(s.reconnects));
    setFact(facts, "gaps", count(s.gaps));
    setFact(facts, "latency", ms(s.latencyMs));
  });
  stream.start();

  const consolePanel = new ConsolePanel($("#console"), base);
  const wsFacts = $("#ws-facts");
  const wsPill = $("#ws-pill");
  consolePanel.addEventListener("state", (ev) => {
    wsPill.dataset.state = ev.detail === "signed out" ? "closed" : ev.detail;
    wsPill.querySelector(".pill-state").textContent = ev.detail;
    setFact(wsFacts, "state", ev.detail);
  });
  consolePanel.addEventListener("stats", (ev) => {
    const s = ev.detail;
    setFact(wsFacts, "messages", `${count(s.sent)} / ${count(s.received)}`);
    setFact(wsFacts, "bytes", `${bytes(s.bytesOut)} / ${bytes(s.bytesIn)}`);
    setFact(wsFacts, "reconnects", count(s.reconnects));
    setFact(wsFacts, "rtt", ms(s.rttMs));
  });
  consolePanel.init();
  window.dashboard = { stream, charts, console: consolePanel, banners };
}

main();
