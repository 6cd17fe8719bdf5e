// The operator console panel: login, a prompt with history and completion,
// replies rendered as tables where they are tabular, pushes inline.
// Everything shown comes from the server as data and goes into the page as
// text (textContent), never as HTML.

import { isProcess, renderProcess } from "./procview.js";
import { ConsoleSocket } from "./socket.js";
import { value } from "./values.js";

const HISTORY_KEY = "console-history";
const MAX_LINES = 400;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Text columns this long wrap inside their cell (help's descriptions, audit's
// lines); the rest stay on one line and the table scrolls sideways instead.
const WRAP_AT = 28;

// "dana (operator)", but "operator" alone when the name is the role's own default.
function signedInAs(name, role) {
  return name === role ? role : `${name} (${role})`;
}

// A wrapping cell breaks at spaces only: each word is kept whole, so "--name" or a
// path never splits at its hyphen or slash the way a browser would break it.
function wrapCell(cls, text) {
  const td = el("td", cls);
  for (const part of text.split(/( +)/)) {
    if (part) td.append(part.trim() ? el("span", "word", part) : document.createTextNode(part));
  }
  return td;
}

function renderTable(result) {
  const wrap = el("div", "term-table-wrap");
  const table = el("table", "term-table");
  const head = el("tr");
  for (const c of result.columns) head.append(el("th", "", c));
  table.append(el("thead"));
  table.tHead.append(head);
  const texts = result.rows.map((row) => row.map((v, i) => value(result.columns[i], v)));
  const wraps = result.columns.map((c, i) => texts.some((r) => r[i].length > WRAP_AT));
  const body = el("tbody");
  result.rows.forEach((row, n) => {
    const tr = el("tr");
    row.forEach((v, i) => {
      const cls = [typeof v === "number" ? "num" : "", wraps[i] ? "wrap" : ""].filter(Boolean).join(" ");
      tr.append(wraps[i] ? wrapCell(cls, texts[n][i]) : el("td", cls, texts[n][i]));
    });
    body.append(tr);
  });
  table.append(body);
  wrap.append(table);
  if (!result.rows.length) wrap.append(el("div", "term-muted", "(none)"));
  const extra = Object.entries(result).filter(([k]) => k !== "columns" && k !== "rows");
  if (extra.length) wrap.append(el("div", "term-muted", extra.map(([k, v]) => `${k}: ${value(k, v)}`).join("  ")));
  return wrap;
}

const isTable = (v) => !!v && Array.isArray(v.columns) && Array.isArray(v.rows);

function renderResult(result) {
  if (isProcess(result)) return renderProcess(result);
  if (isTable(result)) return renderTable(result);
  if (result && typeof result === "object") {
    const dl = el("dl", "term-kv");
    const add = (key, v) => {
      dl.append(el("dt", "", key));
      const dd = el("dd");
      if (isTable(v)) dd.append(renderTable(v));
      else dd.textContent = value(key, v);
      dl.append(dd);
    };
    for (const [k, v] of Object.entries(result)) {
      // One level of nesting reads better as dotted keys (sampler.interval).
      if (v && typeof v === "object" && !Array.isArray(v) && !isTable(v) && Object.keys(v).length) {
        for (const [k2, v2] of Object.entries(v)) add(`${k}.${k2}`, v2);
      } else {
        add(k, v);
      }
    }
    return dl;
  }
  return el("div", "", String(result));
}

export class ConsolePanel extends EventTarget {
  constructor(root, base, { onLogin = null, onLogout = null } = {}) {
    super();
    this.root = root;
    this.base = base;
    // What the page does when the login changes (a private page reloads to
    // show, or hide, the host's data).
    this.onLogin = onLogin;
    this.onLogout = onLogout;
    this.socket = null;
    this.commands = [];
    this.history = JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]");
    this.historyPos = this.history.length;
    // The login form may sit elsewhere (a private page shows it in place of the metrics).
    this.$ = (sel) => root.querySelector(sel) || document.querySelector(sel);
    this.output = this.$("#term-output");
    this.input = this.$("#term-input");
    this.bind();
  }

  bind() {
    this.$("#login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.login(this.$("#login-token").value, this.$("#login-name").value);
    });
    this.$("#term-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const line = this.input.value;
      this.input.value = "";
      if (line.trim()) this.run(line);
    });
    this.input.addEventListener("keydown", (ev) => this.onKey(ev));
    this.$("#logout").addEventListener("click", () => this.logout());
    this.output.addEventListener("click", (ev) => {
      const btn = ev.target.closest("[data-run]");
      if (btn) this.run(btn.dataset.run);
    });
  }

  async init() {
    // A login link (…/?token=…) logs in once, then the token leaves the address bar.
    const url = new URL(location.href);
    const hash = new URLSearchParams(url.hash.slice(1));
    const token = url.searchParams.get("token") || hash.get("token");
    if (token) {
      url.searchParams.delete("token");
      history.replaceState(null, "", url.pathname + url.search);
      if (await this.login(token, "")) return;
    }
    if (await this.sessionValid()) this.connect();
    else this.showLogin();
  }

  async sessionValid() {
    try {
      const r = await fetch(`${this.base}/api/session`, { cache: "no-store", credentials: "same-origin" });
      const body = await r.json();
      this.who = body;
      return !!body.authenticated;
    } catch (e) {
      return true; // server unreachable: keep trying, the login is probably fine
    }
  }

  async login(token, name) {
    const error = this.$("#login-error");
    error.textContent = "";
    let r;
    try {
      r = await fetch(`${this.base}/login`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify(name ? { token, name } : { token }),
      });
    } catch (e) {
      error.textContent = "The server is unreachable.";
      this.showLogin();
      return false;
    }
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      error.textContent = (body.error && body.error.message) || `Login failed (HTTP ${r.status}).`;
      this.showLogin();
      return false;
    }
    this.who = body;
    this.$("#login-token").value = "";
    if (this.onLogin && this.onLogin(body) === false) return true;
    this.connect();
    return true;
  }

  async logout() {
    if (this.socket) this.socket.stop("logging out");
    await fetch(`${this.base}/logout`, {
      method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin", body: "{}",
    }).catch(() => {});
    this.showLogin();
    if (this.onLogout) this.onLogout();
  }

  showLogin() {
    this.$("#login-form").hidden = false;
    this.$("#terminal").hidden = true;
    this.setState("signed out");
  }

  connect() {
    this.$("#login-form").hidden = true;
    this.$("#terminal").hidden = false;
    if (this.who && this.who.role === "viewer") {
      // A viewer sees every dashboard but opens no console.
      this.$("#whoami").textContent = signedInAs(this.who.operator, "viewer");
      this.line("system", "signed in as a viewer: the dashboards are yours; the console needs an observer or operator token");
      this.input.disabled = true;
      this.setState("viewer");
      return;
    }
    this.input.disabled = false;
    if (this.socket) this.socket.stop("reconnecting");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.socket = new ConsoleSocket(`${scheme}://${location.host}${this.base}/console`, {
      shouldRetry: () => this.sessionValid().then((ok) => { if (!ok) this.showLogin(); return ok; }),
    });
    this.socket.addEventListener("welcome", (ev) => {
      const w = ev.detail;
      this.commands = w.commands.map((c) => c.name);
      this.$("#whoami").textContent = signedInAs(w.operator, w.role);
      this.line("system", `connected to ${w.server} as ${signedInAs(w.operator, w.role)} — type help, Tab completes, ↑↓ history`);
    });
    this.socket.addEventListener("push", (ev) => this.push(ev.detail));
    this.socket.addEventListener("state", (ev) => this.setState(ev.detail));
    this.socket.addEventListener("stats", (ev) => this.dispatchEvent(new CustomEvent("stats", { detail: ev.detail })));
    this.socket.addEventListener("closed", (ev) => {
      const { code, reason, opened } = ev.detail;
      if (opened) this.line("system", `disconnected (${code}${reason ? " " + reason : ""})`);
      if (code === 1000 && reason === "logged out") this.showLogin();
    });
    this.socket.start();
  }

  setState(state) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }

  // ---- the prompt ----------------------------------------------------------

  onKey(ev) {
    if (ev.key === "ArrowUp" || ev.key === "ArrowDown") {
      ev.preventDefault();
      const step = ev.key === "ArrowUp" ? -1 : 1;
      this.historyPos = Math.max(0, Math.min(this.history.length, this.historyPos + step));
      this.input.value = this.history[this.historyPos] || "";
    } else if (ev.key === "Tab") {
      ev.preventDefault();
      this.complete();
    }
  }

  complete() {
    const text = this.input.value.replace(/^\s+/, "");
    const matches = this.commands.filter((c) => c.startsWith(text));
    if (matches.length === 1) {
      this.input.value = matches[0] + " ";
    } else if (matches.length > 1) {
      let prefix = matches[0];
      for (const m of matches) while (!m.startsWith(prefix)) prefix = prefix.slice(0, -1);
      if (prefix.length > text.length) this.input.value = prefix;
      else this.line("system", matches.join("   "));
    }
  }

  remember(line) {
    if (this.history[this.history.length - 1] !== line) this.history.push(line);
    this.history = this.history.slice(-100);
    this.historyPos = this.history.length;
    try { localStorage.setItem(HISTORY_KEY, JSON.stringify(this.history)); } catch (e) { /* not kept */ }
  }

  async run(line) {
    this.remember(line);
    this.line("command", line);
    let reply;
    try {
      reply = await this.socket.request(line);
    } catch (e) {
      this.line("error", e.message);
      return;
    }
    if (reply.ok) {
      this.append(renderResult(reply.result), "result");
    } else {
      const err = reply.error;
      const node = el("div", "term-error");
      node.append(el("strong", "", err.code), document.createTextNode(" " + err.message));
      if (err.confirm) {
        const btn = el("button", "term-confirm", err.confirm);
        btn.type = "button";
        btn.dataset.run = err.confirm;
        node.append(document.createTextNode(" "), btn);
      }
      this.append(node, "error");
    }
  }

  // A process row of the page was clicked: ask about it here, and bring the answer into view.
  async inspect(pid) {
    const done = this.run(`proc ${pid}`);
    const box = this.output.getBoundingClientRect();
    if (box.top < 0 || box.bottom > window.innerHeight) this.output.scrollIntoView({ block: "nearest" });
    await done;
  }

  push(msg) {
    if (msg.type === "notice") this.line("push", `broadcast from ${msg.by}: ${msg.message}`);
    else if (msg.type === "alert") this.line(msg.state === "firing" ? "alert" : "push", `alert ${msg.state}: ${msg.message}`);
    else if (msg.type === "config") this.line("push", `config: ${msg.change} (by ${msg.by})`);
    else if (msg.type === "audit") this.line("push", `${msg.record.operator}@${msg.record.addr}: ${msg.record.line} → ${msg.record.outcome}`);
    else this.line("push", JSON.stringify(msg));
  }

  line(kind, text) {
    this.append(el("span", "", text), kind);
  }

  append(node, kind) {
    const row = el("div", `term-line term-${kind}`);
    if (kind === "command") row.dataset.prompt = "›";
    row.append(node);
    const atBottom = this.output.scrollHeight - this.output.scrollTop - this.output.clientHeight < 40;
    this.output.append(row);
    while (this.output.childElementCount > MAX_LINES) this.output.firstElementChild.remove();
    if (atBottom || kind === "command") this.output.scrollTop = this.output.scrollHeight;
  }
}
