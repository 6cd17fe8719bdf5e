// The metrics stream: one EventSource on /events, and the facts about it that
// the page shows (state, counts, last id, reconnects, gaps, latency).
//
// EventSource reconnects by itself after a network error or a cleanly ended
// stream, sending Last-Event-ID so the server replays what was missed. It
// gives up for good on a non-200 answer (a router's 503, say); then this
// class reopens it after a backoff, passing the last id it saw in the URL.

const TYPES = ["metrics", "notice", "config", "alert", "resync"];

export class MetricsStream extends EventTarget {
  constructor({ url, lastEventId = null }) {
    super();
    this.url = url;
    this.lastId = lastEventId;
    this.source = null;
    this.state = "connecting";
    this.opens = 0;
    this.retryTimer = null;
    this.failures = 0;
    this.stats = { events: 0, bytes: 0, reconnects: 0, gaps: 0, latencyMs: null, lastSeq: null };
  }

  start() {
    this.open();
    return this;
  }

  open() {
    clearTimeout(this.retryTimer);
    if (this.source) this.source.close();
    const sep = this.url.includes("?") ? "&" : "?";
    const url = this.lastId ? `${this.url}${sep}last_event_id=${encodeURIComponent(this.lastId)}` : this.url;
    const source = new EventSource(url);
    this.source = source;
    this.setState(this.opens ? "reconnecting" : "connecting");
    source.onopen = () => {
      if (this.opens++) this.stats.reconnects++;
      this.failures = 0;
      this.setState("open");
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // Given up by the browser: reopen ourselves, resuming from our last id.
        this.setState("closed");
        this.scheduleReopen();
      } else {
        this.setState("reconnecting");
      }
    };
    for (const type of TYPES) {
      source.addEventListener(type, (ev) => this.receive(type, ev));
    }
  }

  scheduleReopen() {
    this.failures++;
    // Exponential backoff with full jitter, capped, as for any client of a shared server.
    const cap = Math.min(30000, 1000 * 2 ** Math.min(this.failures, 5));
    const delay = 500 + Math.random() * cap;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  receive(type, ev) {
    if (ev.lastEventId) this.lastId = ev.lastEventId;
    this.stats.events++;
    // The exact bytes of the frame the server sent (its framing is fixed).
    this.stats.bytes += 4 + ev.lastEventId.length + 8 + type.length + 7 + utf8Length(ev.data) + 2;
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch (e) {
      console.warn("unparseable event", type, e);
      return;
    }
    if (type === "metrics") this.trackSample(data);
    if (type === "resync") this.stats.lastSeq = null;
    this.dispatchEvent(new CustomEvent(type, { detail: data }));
    this.dispatchEvent(new CustomEvent("stats", { detail: this.stats }));
  }

  trackSample(sample) {
    const s = this.stats;
    if (s.lastSeq !== null && sample.seq > s.lastSeq + 1) s.gaps += sample.seq - s.lastSeq - 1;
    // A seq that goes backwards means a new sampler (a restart): a new run, not a gap.
    s.lastSeq = sample.seq;
    s.latencyMs = Math.max(0, Date.now() - sample.ts * 1000);
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }

  close() {
    clearTimeout(this.retryTimer);
    if (this.source) this.source.close();
    this.setState("closed");
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
