// Summary cards and the top-processes table, filled from each sample.

import { bytes, count, duration, num, percent, rate } from "./format.js";

function setText(root, key, text) {
  const el = root.querySelector(`[data-v="${key}"]`);
  if (el && el.textContent !== text) el.textContent = text;
}

function setBar(root, key, pct) {
  const el = root.querySelector(`[data-bar="${key}"]`);
  if (!el) return;
  const v = pct == null ? 0 : Math.max(0, Math.min(100, pct));
  // Unchanged values are not written: each write costs a style pass.
  const width = v + "%";
  const level = v >= 90 ? "crit" : v >= 75 ? "warn" : "ok";
  if (el.style.width !== width) el.style.width = width;
  if (el.dataset.level !== level) el.dataset.level = level;
}

function mainDisk(disks) {
  return (disks || []).find((d) => d.mount === "/") || (disks || [])[0] || null;
}

export function updateCards(root, s) {
  const cpu = s.cpu || {};
  setText(root, "cpu", percent(cpu.percent));
  // Non-breaking spaces inside each "label value" group: a narrow card wraps between groups only.
  setText(root, "cpu-sub", cpu.count ? `${cpu.count}\u00a0cores · user\u00a0${percent(cpu.user, 0)} · sys\u00a0${percent(cpu.system, 0)}` : "—");
  setBar(root, "cpu", cpu.percent);

  const mem = s.memory || {};
  setText(root, "memory", percent(mem.percent));
  setText(root, "memory-sub", `${bytes(mem.used)} of ${bytes(mem.total)}`);
  setBar(root, "memory", mem.percent);

  const swap = s.swap || {};
  setText(root, "swap", swap.total ? percent(swap.percent) : "none");
  setText(root, "swap-sub", swap.total ? `${bytes(swap.used)} of ${bytes(swap.total)}` : "no swap configured");
  setBar(root, "swap", swap.total ? swap.percent : 0);

  const load = s.load || {};
  setText(root, "load", num(load.load1));
  setText(root, "load-sub", `5\u00a0min\u00a0${num(load.load5)} · 15\u00a0min\u00a0${num(load.load15)}`);

  const disk = mainDisk(s.disks);
  setText(root, "disk-mount", disk ? disk.mount : "");
  setText(root, "disk", disk ? percent(disk.percent) : "—");
  setText(root, "disk-sub", disk ? `${bytes(disk.free)} free of ${bytes(disk.total)}` : "no disks");
  setBar(root, "disk", disk && disk.percent);

  const net = s.net || {};
  setText(root, "net", `↓ ${rate(net.rx_bps)}`);
  setText(root, "net-sub", `↑ ${rate(net.tx_bps)}`);

  const procs = s.processes || {};
  setText(root, "procs", count(procs.count));
  setText(root, "uptime", `up ${duration(s.uptime)}`);

  const c = s.container;
  const card = root.querySelector('[data-card="container"]');
  if (card) card.hidden = !c;
  if (c) {
    const cpuPart = c.cpu_limit ? `${num(c.cpu_cores_used)}/${num(c.cpu_limit, 1)} cores` : `${num(c.cpu_cores_used)} cores`;
    setText(root, "container", c.memory_limit ? percent(c.memory_percent) : bytes(c.memory_usage));
    setText(root, "container-sub", `${c.memory_limit ? "of " + bytes(c.memory_limit) : "no limits"} · ${cpuPart}`);
    setBar(root, "container", c.memory_percent);
  }
}

export class ProcessTable {
  // onPick(pid): a row was clicked (or Enter pressed on it): the page looks into that process.
  constructor(table, tabs, onPick = null) {
    this.tbody = table.querySelector("tbody");
    this.sort = "cpu";
    this.last = null;
    this.onPick = onPick;
    const pick = (ev) => {
      const tr = ev.target.closest("tr[data-pid]");
      if (tr && this.onPick) this.onPick(Number(tr.dataset.pid));
    };
    this.tbody.addEventListener("click", pick);
    // While a mouse points at the rows they hold still, so the row clicked is the one aimed at.
    this.holding = false;
    this.tbody.addEventListener("pointerenter", (ev) => { if (ev.pointerType === "mouse") this.holding = true; });
    this.tbody.addEventListener("pointerleave", () => {
      this.holding = false;
      if (this.last) this.update(this.last);
    });
    this.tbody.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); pick(ev); } });
    for (const tab of tabs) {
      tab.addEventListener("click", () => {
        this.sort = tab.dataset.sort;
        for (const t of tabs) t.setAttribute("aria-selected", String(t === tab));
        if (this.last) this.update(this.last);
      });
    }
  }

  // Rows are updated in place, so a row being clicked or holding the keyboard's
  // focus is still there after the next sample.
  update(sample) {
    this.last = sample;
    if (this.holding) return;
    const procs = sample.processes || {};
    const rows = (this.sort === "mem" ? procs.top_mem : procs.top_cpu) || [];
    rows.forEach((p, i) => {
      let tr = this.tbody.children[i];
      if (!tr) {
        tr = document.createElement("tr");
        tr.tabIndex = 0;
        for (const cls of ["num mono", "name", "", "num", "num"]) {
          const td = document.createElement("td");
          if (cls) td.className = cls;
          tr.append(td);
        }
        this.tbody.append(tr);
      }
      tr.dataset.pid = String(p.pid);
      tr.title = `Look into ${p.name} (proc ${p.pid})`;
      const texts = [String(p.pid), p.name, p.user, p.cpu == null ? "—" : p.cpu.toFixed(1) + " %", bytes(p.rss)];
      texts.forEach((text, j) => {
        const td = tr.children[j];
        if (td.textContent !== text) td.textContent = text; // never innerHTML: names are arbitrary text
      });
    });
    while (this.tbody.children.length > rows.length) this.tbody.lastElementChild.remove();
  }
}
