// Order book depth of one market: quote notional within 10, 50 and 100 bps of the
// mid, bid and ask, over a chosen range; or (the slippage view) what a market order
// of 1k, 10k, 100k and 1M USD costs, buying and selling, in bps of the mid. The last
// hour is drawn from the 15 s windows (GET /api/snapshots); longer ranges from the
// hourly rows (GET /api/hours, kept HOUR_RETENTION_DAYS). chart.js comes from
// /static/vendor (window.Chart).

import { getJSON, withQuery } from "./api.js";
import { exchangeParams } from "./exchange.js";
import { setText } from "./dom.js";
import { fmtClock, fmtCompact, fmtDateTime, fmtFixed, fmtInt, isNumber } from "./format.js";
import { chartLibrary, line, rangeTick, theme, timeChart, valueAxis } from "./linechart.js";
import { fetchFrom, mergePoints } from "./series.js";

const HOUR_MS = 3_600_000;
const MAX_ROWS = 1000; // the API's MAX_LIMIT
const MAX_PAGES = 3;
// Range -> how far back, and which rows draw it.
// The x axis always spans the whole range (ending now), ticked every `step`.
const DAY_MS = 24 * HOUR_MS;
export const RANGES = {
  "1h": { ms: HOUR_MS, source: "snapshots", step: 10 * 60_000 },
  "24h": { ms: DAY_MS, source: "hours", step: 3 * HOUR_MS },
  "7d": { ms: 7 * DAY_MS, source: "hours", step: DAY_MS },
  "30d": { ms: 30 * DAY_MS, source: "hours", step: 5 * DAY_MS },
  "90d": { ms: 90 * DAY_MS, source: "hours", step: 15 * DAY_MS },
};
const DEPTH_SERIES = [
  { key: "bid_depth_10", label: "bid 10 bps", side: "bid", dash: [] },
  { key: "bid_depth_50", label: "bid 50 bps", side: "bid", dash: [6, 3] },
  { key: "bid_depth_100", label: "bid 100 bps", side: "bid", dash: [2, 3] },
  { key: "ask_depth_10", label: "ask 10 bps", side: "ask", dash: [] },
  { key: "ask_depth_50", label: "ask 50 bps", side: "ask", dash: [6, 3] },
  { key: "ask_depth_100", label: "ask 100 bps", side: "ask", dash: [2, 3] },
];
// A sell walks the bids (the bid colour), a buy the asks.
const SIZES = [["1k", []], ["10k", [6, 3]], ["100k", [2, 3]], ["1m", [8, 3, 2, 3]]];
const SLIPPAGE_SERIES = [
  ...SIZES.map(([size, dash]) => ({ key: `slip_sell_${size}`, label: `sell ${size.toUpperCase()}`, side: "bid", dash })),
  ...SIZES.map(([size, dash]) => ({ key: `slip_buy_${size}`, label: `buy ${size.toUpperCase()}`, side: "ask", dash })),
];
// What each view draws, on which axis.
export const VIEWS = {
  depth: { series: DEPTH_SERIES, axis: "depth (quote notional)", format: (v) => fmtCompact(v) },
  slippage: { series: SLIPPAGE_SERIES, axis: "slippage (bps of the mid)", format: (v) => fmtFixed(v, 2) },
};
const SERIES = [...DEPTH_SERIES, ...SLIPPAGE_SERIES];

function num(value) {
  const n = typeof value === "string" ? Number(value) : value;
  return isNumber(n) ? n : null;
}

/** [{t, bid_depth_10, ..., imbalance_50, slip_buy_1k, ...}] ascending by time: rows with
 * depth samples only (a slippage is null where no sample filled its size). */
export function depthPoints(rows) {
  const out = [];
  for (const row of Array.isArray(rows) ? rows : []) {
    if (!row || typeof row !== "object") continue;
    const t = num(row.timestamp);
    if (t === null || !(num(row.depth_samples) > 0)) continue;
    const point = { t, imbalance: num(row.imbalance_50) };
    for (const { key } of SERIES) point[key] = num(row[key]);
    out.push(point);
  }
  out.sort((a, b) => a.t - b.t);
  return out;
}

export class DepthChart {
  /** @param {{canvas, source, empty, buttons: HTMLButtonElement[], viewButtons?: HTMLButtonElement[],
   *            windowSeconds: number}} options */
  constructor({ canvas, source, empty, buttons, viewButtons = [], windowSeconds, exchange = "lighter" }) {
    this.exchange = exchange;
    this.canvas = canvas;
    this.source = source;
    this.empty = empty;
    this.buttons = buttons;
    this.viewButtons = viewButtons;
    this.windowSeconds = windowSeconds;
    this.emptyText = empty.textContent;
    this.range = "1h";
    this.view = "depth";
    this.symbol = "";
    this.chart = null;
    this.seq = 0;
    this.timer = null;
    this.drawn = null; // the last draw's arguments: a view change redraws them
    this.held = null; // {key, points}: the rows drawn last, extended by each refresh (series.js)
    for (const button of buttons) {
      button.addEventListener("click", () => this.setRange(button.dataset.range));
    }
    for (const button of viewButtons) {
      button.addEventListener("click", () => this.setView(button.dataset.view));
    }
    this.showRange();
  }

  /** Show another exchange: nothing until its symbol is set. */
  setExchange(exchange) {
    if (exchange === this.exchange) return;
    this.exchange = exchange;
    this.seq += 1; // a fetch of the previous exchange in flight is dropped
    clearTimeout(this.timer);
    this.symbol = "";
    this.drawn = null;
    setText(this.source, "—");
    setText(this.empty, this.emptyText);
    this.empty.hidden = false;
    if (this.chart) {
      for (const dataset of this.chart.data.datasets) dataset.data = [];
      this.chart.update("none");
    }
  }

  setSymbol(symbol) {
    if (!symbol || symbol === this.symbol) return;
    this.symbol = symbol;
    this.refresh();
  }

  setRange(range) {
    if (!RANGES[range] || range === this.range) return;
    this.range = range;
    this.showRange();
    this.refresh();
  }

  /** Depth or slippage: the same rows, other series (no fetch). */
  setView(view) {
    if (!VIEWS[view] || view === this.view) return;
    this.view = view;
    this.showRange();
    if (this.chart) {
      this.chart.destroy();
      this.chart = null;
    }
    if (this.drawn) this.draw(...this.drawn);
  }

  showRange() {
    for (const button of this.buttons) button.setAttribute("aria-pressed", String(button.dataset.range === this.range));
    for (const button of this.viewButtons) button.setAttribute("aria-pressed", String(button.dataset.view === this.view));
  }

  refreshSoon(delay = 500) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), delay);
  }

  async refresh() {
    clearTimeout(this.timer);
    const { symbol, range } = this;
    if (!symbol) return;
    const seq = ++this.seq;
    const { ms, source } = RANGES[range];
    const exchange = exchangeParams(this.exchange);
    const key = `${this.exchange}|${symbol}|${range}`;
    const start = Math.max(0, Date.now() - ms);
    try {
      // Held already: only the rows from the newest one on (it may have grown); else, or
      // when that comes back full, the whole range.
      let since = fetchFrom(this.held, key);
      let fresh = null;
      if (since !== null) {
        const body = await getJSON(withQuery(`/api/${source}`, { symbol, limit: MAX_ROWS, from: since, ...exchange }));
        if (seq !== this.seq) return; // the symbol or range changed meanwhile
        const got = Array.isArray(body && body[source]) ? body[source] : [];
        if (got.length < MAX_ROWS) fresh = depthPoints(got);
      }
      if (fresh === null) {
        since = null;
        const rows = [];
        // 90 days of hours is 2160 rows: page through them (MAX_PAGES bounds the work).
        for (let page = 0; page < MAX_PAGES; page += 1) {
          const query = { symbol, limit: MAX_ROWS, offset: page * MAX_ROWS, from: start, ...exchange };
          const body = await getJSON(withQuery(`/api/${source}`, query));
          if (seq !== this.seq) return; // the symbol or range changed meanwhile
          const got = Array.isArray(body && body[source]) ? body[source] : [];
          rows.push(...got);
          if (got.length < MAX_ROWS) break;
        }
        fresh = depthPoints(rows);
      }
      const series = mergePoints(since === null ? [] : this.held.points, fresh, { since, after: start });
      this.held = { key, points: series };
      this.draw(symbol, range, source, series);
    } catch (error) {
      if (seq !== this.seq) return;
      setText(this.source, `could not load depth of ${symbol}: ${error.message}`);
    } finally {
      if (seq === this.seq) {
        // Windows land every WINDOW_SECONDS, hours once an hour. A window landing refreshes
        // it at once (pushed stats): this timer only fills in when none came.
        const every = source === "snapshots" ? this.windowSeconds * 2000 : 5 * 60_000;
        this.timer = setTimeout(() => this.refresh(), every);
      }
    }
  }

  draw(symbol, range, source, series) {
    this.drawn = [symbol, range, source, series];
    const has = series.length > 0;
    this.empty.hidden = has;
    if (!has) {
      setText(
        this.empty,
        source === "hours"
          ? `No hourly depth for ${symbol} yet: an hour row is written when an hour completes (or tracking stops).`
          : this.emptyText,
      );
      setText(this.source, `${symbol}: no depth rows in the last ${range}`);
      if (this.chart) {
        for (const dataset of this.chart.data.datasets) dataset.data = [];
        this.chart.update("none");
      }
      return;
    }
    const last = series[series.length - 1];
    const what = source === "hours" ? "hourly averages" : `${this.windowSeconds} s windows`;
    const latest =
      this.view === "slippage"
        ? `latest at 10k: buy ${fmtFixed(last.slip_buy_10k, 2)}, sell ${fmtFixed(last.slip_sell_10k, 2)} bps; ` +
          `at 1M: ${last.slip_buy_1m === null ? "not filled" : `buy ${fmtFixed(last.slip_buy_1m, 2)}, sell ${fmtFixed(last.slip_sell_1m, 2)} bps`}`
        : `latest within 50 bps: bid ${fmtCompact(last.bid_depth_50)}, ask ${fmtCompact(last.ask_depth_50)}, ` +
          `imbalance ${fmtFixed(last.imbalance, 2)}`;
    setText(this.source, `${symbol} · ${fmtInt(series.length)} ${what} · ${fmtDateTime(series[0].t)} → ${fmtClock(last.t)} · ${latest}`);
    if (!this.ensureChart()) return;
    VIEWS[this.view].series.forEach(({ key }, i) => {
      this.chart.data.datasets[i].data = series.filter((p) => p[key] !== null).map((p) => ({ x: p.t, y: p[key] }));
    });
    const { ms, step } = RANGES[range];
    const now = Math.max(Date.now(), last.t);
    const x = this.chart.options.scales.x;
    x.min = Math.floor((now - ms) / step) * step;
    x.max = Math.ceil(now / step) * step;
    x.ticks.stepSize = step;
    this.longRange = step >= DAY_MS;
    this.chart.update("none");
  }

  ensureChart() {
    if (this.chart) return true;
    const Chart = chartLibrary(this.empty);
    if (!Chart) return false;
    const colors = theme();
    const sideColor = { bid: colors.up, ask: colors.down };
    const { series, axis, format } = VIEWS[this.view];
    this.chart = timeChart(Chart, this.canvas, {
      datasets: series.map(({ label, side, dash }) => line({ label, color: sideColor[side], dash })),
      colors,
      xTick: rangeTick(this),
      scales: {
        y: valueAxis(axis, format, colors),
      },
      tooltipLabel: (item) => ` ${item.dataset.label}: ${format(item.parsed.y)}`,
    });
    return true;
  }
}
