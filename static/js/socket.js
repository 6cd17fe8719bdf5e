// The console's WebSocket: requests matched to replies by id, pushes as
// events, and the facts the page shows about the connection.
//
// A browser WebSocket never reconnects by itself. This one does, after a
// random 0-5 s wait (so a restarted server is not hit by every page at once),
// then with exponential backoff and full jitter. A socket closed because the
// login ended (1000 "logged out", or a refused handshake) does not retry.

export class ConsoleSocket extends EventTarget {
  // shouldRetry: async () => boolean, asked before each reconnect (is the login still valid?)
  constructor(url, { shouldRetry = async () => true } = {}) {
    super();
    this.url = url;
    this.shouldRetry = shouldRetry;
    this.ws = null;
    this.state = "closed";
    this.nextId = 1;
    this.waiting = new Map();
    this.attempt = 0;
    this.timer = null;
    this.pingTimer = null;
    this.stopped = true;
    this.everOpened = false;
    this.welcome = null;
    this.stats = { sent: 0, received: 0, bytesOut: 0, bytesIn: 0, reconnects: 0, rttMs: null };
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop(reason = "stopped") {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.pingTimer);
    if (this.ws) this.ws.close(1000, reason);
    this.setState("closed");
  }

  connect() {
    clearTimeout(this.timer);
    this.setState(this.everOpened ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      if (this.everOpened) this.stats.reconnects++;
      this.everOpened = true;
      this.attempt = 0;
      this.setState("open");
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.ping(), 5000);
      this.ping();
    };
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = (ev) => {
      clearInterval(this.pingTimer);
      for (const { reject } of this.waiting.values()) reject(new Error("connection closed"));
      this.waiting.clear();
      if (this.ws !== ws) return;
      this.setState("closed");
      this.dispatchEvent(new CustomEvent("closed", { detail: { code: ev.code, reason: ev.reason, opened } }));
      if (!this.stopped) this.scheduleReconnect(ev);
    };
  }

  scheduleReconnect(ev) {
    if (ev.code === 1000 && ev.reason === "logged out") return;
    this.attempt++;
    const delay = this.attempt === 1
      ? Math.random() * 5000
      : Math.random() * Math.min(30000, 1000 * 2 ** Math.min(this.attempt, 5));
    this.setState("reconnecting");
    this.timer = setTimeout(async () => {
      if (this.stopped) return;
      if (await this.shouldRetry()) this.connect();
      else this.stop("login ended");
    }, delay);
  }

  receive(text) {
    this.stats.received++;
    this.stats.bytesIn += new Blob([text]).size;
    let msg;
    try { msg = JSON.parse(text); } catch (e) { console.warn("bad frame from server", e); return; }
    if ("ok" in msg && this.waiting.has(msg.id)) {
      const { resolve } = this.waiting.get(msg.id);
      this.waiting.delete(msg.id);
      resolve(msg);
    } else if (msg.type === "welcome") {
      this.welcome = msg;
      this.dispatchEvent(new CustomEvent("welcome", { detail: msg }));
    } else if (msg.type) {
      this.dispatchEvent(new CustomEvent("push", { detail: msg }));
    }
    this.dispatchEvent(new CustomEvent("stats", { detail: this.stats }));
  }

  request(line) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new Error("the console is not connected"));
    }
    const id = this.nextId++;
    const text = JSON.stringify({ id, line });
    this.ws.send(text);
    this.stats.sent++;
    this.stats.bytesOut += new Blob([text]).size;
    this.dispatchEvent(new CustomEvent("stats", { detail: this.stats }));
    return new Promise((resolve, reject) => this.waiting.set(id, { resolve, reject }));
  }

  async ping() {
    // One at a time: a server that stops answering does not pile up pings.
    if (this.pinging) return;
    this.pinging = true;
    const start = performance.now();
    try {
      const reply = await this.request("ping");
      if (reply.ok) {
        this.stats.rttMs = performance.now() - start;
        this.dispatchEvent(new CustomEvent("stats", { detail: this.stats }));
      }
    } catch (e) { /* closed meanwhile: the close handler takes over */ }
    this.pinging = false;
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }
}
