// The tracker's state and counters (from the live socket's stats messages).

import { byId, setState, setText } from "./dom.js";
import { fmtAgo, fmtDateTime, fmtDuration, fmtFixed, fmtInt, isNumber } from "./format.js";

export class StatsPanel {
  constructor({ windowSeconds }) {
    this.windowSeconds = windowSeconds;
    this.stats = null;
    this.receivedAt = 0;
    this.prev = null; // {messages, at} for the rate
    this.rate = null;
    this.n = {};
    for (const id of [
      "status", "stat-messages", "stat-messages-hint", "stat-markets", "stat-markets-hint",
      "stat-connected", "stat-connected-hint", "stat-window", "window-progress",
      "stat-reconnects", "stat-gaps", "stat-malformed", "stat-late", "stat-flush-failures",
      "stat-windows-flushed", "stat-windows-flushed-hint", "stat-windows-lost",
      "fact-started", "fact-last-frame", "fact-last-flush", "fact-reconnect", "fact-last-error",
    ]) {
      this.n[id] = byId(id);
    }
  }

  /** Another exchange: its counters start over (no message rate across exchanges). */
  reset() {
    this.stats = null;
    this.prev = null;
    this.rate = null;
  }

  update(stats, at = Date.now()) {
    this.stats = stats;
    this.receivedAt = at;
    const n = this.n;
    const tracking = Boolean(stats.isTracking);

    setText(n.status, tracking ? "🟢 TRACKING" : "⚪ stopped");
    setState(n.status, tracking ? "tracking" : "stopped");

    const messages = stats.messagesReceived;
    if (isNumber(messages)) {
      if (this.prev && at - this.prev.at >= 500 && messages >= this.prev.messages) {
        const instant = ((messages - this.prev.messages) * 1000) / (at - this.prev.at);
        this.rate = this.rate === null ? instant : this.rate * 0.6 + instant * 0.4;
        this.prev = { messages, at };
      } else if (!this.prev || messages < this.prev.messages) {
        this.prev = { messages, at }; // first sample, or a counter reset (new run)
        this.rate = null;
      }
    }
    setText(n["stat-messages"], fmtInt(messages));
    setText(
      n["stat-messages-hint"],
      tracking && this.rate !== null ? `${fmtFixed(this.rate, this.rate < 10 ? 1 : 0)} msg/s` : tracking ? "measuring…" : "idle",
    );

    setText(n["stat-markets"], fmtInt(stats.markets));
    const agg = stats.aggregator || {};
    const parts = [];
    if (isNumber(stats.subscribed)) parts.push(`${fmtInt(stats.subscribed)} subscribed`);
    if (isNumber(agg.currentSymbols)) parts.push(`${fmtInt(agg.currentSymbols)} in window`);
    setText(n["stat-markets-hint"], parts.join(" · ") || "—");

    if (!tracking) {
      setText(n["stat-connected"], "idle");
      setState(n["stat-connected"], null);
    } else if (stats.connected) {
      setText(n["stat-connected"], "connected");
      setState(n["stat-connected"], "good");
    } else {
      setText(n["stat-connected"], "disconnected");
      setState(n["stat-connected"], "bad");
    }
    const hint = [];
    const shards = Array.isArray(stats.shards) ? stats.shards : [];
    if (shards.length > 1) {
      const up = shards.filter((s) => s && s.connected).length;
      hint.push(`${up}/${shards.length} shards up`);
    }
    if (isNumber(stats.validBooks)) hint.push(`${fmtInt(stats.validBooks)} valid books`);
    setText(n["stat-connected-hint"], hint.join(" · ") || "—");

    const elapsed = isNumber(agg.windowElapsed) ? Math.min(agg.windowElapsed, this.windowSeconds) : 0;
    setText(n["stat-window"], tracking ? `${fmtFixed(elapsed, 1)} / ${this.windowSeconds} s` : "—");
    n["window-progress"].value = tracking ? elapsed : 0;

    this.counter("stat-reconnects", stats.reconnects, "warn");
    this.counter("stat-gaps", stats.gaps, "warn");
    this.counter("stat-malformed", stats.malformed, "warn");
    this.counter("stat-late", stats.lateFrames, "warn");
    this.counter("stat-flush-failures", stats.flushFailures, "bad");
    this.counter("stat-windows-lost", stats.windowsLost, "bad");
    setText(n["stat-windows-flushed"], fmtInt(stats.windowsFlushed));
    setText(n["stat-windows-flushed-hint"], `${fmtInt(stats.pendingWindows ?? 0)} pending`);

    const error = typeof stats.lastError === "string" && stats.lastError ? stats.lastError : null;
    setText(n["fact-last-error"], error ?? "none");
    setState(n["fact-last-error"], error ? "error" : null);
    this.tick(at);
  }

  counter(id, value, badState) {
    setText(this.n[id], fmtInt(value));
    setState(this.n[id], isNumber(value) && value > 0 ? badState : null);
  }

  /** Refresh the relative times (every second, between stats messages). */
  tick(now = Date.now()) {
    const stats = this.stats;
    if (!stats) return;
    const n = this.n;
    const started = stats.startedAt;
    setText(
      n["fact-started"],
      isNumber(started) ? (stats.isTracking ? `${fmtDuration(now - started)} ago` : fmtDateTime(started)) : "—",
    );
    setText(n["fact-last-frame"], isNumber(stats.lastMessageAt) ? fmtAgo(stats.lastMessageAt, now) : "—");
    const flush = stats.lastFlush;
    setText(
      n["fact-last-flush"],
      flush && isNumber(flush.at)
        ? `${fmtAgo(flush.at, now)} · ${fmtInt(flush.rows)} rows · ${fmtInt(flush.ms)} ms`
        : "—",
    );
    setText(
      n["fact-reconnect"],
      isNumber(stats.reconnectAt) && stats.reconnectAt > now ? `in ${fmtDuration(stats.reconnectAt - now)}` : "—",
    );
  }
}
