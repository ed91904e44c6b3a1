// START / STOP TRACKING, with the admin token asked for inline (no prompt()).
// It acts on the exchange the page shows: POST /api/start?exchange=<name>.

import { postControl, withQuery } from "./api.js";
import { byId, setState, setText } from "./dom.js";
import { exchangeLabel } from "./exchange.js";
import { tokenStore } from "./token.js";

// After a start/stop, pushed stats that contradict its answer are ignored this long (ms):
// a stale push is one the hub fetched just before the action and delivered just after
// (a fetch's time, whatever LIVE_PUSH_SECONDS is).
const HOLD_MS = 2500;

export class Control {
  /**
   * @param {{enabled: boolean, exchange: string, onResult: (body, exchange) => void}} options
   *   onResult gets the JSON answer of /api/start|stop (it carries the new stats) and
   *   the exchange it was about.
   */
  constructor({ enabled, exchange = "lighter", onResult }) {
    this.enabled = enabled;
    this.exchange = exchange;
    this.onResult = onResult;
    this.tracking = null; // unknown until the first stats
    this.busy = false;
    this.pending = null; // the action waiting for a token
    this.held = null; // {tracking, until}: the last action's answer, held against stale pushes
    this.button = byId("toggle");
    this.note = byId("control-note");
    this.form = byId("token-form");
    this.input = byId("token-input");
    this.tokenState = byId("token-state");

    this.button.addEventListener("click", () => this.act(this.button.dataset.action));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.saveToken();
    });
    byId("token-cancel").addEventListener("click", () => {
      this.pending = null;
      this.hideForm();
    });
    byId("token-forget").addEventListener("click", () => {
      tokenStore.clear();
      this.showNote("Token forgotten.", "ok");
      this.render();
    });
    this.render();
  }

  /** Act on another exchange from now on; its state is unknown until its stats arrive. */
  setExchange(exchange) {
    if (exchange === this.exchange) return;
    this.exchange = exchange;
    this.tracking = null;
    this.render();
  }

  setTracking(tracking) {
    tracking = Boolean(tracking);
    // A push fetched just before our action landed can arrive just after its answer:
    // for a moment, an answer contradicting the action is taken for that, not news.
    const held = this.held;
    if (held && Date.now() < held.until && tracking !== held.tracking) return;
    this.held = null;
    this.tracking = tracking;
    this.render();
  }

  render() {
    const action = this.tracking ? "stop" : "start";
    this.button.dataset.action = action;
    setText(this.button, this.busy ? (action === "stop" ? "STOPPING…" : "STARTING…") : `${action.toUpperCase()} TRACKING`);
    this.button.disabled = !this.enabled || this.busy || this.tracking === null;
    this.button.title = this.enabled
      ? `${action === "stop" ? "Stop" : "Start"} tracking ${exchangeLabel(this.exchange)}`
      : "ADMIN_TOKEN is not set on this deployment";
    this.tokenState.hidden = !tokenStore.get() || !this.form.hidden;
  }

  showNote(text, kind = "info") {
    setText(this.note, text);
    this.note.dataset.kind = kind;
    this.note.hidden = false;
  }

  askToken(action, why) {
    this.pending = action;
    this.form.hidden = false;
    this.showNote(why, why.includes("refused") ? "error" : "info");
    this.render();
    this.input.focus();
  }

  hideForm() {
    this.form.hidden = true;
    this.input.value = "";
    this.render();
  }

  saveToken() {
    const token = this.input.value.trim();
    if (!token) {
      this.input.focus();
      return;
    }
    tokenStore.set(token);
    this.hideForm();
    const action = this.pending;
    this.pending = null;
    if (action) this.act(action);
    else this.showNote("Token saved.", "ok");
  }

  async act(action) {
    if (this.busy || (action !== "start" && action !== "stop")) return;
    const token = tokenStore.get();
    if (!token) {
      this.askToken(action, `Enter the admin token to ${action} tracking.`);
      return;
    }
    const exchange = this.exchange;
    this.busy = true;
    this.render();
    try {
      const body = await postControl(withQuery(`/api/${action}`, { exchange }), token);
      this.note.hidden = true;
      if (body && typeof body === "object") {
        // The answer's top level is the exchange acted on (the only one it holds).
        if ("isTracking" in body && exchange === this.exchange) {
          this.tracking = Boolean(body.isTracking);
          this.held = { tracking: this.tracking, until: Date.now() + HOLD_MS };
        }
        this.onResult(body, exchange);
      }
    } catch (error) {
      if (error.status === 401) {
        tokenStore.clear();
        this.busy = false;
        this.askToken(action, "The token was refused (401). Enter it again.");
        return;
      }
      this.showNote(`Could not ${action} tracking: ${error.message}`, "error");
    } finally {
      this.busy = false;
      this.render();
    }
  }
}

/** The little pill in the header: the dashboard's own live connection. */
export function showLinkState(state, detail = {}) {
  const pill = byId("link-state");
  const text = byId("link-text");
  setState(pill, state);
  if (state === "open") setText(text, detail.text || "live");
  else if (state === "connecting") setText(text, detail.attempt ? `reconnecting (#${detail.attempt})…` : "connecting…");
  else if (state === "reconnecting") {
    const secs = Math.max(0, Math.round((detail.retryAt - Date.now()) / 100) / 10);
    setText(text, `offline · retry in ${secs.toFixed(1)} s`);
  }
}
