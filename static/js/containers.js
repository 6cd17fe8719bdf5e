// The containers card and table, filled from each sample's `containers`.
//
// Each row shows a container's CPU and memory as a share of its own limit (a
// bar and a figure), its network rates, pids and uptime; the table sorts by
// CPU or memory. Names, images and reasons come from the engine and may be
// anything: they are written with textContent, never as HTML.

import { bytes, duration, percent, rate } from "./format.js";

const CELLS = ["name", "image", "share cpu", "share mem", "num net", "num", "num"];

function bar(td) {
  const wrap = document.createElement("span");
  wrap.className = "share-bar";
  const fill = document.createElement("span");
  wrap.append(fill);
  const text = document.createElement("span");
  text.className = "share-text";
  td.append(text, wrap);
}

function setShare(td, pct, text, title) {
  const fill = td.querySelector(".share-bar span");
  const v = pct == null ? 0 : Math.max(0, Math.min(100, pct));
  const width = v.toFixed(1) + "%";
  if (fill.style.width !== width) fill.style.width = width;
  fill.dataset.level = v >= 90 ? "crit" : v >= 75 ? "warn" : "ok";
  const label = td.querySelector(".share-text");
  if (label.textContent !== text) label.textContent = text;
  if (td.title !== title) td.title = title;
}

function setCell(td, text) {
  if (td.textContent !== text) td.textContent = text;
}

function cpuTitle(c) {
  const limit = c.cpu_limit ? `${c.cpu_limit} cores` : "no limit (the host's cores)";
  return `CPU ${percent(c.cpu_pct)} of its limit, ${limit}; ${percent(c.cpu)} of the host`;
}

function memTitle(c) {
  const limit = c.mem_limit ? bytes(c.mem_limit) : "no limit (the host's memory)";
  return `memory ${bytes(c.mem)} (without ${bytes(c.cache)} of reclaimable cache), ${percent(c.mem_pct)} of ${limit}`;
}

export function updateContainersCard(root, s) {
  const c = s.containers;
  const card = root.querySelector('[data-card="containers"]');
  if (!card) return;
  card.hidden = !c;
  if (!c) return;
  const value = card.querySelector('[data-v="containers"]');
  const sub = card.querySelector('[data-v="containers-sub"]');
  const running = `${c.running ?? "—"}\u00a0running`;
  if (value.textContent !== running) value.textContent = running;
  const stopped = c.stopped == null ? "stopped: ?" : `${c.stopped}\u00a0stopped`;
  const text = c.missing ? `${stopped} · names: ${c.missing}` : `${stopped} · ${c.engine || ""}`;
  if (sub.textContent !== text) sub.textContent = text;
  sub.title = c.missing ? `Listed by cgroup id: ${c.missing}` : "";
}

export class ContainerTable {
  constructor(section, tabs) {
    this.section = section;
    this.tbody = section.querySelector("table.ctable tbody");
    this.sort = "cpu";
    this.last = null;
    for (const tab of tabs) {
      tab.addEventListener("click", () => {
        this.sort = tab.dataset.csort;
        for (const t of tabs) t.setAttribute("aria-selected", String(t === tab));
        if (this.last) this.update(this.last);
      });
    }
  }

  update(sample) {
    this.last = sample;
    const c = sample.containers;
    this.section.hidden = !c;
    if (!c) return;
    const key = this.sort === "mem" ? "mem_pct" : "cpu_pct";
    const rows = (Array.isArray(c.list) ? c.list : []).filter((r) => r && typeof r === "object").slice();
    rows.sort((a, b) => (b[key] ?? -1) - (a[key] ?? -1));
    rows.forEach((r, i) => {
      let tr = this.tbody.children[i];
      if (!tr) {
        tr = document.createElement("tr");
        for (const cls of CELLS) {
          const td = document.createElement("td");
          td.className = cls;
          if (cls.startsWith("share")) bar(td);
          tr.append(td);
        }
        this.tbody.append(tr);
      }
      tr.dataset.id = String(r.id);
      setCell(tr.children[0], String(r.name ?? r.id));
      tr.children[0].title = `${r.name ?? ""} (${r.id}) · ${r.state ?? ""}`;
      setCell(tr.children[1], r.image == null ? "—" : String(r.image));
      setShare(tr.children[2], r.cpu_pct, percent(r.cpu_pct), cpuTitle(r));
      setShare(tr.children[3], r.mem_pct, `${bytes(r.mem)} · ${percent(r.mem_pct, 0)}`, memTitle(r));
      setCell(tr.children[4], `↓ ${rate(r.rx_bps)} ↑ ${rate(r.tx_bps)}`);
      setCell(tr.children[5], r.pids == null ? "—" : String(r.pids));
      setCell(tr.children[6], duration(r.uptime));
    });
    while (this.tbody.children.length > rows.length) this.tbody.lastElementChild.remove();
    const empty = this.section.querySelector("[data-v='containers-empty']");
    const note = rows.length ? "" : "No container is running.";
    if (empty && empty.textContent !== note) empty.textContent = note;
  }
}
