// The evidence kept with an alert: what the host was doing when the rule fired
// (GET /api/alerts), shown in a dialog opened from the alert's banner or from a
// notification's link (?alert=<id>). Everything is shown as text, never HTML.

import { bytes, clock } from "./format.js";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function table(caption, rows) {
  const t = el("table", "evidence-table");
  t.append(el("caption", "", caption));
  const head = el("tr");
  for (const c of ["pid", "name", "user", "CPU %", "memory"]) head.append(el("th", "", c));
  t.append(head);
  for (const r of rows || []) {
    const tr = el("tr");
    tr.append(el("td", "num", String(r.pid)), el("td", "", r.name || "?"), el("td", "", r.user || "?"),
      el("td", "num", r.cpu == null ? "—" : r.cpu.toFixed(1)), el("td", "num", r.rss == null ? "—" : bytes(r.rss)));
    t.append(tr);
  }
  if (!(rows || []).length) t.append(el("tr")).append(el("td", "muted", "no process table in that sample"));
  return t;
}

export class Evidence {
  constructor(base) {
    this.base = base;
    this.dialog = el("dialog", "evidence");
    this.dialog.setAttribute("aria-labelledby", "evidence-title");
    document.body.append(this.dialog);
    this.dialog.addEventListener("click", (ev) => { if (ev.target === this.dialog) this.dialog.close(); });
  }

  async transitions() {
    const resp = await fetch(`${this.base}/api/alerts?n=200`, { cache: "no-store" });
    if (!resp.ok) throw new Error(`alerts: HTTP ${resp.status}`);
    return (await resp.json()).transitions || [];
  }

  // The latest firing of rule on host (or the transition with that id).
  async open({ id = null, rule = null, host = null } = {}) {
    let list;
    try { list = await this.transitions(); } catch (e) { return this.render(null, `Could not load the alert history (${e.message}).`); }
    const match = id
      ? list.find((t) => t.id === id)
      : list.find((t) => t.rule.id === rule && t.host === host && t.state === "firing") ||
        list.find((t) => t.rule.id === rule && t.host === host);
    this.render(match, match ? "" : "This alert is no longer in the history.");
  }

  render(t, problem) {
    const d = this.dialog;
    d.replaceChildren();
    const head = el("div", "evidence-head");
    const title = el("h2", "", t ? t.title : "Alert");
    title.id = "evidence-title";
    const close = el("button", "banner-close", "×");
    close.type = "button";
    close.setAttribute("aria-label", "Close");
    close.addEventListener("click", () => d.close());
    head.append(title, close);
    d.append(head);
    if (!t) {
      d.append(el("p", "muted", problem));
    } else {
      const unit = t.rule.unit ? ` ${t.rule.unit}` : "";
      const facts = el("dl", "evidence-facts");
      const fact = (k, v) => facts.append(el("dt", "", k), el("dd", "", v));
      fact("State", t.state + (t.why ? ` (${t.why})` : ""));
      fact("Value", t.value == null ? "?" : `${t.value}${unit}`);
      fact("Threshold", `${t.rule.op} ${t.rule.threshold}${unit}${t.rule.hold ? ` for ${t.rule.hold} s` : ""}`);
      if (t.since) fact("Since", `${new Date(t.since * 1000).toLocaleString()}`);
      fact(t.state === "firing" ? "Fired" : "Resolved", `${new Date(t.ts * 1000).toLocaleString()} (${clock(t.ts)})`);
      if (t.silenced) fact("Silenced", `${t.silenced.id}${t.silenced.reason ? ": " + t.silenced.reason : ""} (not sent)`);
      else fact("Sent to", (t.channels || []).join(", ") || "no channel");
      d.append(facts);
      const ev = (t.state === "resolved" && t.fired && t.fired.evidence) || t.evidence || {};
      const when = t.state === "resolved" && t.fired ? "when it fired" : "at that moment";
      d.append(table(`Top processes by CPU ${when}`, ev.top_cpu), table(`Top processes by memory ${when}`, ev.top_mem));
    }
    if (!d.open) d.showModal();
  }
}
