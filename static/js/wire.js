// The metrics event's compact form ("v": 2), back to the sample the page uses.
//
// The one place the page reads that form (dashboard/stream/wire.py writes it):
// tables of {columns, rows} become lists of objects again, and the processes'
// shared table gives top_cpu and top_mem their rows (a text column listed
// under `strings` holds indexes into it), and so do the containers' rows
// (containers.list). Data without `v` is the plain sample and comes back as
// it is.

const TABLES = [["disks"], ["net", "interfaces"], ["sensors", "temperatures"], ["sensors", "fans"]];
const TOPS = ["top_cpu", "top_mem"];

function isObject(o) {
  return o !== null && typeof o === "object" && !Array.isArray(o);
}

function isTable(t) {
  return isObject(t) && Array.isArray(t.columns) && Array.isArray(t.rows);
}

function objects(columns, rows) {
  // fromEntries makes own properties of every name, "__proto__" included.
  return rows.map((row) => Object.fromEntries(columns.map((c, j) => [c, row[j]])));
}

function decoded(t) {
  // A table's rows as objects, the text columns under `strings` looked up.
  const strings = t.strings || {};
  const coded = Object.keys(strings).map((name) => [t.columns.indexOf(name), strings[name]]);
  const rows = t.rows.map((row) => {
    const r = row.slice();
    for (const [j, values] of coded) if (r[j] != null) r[j] = values[r[j]];
    return r;
  });
  return objects(t.columns, rows);
}

function processes(p) {
  if (!isTable(p)) return p;
  const table = decoded(p);
  return Object.fromEntries(Object.entries(p)
    .filter(([key]) => key !== "columns" && key !== "rows" && key !== "strings")
    .map(([key, value]) => [key, TOPS.includes(key) && Array.isArray(value) ? value.map((i) => ({ ...table[i] })) : value]));
}

export function decodeMetrics(data) {
  if (!isObject(data) || data.v === undefined) return data;
  if (data.v !== 2) throw new Error(`metrics event form v${data.v} is not known to this page`);
  const out = { ...data };
  delete out.v;
  for (const path of TABLES) {
    let parent = out;
    for (const key of path.slice(0, -1)) {
      if (!isObject(parent[key])) { parent = null; break; }
      parent[key] = { ...parent[key] }; // copied, never the event's own object
      parent = parent[key];
    }
    const last = path[path.length - 1];
    if (parent && isTable(parent[last])) parent[last] = objects(parent[last].columns, parent[last].rows);
  }
  if ("processes" in out) out.processes = processes(out.processes);
  if (isObject(out.containers) && isTable(out.containers.list)) {
    out.containers = { ...out.containers, list: decoded(out.containers.list) };
  }
  return out;
}
