// The metrics stream, shared by every tab of this browser.
//
// Browsers allow about six HTTP/1.1 connections per host, and an EventSource
// holds one for as long as it is open: a seventh tab would starve. So one tab
// (the leader, elected with a Web Lock) holds the only EventSource and relays
// each event to the other tabs over a BroadcastChannel. When the leader tab
// closes, its lock is released, the next tab takes over and resumes the
// stream from the last event id it saw, so no event is lost in the handover.
//
// EventSource reconnects by itself after a network error or a cleanly ended
// stream, sending Last-Event-ID. It gives up for good on a non-200 answer (a
// router's 503, say): then the leader reopens it after a backoff, passing the
// last id in the URL.

import { decodeMetrics } from "./wire.js";

const TYPES = ["metrics", "notice", "config", "alert", "resync"];

// Event ids are "<ms>-<seq>": compare them as numbers, part by part.
export function idAfter(a, b) {
  if (!b) return true;
  if (!a) return false;
  const [am, as] = a.split("-").map(Number);
  const [bm, bs] = b.split("-").map(Number);
  return am > bm || (am === bm && as > bs);
}

// One EventSource and its reconnection; reports raw events.
class Source {
  constructor(url, lastId, sink) {
    // Names this stream on the server (for `clients` and `drop sse`).
    this.client = Math.random().toString(36).slice(2, 10);
    this.url = url + (url.includes("?") ? "&" : "?") + "client=" + this.client;
    this.lastId = lastId;
    this.sink = sink; // { event(type, data, id), state(s) }
    this.opens = 0;
    this.reconnects = 0;
    this.failures = 0;
    this.timer = null;
    this.es = null;
  }

  open() {
    clearTimeout(this.timer);
    if (this.es) this.es.close();
    const sep = this.url.includes("?") ? "&" : "?";
    const url = this.lastId ? `${this.url}${sep}last_event_id=${encodeURIComponent(this.lastId)}` : this.url;
    const es = new EventSource(url);
    this.es = es;
    this.sink.state(this.opens ? "reconnecting" : "connecting");
    es.onopen = () => {
      if (this.opens++) this.reconnects++;
      this.failures = 0;
      this.sink.state("open");
    };
    es.onerror = () => {
      if (es !== this.es) return;
      if (es.readyState === EventSource.CLOSED) {
        this.sink.state("closed");
        this.failures++;
        const cap = Math.min(30000, 1000 * 2 ** Math.min(this.failures, 5));
        this.timer = setTimeout(() => this.open(), 500 + Math.random() * cap);
      } else {
        this.sink.state("reconnecting");
      }
    };
    for (const type of TYPES) {
      es.addEventListener(type, (ev) => {
        if (ev.lastEventId) this.lastId = ev.lastEventId;
        this.sink.event(type, ev.data, ev.lastEventId);
      });
    }
  }

  close() {
    clearTimeout(this.timer);
    if (this.es) this.es.close();
  }
}

export class MetricsStream extends EventTarget {
  constructor({ url, lastEventId = null, share = true }) {
    super();
    this.url = url;
    this.lastId = lastEventId;
    this.state = "connecting";
    this.role = null; // "leader" holds the EventSource, "follower" listens to it
    this.source = null;
    this.leaderReconnects = 0;
    this.share = share && "BroadcastChannel" in window && !!navigator.locks;
    this.client = null; // the leader's stream name on the server
    this.stats = { events: 0, bytes: 0, reconnects: 0, gaps: 0, latencyMs: null, lastSeq: null };
    // While the page is hidden, a metrics event only moves our place in the
    // stream (its id): nothing is parsed, counted or shown. The page catches
    // up from /api/history when it is shown again (see main.js).
    this.hidden = false;
    this.skipped = 0; // metrics events passed over while hidden
  }

  // The page went out of sight (true) or came back (false).
  setHidden(hidden) {
    if (hidden === this.hidden) return;
    this.hidden = hidden;
    if (!hidden) this.stats.lastSeq = null; // what was skipped is not a gap
  }

  start() {
    if (!this.share) {
      this.lead();
      return this;
    }
    this.role = "follower";
    this.channel = new BroadcastChannel("dashboard-stream:" + this.url);
    this.channel.onmessage = (m) => this.fromLeader(m.data);
    this.channel.postMessage({ kind: "hello" });
    this.setState("connecting");
    // Held until the tab goes away: whoever holds it is the leader.
    navigator.locks.request("dashboard-stream:" + this.url, () => new Promise(() => this.lead()));
    return this;
  }

  lead() {
    this.role = "leader";
    this.source = new Source(this.url, this.lastId, {
      event: (type, data, id) => {
        this.deliver(type, data, id);
        if (this.channel) this.channel.postMessage({ kind: "event", type, data, id });
      },
      state: (s) => {
        this.stats.reconnects = this.source.reconnects;
        this.setState(s);
        this.announce();
      },
    });
    this.client = this.source.client;
    this.source.open();
  }

  announce() {
    if (this.channel) {
      this.channel.postMessage({ kind: "state", state: this.state, reconnects: this.source.reconnects, client: this.client });
    }
  }

  fromLeader(msg) {
    if (this.role === "leader") {
      if (msg.kind === "hello") this.announce();
      return;
    }
    if (msg.kind === "event") this.deliver(msg.type, msg.data, msg.id);
    if (msg.kind === "state") {
      this.stats.reconnects = msg.reconnects;
      this.client = msg.client;
      this.setState(msg.state);
      this.dispatchEvent(new CustomEvent("stats", { detail: this.stats }));
    }
  }

  deliver(type, text, id) {
    // A tab that joined late has already loaded history up to its last id.
    if (type !== "resync" && !idAfter(id, this.lastId)) return;
    if (id) this.lastId = id;
    if (this.hidden && type === "metrics") {
      this.skipped++;
      return;
    }
    const s = this.stats;
    s.events++;
    // The exact size of the frame on the wire (the server's framing is fixed).
    s.bytes += 4 + id.length + 8 + type.length + 7 + utf8Length(text) + 2;
    let data;
    try {
      data = JSON.parse(text);
      if (type === "metrics") data = decodeMetrics(data); // the compact form, read here only
    } catch (e) {
      console.warn("unparseable event", type, e);
      return;
    }
    if (type === "metrics") {
      if (s.lastSeq !== null && data.seq > s.lastSeq + 1) s.gaps += data.seq - s.lastSeq - 1;
      // A seq that goes backwards means a new sampler (a restart): a new run, not a gap.
      s.lastSeq = data.seq;
      s.latencyMs = Math.max(0, Date.now() - data.ts * 1000);
    }
    if (type === "resync") s.lastSeq = null;
    this.dispatchEvent(new CustomEvent(type, { detail: data }));
    this.dispatchEvent(new CustomEvent("stats", { detail: s }));
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }
}

function utf8Length(text) {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) { n += 4; i++; }
    else n += 3;
  }
  return n;
}
