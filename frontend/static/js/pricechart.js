// Mid price and spread of one market over the retained minutes (GET /api/minutes),
// followed by the 15 s windows newer than the last minute (GET /api/snapshots),
// so the chart is drawn within the first minute of tracking. Of the exchange the
// page shows (setExchange starts over on another one).
// chart.js comes from /static/vendor/chart.umd.min.js (window.Chart), never a CDN.

import { getJSON, withQuery } from "./api.js";
import { setText } from "./dom.js";
import { exchangeParams, symbolKey } from "./exchange.js";
import { fmtAtPrecisionOf, fmtClock, fmtDateTime, fmtFixed, fmtInt, fmtPrice, isNumber } from "./format.js";
import { chartLibrary, line, theme, timeChart } from "./linechart.js";
import { fetchFrom, mergePoints } from "./series.js";

const MINUTE_MS = 60_000;
const MAX_ROWS = 1000; // the API's MAX_LIMIT
const TIME_STEPS = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map(
  (s) => s * 1000,
);
const SYMBOL_KEY = "lighterTracker.chartSymbol";

function rowsOf(body, key) {
  if (Array.isArray(body)) return body;
  if (!body || typeof body !== "object") return [];
  for (const name of [key, "rows", "data", "results"]) {
    if (Array.isArray(body[name])) return body[name];
  }
  return [];
}

function num(value) {
  const n = typeof value === "string" ? Number(value) : value;
  return isNumber(n) ? n : null;
}

/** [{t, mid, spread, bps, ticks}] ascending by time, from API rows. */
export function points(rows) {
  const out = [];
  for (const row of rows) {
    if (!row || typeof row !== "object") continue;
    const t = num(row.timestamp);
    const mid = num(row.avg_mid);
    if (t === null || mid === null) continue;
    out.push({ t, mid, spread: num(row.avg_spread), bps: num(row.avg_spread_bps), ticks: num(row.tick_count) });
  }
  out.sort((a, b) => a.t - b.t);
  return out;
}

/** Decimals that tell a scale's ticks apart (their step's own decimals). */
export function stepDecimals(ticks) {
  const step = ticks.length > 1 ? Math.abs(ticks[1].value - ticks[0].value) : 0;
  if (!step || !isNumber(step)) return null;
  let decimals = 0;
  while (decimals < 10) {
    const scaled = step * 10 ** decimals;
    if (Math.abs(scaled - Math.round(scaled)) < 1e-6 * Math.max(1, scaled)) break;
    decimals += 1;
  }
  return decimals;
}

function tickLabel(value, ticks, fallback) {
  const decimals = stepDecimals(ticks);
  return decimals === null ? fallback(value) : fmtFixed(value, decimals);
}

function storedSymbol(exchange) {
  try {
    return window.localStorage.getItem(symbolKey(SYMBOL_KEY, exchange)) || "";
  } catch {
    return "";
  }
}

export class PriceChart {
  constructor({ canvas, select, source, empty, windowSeconds, initialSymbol, onSymbol, exchange = "lighter" }) {
    this.exchange = exchange;
    this.canvas = canvas;
    this.select = select;
    this.source = source;
    this.empty = empty;
    this.windowSeconds = windowSeconds;
    this.onSymbol = onSymbol;
    this.requested = initialSymbol || ""; // ?symbol=... : kept even before it has data
    this.preferred = storedSymbol(exchange); // last choice in this browser: used if the market exists
    this.symbol = this.requested;
    this.known = []; // symbols in the picker
    this.chart = null;
    this.seq = 0;
    this.timer = null;
    this.hasData = false;
    this.held = null; // {key, points}: the minutes drawn last, extended by each refresh (series.js)
    this.showSeconds = true; // x-axis labels with seconds while the span is short

    this.auto = false; // the symbol was picked by the page, not by the user
    select.addEventListener("change", () => this.choose(select.value));
  }

  /** Show another exchange: no symbol until its markets arrive (setSymbols). */
  setExchange(exchange) {
    if (exchange === this.exchange) return;
    this.exchange = exchange;
    this.seq += 1; // a fetch of the previous exchange in flight is dropped
    clearTimeout(this.timer);
    this.requested = "";
    this.preferred = storedSymbol(exchange);
    this.symbol = "";
    this.known = [];
    this.auto = false;
    this.hasData = false;
    this.select.replaceChildren(new Option("no markets yet", ""));
    this.select.disabled = true;
    setText(this.source, "—");
    this.empty.hidden = false;
    if (this.chart) {
      for (const dataset of this.chart.data.datasets) dataset.data = [];
      this.chart.update("none");
    }
  }

  /**
   * Offer these symbols in the picker (sorted, as text only). `busiest` is the
   * market to show when nobody chose one (the most active market with data).
   */
  setSymbols(symbols, busiest = "") {
    const sorted = [...new Set(symbols)].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
    if (this.requested && !sorted.includes(this.requested)) sorted.unshift(this.requested); // no data yet
    const changed = sorted.length !== this.known.length || sorted.some((s, i) => s !== this.known[i]);
    if (changed) {
      this.known = sorted;
      // new Option(text, value): both are plain strings, never parsed as HTML.
      this.select.replaceChildren(...sorted.map((symbol) => new Option(symbol, symbol)));
      this.select.disabled = sorted.length === 0;
      if (sorted.length === 0) this.select.append(new Option("no markets yet", ""));
    }
    if (!this.symbol && sorted.length) {
      this.auto = true;
      this.choose(sorted.includes(this.preferred) ? this.preferred : busiest || sorted[0], { remember: false });
      return;
    }
    if (this.auto && !this.hasData && busiest && busiest !== this.symbol) {
      // The automatic choice has nothing to draw yet: follow the data.
      this.choose(busiest, { remember: false });
      return;
    }
    if (this.select.value !== this.symbol) this.select.value = this.symbol;
    if (!this.hasData && this.symbol) this.refreshSoon();
  }

  choose(symbol, { remember = true } = {}) {
    if (!symbol) return;
    const changed = symbol !== this.symbol;
    this.symbol = symbol;
    if (this.select.value !== symbol) this.select.value = symbol;
    if (remember) {
      this.auto = false;
      try {
        window.localStorage.setItem(symbolKey(SYMBOL_KEY, this.exchange), symbol);
      } catch {
        /* not remembered */
      }
    }
    if (this.onSymbol) this.onSymbol(symbol, remember);
    if (changed || !this.hasData) {
      this.hasData = false;
      this.refresh();
    }
  }

  /** Refresh within a short delay (coalesces triggers). */
  refreshSoon(delay = 300) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), delay);
  }

  /** Schedule the periodic refresh: every other window (a window landing refreshes it at
   * once through the pushed stats: this only fills in when none came), or every 5 s while empty. */
  scheduleNext() {
    clearTimeout(this.timer);
    const every = this.hasData ? this.windowSeconds * 2000 : Math.min(5000, this.windowSeconds * 1000);
    this.timer = setTimeout(() => this.refresh(), every);
  }

  async refresh() {
    clearTimeout(this.timer);
    const symbol = this.symbol;
    if (!symbol) {
      this.scheduleNext();
      return;
    }
    const seq = ++this.seq;
    const exchange = exchangeParams(this.exchange);
    try {
      // Only the minutes from the newest one held on (that one again: it may have grown).
      // A minute after the newest held can only be rolled once it is over: until then
      // the windows below bring what is new, and the minutes are not asked for at all.
      const key = `${this.exchange}|${symbol}`;
      const since = fetchFrom(this.held, key);
      let minutes = since === null ? [] : this.held.points;
      if (since === null || Date.now() >= since + 2 * MINUTE_MS) {
        const query = since === null ? { symbol, limit: MAX_ROWS, ...exchange } : { symbol, limit: MAX_ROWS, from: since, ...exchange };
        const fresh = points(rowsOf(await getJSON(withQuery("/api/minutes", query)), "minutes"));
        if (seq !== this.seq) return; // the symbol or the exchange changed meanwhile
        minutes = mergePoints(minutes, fresh, { since, full: fresh.length >= MAX_ROWS, keep: MAX_ROWS });
        this.held = { key, points: minutes };
      }
      // Then the windows not yet rolled into a minute (all of them in the first minute).
      const lastMinuteEnd = minutes.length ? minutes[minutes.length - 1].t + MINUTE_MS : null;
      const windowQuery =
        lastMinuteEnd === null
          ? { symbol, limit: MAX_ROWS, ...exchange }
          : { symbol, limit: MAX_ROWS, from: lastMinuteEnd, ...exchange };
      const snapshots = await getJSON(withQuery("/api/snapshots", windowQuery)).catch(() => null);
      if (seq !== this.seq) return;
      const windows = points(rowsOf(snapshots, "snapshots")).filter((p) => lastMinuteEnd === null || p.t >= lastMinuteEnd);
      this.draw(symbol, minutes, windows);
    } catch (error) {
      if (seq !== this.seq) return;
      setText(this.source, `could not load ${symbol}: ${error.message}`);
    } finally {
      if (seq === this.seq) this.scheduleNext();
    }
  }

  draw(symbol, minutes, windows) {
    const series = [...minutes, ...windows];
    this.hasData = series.length > 0;
    this.empty.hidden = this.hasData;
    if (!this.hasData) {
      setText(this.source, `${symbol}: no rows yet`);
      if (this.chart) {
        for (const dataset of this.chart.data.datasets) dataset.data = [];
        this.chart.update("none");
      }
      return;
    }
    const last = series[series.length - 1];
    const parts = [];
    if (minutes.length) parts.push(`${fmtInt(minutes.length)} one-minute averages`);
    if (windows.length) parts.push(`${fmtInt(windows.length)} × ${this.windowSeconds} s windows`);
    setText(
      this.source,
      `${symbol} · ${parts.join(" + ")} · ${fmtDateTime(series[0].t)} → ${fmtClock(last.t)} · ` +
        `last mid ${fmtPrice(last.mid)}, spread ${fmtAtPrecisionOf(last.spread, last.mid)} (${fmtFixed(last.bps, 2)} bps)`,
    );
    const mid = series.map((p) => ({ x: p.t, y: p.mid }));
    const bps = series.filter((p) => p.bps !== null).map((p) => ({ x: p.t, y: p.bps }));
    if (!this.ensureChart()) return;
    const [midSet, bpsSet] = this.chart.data.datasets;
    midSet.data = mid;
    bpsSet.data = bps;
    // At least a few minutes across (one or two points must not make a degenerate
    // axis), with ticks on round times.
    const span = Math.max(last.t - series[0].t, 0);
    const pad = Math.max(this.windowSeconds * 500, (5 * MINUTE_MS - span) / 2);
    const from = series[0].t - pad;
    const to = last.t + pad;
    const step = TIME_STEPS.find((s) => (to - from) / s <= 7) ?? TIME_STEPS[TIME_STEPS.length - 1];
    const x = this.chart.options.scales.x;
    x.min = Math.floor(from / step) * step;
    x.max = Math.ceil(to / step) * step;
    x.ticks.stepSize = step;
    this.showSeconds = step < MINUTE_MS;
    this.chart.update("none");
  }

  ensureChart() {
    if (this.chart) return true;
    const Chart = chartLibrary(this.empty);
    if (!Chart) return false;
    const colors = theme();
    Chart.defaults.color = colors.muted;
    Chart.defaults.borderColor = colors.border;
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    this.chart = timeChart(Chart, this.canvas, {
      datasets: [
        line({ label: "mid", color: colors.accent, width: 1.8, yAxisID: "y", dot: 2.5 }),
        line({ label: "spread (bps)", color: colors.spread, width: 1.2, yAxisID: "y1", dot: 2.5 }),
      ],
      colors,
      xTick: (value) => fmtClock(value, this.showSeconds),
      scales: {
        y: {
          position: "left",
          title: { display: true, text: "mid", color: colors.accent },
          ticks: { callback: (value, index, ticks) => tickLabel(value, ticks, (v) => fmtPrice(v, 5)) },
          grid: { color: colors.border },
        },
        y1: {
          position: "right",
          title: { display: true, text: "spread (bps)", color: colors.spread },
          ticks: { callback: (value, index, ticks) => tickLabel(value, ticks, (v) => fmtFixed(v, 2)) },
          grid: { drawOnChartArea: false },
        },
      },
      tooltipLabel: (item) =>
        item.datasetIndex === 0 ? ` mid ${fmtPrice(item.parsed.y)}` : ` spread ${fmtFixed(item.parsed.y, 2)} bps`,
      boxWidth: 12,
    });
    return true;
  }
}
