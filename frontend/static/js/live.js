// The dashboard's live WebSocket (served by the DashboardHub Durable Object).
//
// Server -> page: {"type":"hello","log":[...],"stats":{...}} on open, then
// {"type":"stats","stats":{...},"hub":{...,"pushEveryMs":N}} pushed every
// LIVE_PUSH_SECONDS (10 s by default: each push costs the deployment Durable Object
// requests, DEPLOY.md "Plans and cost") and {"type":"logs","entries":[...]} as the
// tracker shards relay their log lines ({"type":"log","entry":{...}} is still
// understood). The page asks for nothing on a timer. A dropped socket is reopened with
// exponential backoff and jitter; a socket that goes silent (no message for
// silentAfterMs(push period)) is treated as dropped. A hub that is full closes with
// 1013 and a reason: shown, and retried no sooner than FULL_RETRY_MS.

const POLL_MS = 1000;
export const DEFAULT_PUSH_MS = 10_000;
const SILENT_MIN_MS = 10_000;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 15_000;
const CLOSE_TRY_AGAIN_LATER = 1013;
const FULL_RETRY_MS = 30_000;

export class LiveSocket {
  /**
   * @param {string} url ws:// or wss:// URL
   * @param {{onHello?, onLog?, onStats?, onState?}} handlers
   *   onState(state, detail): "connecting" | "open" | "reconnecting" (detail.retryAt, detail.attempt)
   */
  constructor(url, handlers, { pushMs = DEFAULT_PUSH_MS, protocols = () => [] } = {}) {
    this.url = url;
    this.handlers = handlers;
    this.protocols = protocols; // the subprotocols of each connection (the read token's, token.js)
    this.pushMs = pushMs; // the hub's push period (its own `pushEveryMs` wins once heard)
    this.lastPushAt = 0; // when the last stats arrived (hello or push)
    this.state = "connecting";
    this.ws = null;
    this.attempt = 0;
    this.retryTimer = null;
    this.pollTimer = null;
    this.lastHeard = 0;
    this.stopped = true; // until start(): a private deployment's page waits for its read token
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.teardown();
  }

  /** Close and open again at once (a new read token). */
  restart() {
    this.stop();
    this.attempt = 0;
    this.start();
  }

  /** Reconnect now (e.g. the tab became visible while a retry was pending). */
  nudge() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.retryTimer);
    this.connect();
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  emit(name, ...args) {
    const handler = this.handlers[name];
    if (handler) {
      try {
        handler(...args);
      } catch (error) {
        console.error(`live socket ${name} handler failed`, error);
      }
    }
  }

  connect() {
    this.retryTimer = null;
    this.state = "connecting";
    this.emit("onState", "connecting", { attempt: this.attempt });
    let ws;
    try {
      const protocols = this.protocols();
      ws = protocols.length ? new WebSocket(this.url, protocols) : new WebSocket(this.url);
    } catch (error) {
      console.warn("live socket could not be created", error);
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (this.ws !== ws) return;
      this.attempt = 0;
      this.lastHeard = Date.now();
      this.state = "open";
      this.emit("onState", "open", {});
      this.pollTimer = setInterval(() => this.poll(ws), POLL_MS);
    });
    ws.addEventListener("message", (event) => {
      if (this.ws !== ws) return;
      this.lastHeard = Date.now();
      this.dispatch(event.data);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.teardown();
      if (event.code === CLOSE_TRY_AGAIN_LATER) {
        console.warn(`live socket refused: ${event.reason}`);
        this.scheduleReconnect(FULL_RETRY_MS, event.reason);
        return;
      }
      this.scheduleReconnect();
    });
    // An "error" is always followed by "close", which does the work.
  }

  poll(ws) {
    if (this.ws !== ws) return;
    if (document.hidden) {
      // A background tab asks for nothing (pushed log lines and stats still arrive).
      this.lastHeard = Date.now();
      return;
    }
    if (Date.now() - this.lastHeard > silentAfterMs(this.pushMs)) {
      console.warn("live socket silent: reconnecting");
      this.teardown();
      this.scheduleReconnect();
    }
  }

  dispatch(data) {
    if (typeof data !== "string") return;
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (!message || typeof message !== "object") return;
    if (message.type === "hello" || message.type === "stats") {
      this.lastPushAt = Date.now();
      const every = message.hub && message.hub.pushEveryMs;
      if (Number.isFinite(every) && every > 0) this.pushMs = every;
    }
    switch (message.type) {
      case "hello":
        this.emit("onHello", Array.isArray(message.log) ? message.log : [], message.stats || null);
        break;
      case "log":
        if (message.entry && typeof message.entry === "object") this.emit("onLog", message.entry);
        break;
      case "logs":
        if (Array.isArray(message.entries)) {
          for (const entry of message.entries) {
            if (entry && typeof entry === "object") this.emit("onLog", entry);
          }
        }
        break;
      case "stats":
        if (message.stats && typeof message.stats === "object") this.emit("onStats", message.stats);
        break;
      default:
        break; // pong and anything newer
    }
  }

  teardown() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) {
      try {
        ws.close(1000, "dashboard reconnecting");
      } catch {
        /* already closing */
      }
    }
  }

  scheduleReconnect(atLeastMs = 0, reason = "") {
    if (this.stopped) return;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    const delay = Math.max(atLeastMs, Math.round(ceiling / 2 + Math.random() * (ceiling / 2)));
    this.attempt += 1;
    this.state = "reconnecting";
    this.emit("onState", "reconnecting", { retryAt: Date.now() + delay, attempt: this.attempt, reason });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
}

/** The ws:// or wss:// URL of a path on this page's host. */
export function socketUrl(path) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}${path}`;
}

/** How long without any message before an open socket is taken for dead: two push
 * periods and some slack, never less than SILENT_MIN_MS. */
export function silentAfterMs(pushMs) {
  const every = Number.isFinite(pushMs) && pushMs > 0 ? pushMs : DEFAULT_PUSH_MS;
  return Math.max(SILENT_MIN_MS, 2 * every + 5000);
}

/** The header pill's text while the socket is open: when the next stats push is due
 * (only worth saying when pushes are seconds apart). */
export function liveText(lastPushAt, pushMs, now) {
  if (!lastPushAt || !(pushMs > 2000)) return "live";
  const left = Math.ceil((lastPushAt + pushMs - now) / 1000);
  return left > 0 ? `live · next update in ${left} s` : "live · update due";
}
