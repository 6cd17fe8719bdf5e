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
  el.style.width = v + "%";
  el.dataset.level = v >= 90 ? "crit" : v >= 75 ? "warn" : "ok";
}

function mainDisk(disks) {
  return (disks || []).find((d) => d.mount === "/") || (disks || [])[0] || null;
}

export function updateCards(root, s) {
  const cpu = s.cpu || {};
  setText(root, "cpu", percent(cpu.percent));
  setText(root, "cpu-sub", cpu.count ? `${cpu.count} cores · user ${percent(cpu.user, 0)} · sys ${percent(cpu.system, 0)}` : "—");
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
  setText(root, "load-sub", `5 min ${num(load.load5)} · 15 min ${num(load.load15)}`);

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
  constructor(table, tabs) {
    this.tbody = table.querySelector("tbody");
    this.sort = "cpu";
    this.last = null;
    for (const tab of tabs) {
      tab.addEventListener("click", () => {
        this.sort = tab.dataset.sort;
        for (const t of tabs) t.setAttribute("aria-selected", String(t === tab));
        if (this.last) this.update(this.last);
      });
    }
  }

  update(sample) {
    this.last = sample;
    const procs = sample.processes || {};
    const rows = (this.sort === "mem" ? procs.top_mem : procs.top_cpu) || [];
    const trs = rows.map((p) => {
      const tr = document.createElement("tr");
      for (const [text, cls] of [[String(p.pid), "num mono"], [p.name, "name"], [p.user, ""],
        [p.cpu == null ? "—" : p.cpu.toFixed(1) + " %", "num"], [bytes(p.rss), "num"]]) {
        const td = document.createElement("td");
        td.textContent = text; // never innerHTML: process names are arbitrary text
        if (cls) td.className = cls;
        tr.append(td);
      }
      return tr;
    });
    this.tbody.replaceChildren(...trs);
  }
}
