// Human formatting for numbers on the page. Binary units (KiB, MiB) as the
// kernel reports them; tabular digits in CSS keep widths steady as values change.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
// A number and its unit never part at a line break ("11" on one line, "%" on the next).
const NBSP = "\u00a0";

export function bytes(n, digits = 1) {
  if (n === null || n === undefined || Number.isNaN(n)) return "—";
  let i = 0;
  let v = Math.abs(n);
  while (v >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
  const shown = i === 0 ? String(Math.round(v)) : v.toFixed(v >= 100 ? 0 : digits);
  return (n < 0 ? "-" : "") + shown + NBSP + UNITS[i];
}

export function rate(n) {
  return n === null || n === undefined ? "—" : bytes(n) + "/s";
}

export function percent(n, digits = 1) {
  return n === null || n === undefined ? "—" : n.toFixed(digits) + NBSP + "%";
}

export function num(n, digits = 2) {
  return n === null || n === undefined ? "—" : n.toFixed(digits);
}

export function count(n) {
  return n === null || n === undefined ? "—" : n.toLocaleString("en-US");
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

export function ms(n) {
  if (n === null || n === undefined) return "—";
  return n < 10 ? n.toFixed(1) + " ms" : Math.round(n) + " ms";
}

export function clock(epochSeconds) {
  return new Date(epochSeconds * 1000).toLocaleTimeString([], { hour12: false });
}
