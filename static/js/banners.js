// Visible, dismissible banners for broadcasts, alerts and connection trouble.
// While alerts fire, the tab title and favicon carry their count.

import { clock } from "./format.js";

const MAX_NOTICES = 5;

export class Banners {
  constructor(root) {
    this.root = root;
    this.byKey = new Map();
    this.firing = new Set();
    this.baseTitle = document.title;
    this.favicon = document.getElementById("favicon");
    this.onEvidence = null; // ({rule, host}) => show the alert's evidence
    this.renderBadge();
  }

  show(key, kind, title, message, { dismissible = true, timeout = 0 } = {}) {
    let node = this.byKey.get(key);
    if (!node) {
      node = document.createElement("div");
      node.className = "banner";
      node.setAttribute("role", kind === "alert" || kind === "offline" ? "alert" : "status");
      const text = document.createElement("div");
      text.className = "banner-text";
      const strong = document.createElement("strong");
      const span = document.createElement("span");
      text.append(strong, span);
      node.append(text);
      if (dismissible) {
        const close = document.createElement("button");
        close.type = "button";
        close.className = "banner-close";
        close.setAttribute("aria-label", "Dismiss");
        close.textContent = "×";
        close.addEventListener("click", () => this.dismiss(key));
        node.append(close);
      }
      this.byKey.set(key, node);
      this.root.append(node);
    }
    node.dataset.kind = kind;
    node.querySelector("strong").textContent = title;
    node.querySelector("span").textContent = message; // text, never HTML
    clearTimeout(node._timer);
    if (timeout) node._timer = setTimeout(() => this.dismiss(key), timeout);
    return node;
  }

  dismiss(key) {
    const node = this.byKey.get(key);
    if (!node) return;
    clearTimeout(node._timer);
    node.remove();
    this.byKey.delete(key);
  }

  notice(n) {
    this.show(`notice-${n.ts}`, "notice", `Broadcast from ${n.by || "server"} · ${clock(n.ts)}`, n.message);
    // A page left open all day keeps the latest few broadcasts, not every one.
    const notices = [...this.byKey.keys()].filter((k) => k.startsWith("notice-"));
    for (const key of notices.slice(0, -MAX_NOTICES)) this.dismiss(key);
  }

  // One banner per rule and host: a rule can fire on several hosts at once.
  alert(a) {
    const key = `alert-${a.rule.id}@${a.host}`;
    // The message starts with the host ("vm: cpu >= 90: ..."), which the title already names.
    const prefix = `${a.host}: `;
    const message = String(a.message || "").startsWith(prefix) ? a.message.slice(prefix.length) : a.message;
    let node;
    if (a.state === "firing") {
      this.firing.add(key);
      node = this.show(key, "alert", `Alert firing on ${a.host}`, message);
    } else {
      this.firing.delete(key);
      node = this.show(key, "resolved", `Alert resolved on ${a.host}`, message, { timeout: 15000 });
    }
    // The banner opens what was running when the rule fired (kept with the alert).
    if (this.onEvidence && !node.querySelector(".banner-evidence")) {
      const open = document.createElement("button");
      open.type = "button";
      open.className = "small-button banner-evidence";
      open.textContent = "What was running";
      open.addEventListener("click", () => this.onEvidence({ rule: a.rule.id, host: a.host }));
      node.insertBefore(open, node.querySelector(".banner-close"));
    }
    this.renderBadge();
  }

  // Rules can disappear (alert clear) or the page can learn the state afresh.
  syncRules(rules) {
    const live = new Set(rules.flatMap((r) => (r.firing || []).map((h) => `alert-${r.id}@${h}`)));
    for (const key of [...this.firing]) if (!live.has(key)) { this.firing.delete(key); this.dismiss(key); }
    this.renderBadge();
  }

  renderBadge() {
    const n = this.firing.size;
    document.title = n ? `(${n}) ${this.baseTitle}` : this.baseTitle;
    if (!this.favicon) return;
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 32;
    const g = canvas.getContext("2d");
    g.fillStyle = "#2563eb";
    g.beginPath();
    g.roundRect(2, 2, 28, 28, 7);
    g.fill();
    g.strokeStyle = "#ffffff";
    g.lineWidth = 3;
    g.beginPath();
    g.moveTo(7, 20); g.lineTo(13, 13); g.lineTo(18, 18); g.lineTo(25, 9);
    g.stroke();
    if (n) {
      g.fillStyle = "#d3302f";
      g.beginPath();
      g.arc(23, 9, 9, 0, Math.PI * 2);
      g.fill();
      g.fillStyle = "#ffffff";
      g.font = "bold 13px system-ui, sans-serif";
      g.textAlign = "center";
      g.textBaseline = "middle";
      g.fillText(n > 9 ? "9+" : String(n), 23, 10);
    }
    this.favicon.href = canvas.toDataURL("image/png");
  }
}
