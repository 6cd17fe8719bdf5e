// How console results read: values by what their key names (times, durations,
// sizes, percentages, booleans, per-host values as a list). The same rules as
// dashboard/console/formatting.py, which the command-line client prints with,
// so a result reads the same in both. Returns text: the caller puts it in the
// page with textContent.

import { bytes } from "./format.js";

export const NONE = "-";
const TIMES = new Set(["ts", "since", "created", "started", "pong", "until", "last_seen", "changed", "at"]);
const DURATIONS = new Set(["uptime", "hold", "age", "duration", "for"]);
const SIZES = new Set(["rss", "bytes", "bytes_in", "bytes_out", "memory_usage", "memory_limit"]);
const PERCENTS = new Set(["cpu", "cpu_avg", "cpu_max"]);

export function kindOf(key) {
  const k = String(key).split(".").pop().toLowerCase();
  if (TIMES.has(k)) return "time";
  if (DURATIONS.has(k)) return "duration";
  if (SIZES.has(k) || k.startsWith("rss_") || k.startsWith("bytes_")) return "size";
  if (PERCENTS.has(k)) return "percent";
  return "plain";
}

const pad = (n) => String(n).padStart(2, "0");

// Local time: HH:MM:SS today, with the date on other days.
export function moment(ts, now = Date.now() / 1000) {
  const d = new Date(ts * 1000);
  const day = (x) => `${x.getFullYear()}-${pad(x.getMonth() + 1)}-${pad(x.getDate())}`;
  const hms = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return day(d) === day(new Date(now * 1000)) ? hms : `${day(d)} ${hms}`;
}

// 2d 3h, 4h 5m, 6m 7s, 8s; under a minute with its fraction (0.25s).
export function span(seconds) {
  if (seconds < 60) return Number.isInteger(seconds) ? `${seconds}s` : `${Number(seconds.toPrecision(3))}s`;
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  return `${m}m ${s % 60}s`;
}

// No exponent (1796400000, not 1.7964e+9), at most four decimals.
export function plain(v) {
  if (Number.isInteger(v)) return String(v);
  if (Math.abs(v) >= 1e6) return String(Math.trunc(v));
  return String(Number(v.toFixed(4)));
}

export function value(key, v) {
  if (v === null || v === undefined) return NONE;
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "number") {
    const kind = kindOf(key);
    if (kind === "time") return moment(v);
    if (kind === "duration") return span(v);
    if (kind === "size") return bytes(v).replace("\u00a0", " ");
    if (kind === "percent") return v.toFixed(1) + "%";
    return plain(v);
  }
  if (Array.isArray(v)) return v.map((x) => value(key, x)).join(", ") || NONE;
  if (typeof v === "object") return Object.entries(v).map(([k, x]) => `${k}=${value(key, x)}`).join(", ") || NONE;
  return String(v);
}
