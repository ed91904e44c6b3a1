// Lighter beside Paradex: one asset's spread, depth or slippage on both venues over a
// chosen range, on one chart, with the basis between their mids on a second axis.
// The assets come from GET /api/assets, the rows from GET /api/compare (the last hour
// from the 15 s windows, the last day from minutes, longer from hours). Like the other
// charts it keeps its points and asks only for the rows from the newest one on
// (series.js). chart.js comes from /static/vendor (window.Chart).

import { getJSON, withQuery } from "./api.js";
import { setText } from "./dom.js";
import { fmtClock, fmtCompact, fmtDateTime, fmtFixed, fmtInt } from "./format.js";
import { COMPARE_VIEWS, VENUES, compareDatasets, comparePoints } from "./compareseries.js";
import { chartLibrary, line, rangeTick, theme, timeChart, valueAxis } from "./linechart.js";
import { fetchFrom, mergePoints } from "./series.js";

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const MAX_ROWS = 1000; // the API's MAX_LIMIT
const MAX_PAGES = 3;
export const COMPARE_RANGES = {
  "1h": { ms: HOUR_MS, resolution: "windows", step: 10 * 60_000 },
  "24h": { ms: DAY_MS, resolution: "minutes", step: 3 * HOUR_MS },
  "7d": { ms: 7 * DAY_MS, resolution: "hours", step: DAY_MS },
  "30d": { ms: 30 * DAY_MS, resolution: "hours", step: 5 * DAY_MS },
};
const WHAT = { windows: "s windows", minutes: "minutes", hours: "hours" };

export class CompareChart {
  /** @param {{select, canvas, source, empty, note, buttons, viewButtons, windowSeconds}} options */
  constructor({ select, canvas, source, empty, note, buttons, viewButtons, windowSeconds }) {
    this.select = select;
    this.canvas = canvas;
    this.source = source;
    this.empty = empty;
    this.note = note;
    this.buttons = buttons;
    this.viewButtons = viewButtons;
    this.windowSeconds = windowSeconds;
    this.emptyText = empty.textContent;
    this.asset = "";
    this.range = "1h";
    this.view = "spread";
    this.chart = null;
    this.seq = 0;
    this.timer = null;
    this.held = null; // {key, points, venues}
    this.loaded = false; // the asset list has been read
    select.addEventListener("change", () => this.setAsset(select.value));
    for (const b of buttons) b.addEventListener("click", () => this.setRange(b.dataset.range));
    for (const b of viewButtons) b.addEventListener("click", () => this.setView(b.dataset.view));
    this.showButtons();
  }

  /** Read GET /api/assets and fill the picker (kept: the asset chosen, else the first). */
  async loadAssets() {
    try {
      const body = await getJSON("/api/assets");
      const names = (Array.isArray(body && body.assets) ? body.assets : [])
        .map((a) => a && a.asset)
        .filter((n) => typeof n === "string");
      this.loaded = true;
      this.select.replaceChildren(
        ...(names.length ? names : [""]).map((name) => {
          const option = document.createElement("option");
          option.value = name;
          option.textContent = name || "no asset on both exchanges";
          return option;
        }),
      );
      this.select.disabled = names.length === 0;
      const note = body && typeof body.note === "string" ? body.note : "";
      setText(this.note, names.length ? note : note || "No asset is tracked on both exchanges yet (GET /api/assets).");
      this.note.hidden = !this.note.textContent;
      const keep = names.includes(this.asset) ? this.asset : names[0] || "";
      this.select.value = keep;
      if (keep && keep !== this.asset) this.setAsset(keep);
      else if (keep) this.refresh();
    } catch (error) {
      setText(this.source, `could not load the assets: ${error.message}`);
    }
  }

  setAsset(asset) {
    if (!asset || asset === this.asset) return;
    this.asset = asset;
    this.refresh();
  }

  setRange(range) {
    if (!COMPARE_RANGES[range] || range === this.range) return;
    this.range = range;
    this.showButtons();
    this.refresh();
  }

  /** Spread, depth or slippage: the same rows, other lines (no fetch). */
  setView(view) {
    if (!COMPARE_VIEWS[view] || view === this.view) return;
    this.view = view;
    this.showButtons();
    if (this.chart) {
      this.chart.destroy();
      this.chart = null;
    }
    if (this.held) this.draw(this.held);
  }

  showButtons() {
    for (const b of this.buttons) b.setAttribute("aria-pressed", String(b.dataset.range === this.range));
    for (const b of this.viewButtons) b.setAttribute("aria-pressed", String(b.dataset.view === this.view));
  }

  refreshSoon(delay = 800) {
    if (!this.loaded) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), delay);
  }

  async refresh() {
    clearTimeout(this.timer);
    const { asset, range } = this;
    if (!asset) return;
    const seq = ++this.seq;
    const { ms, resolution } = COMPARE_RANGES[range];
    const key = `${asset}|${range}`;
    const start = Math.max(0, Date.now() - ms);
    const ask = (query) => getJSON(withQuery("/api/compare", { asset, resolution, limit: MAX_ROWS, ...query }));
    try {
      let since = fetchFrom(this.held, key);
      let fresh = null;
      let venues = this.held && this.held.key === key ? this.held.venues : VENUES;
      if (since !== null) {
        const body = await ask({ from: since });
        if (seq !== this.seq) return; // the asset or range changed meanwhile
        if (!(body.count >= MAX_ROWS)) fresh = comparePoints(body);
        venues = this.venuesOf(body);
      }
      if (fresh === null) {
        since = null;
        fresh = [];
        // 24 h of minutes is 1,440 timestamps: page through them (MAX_PAGES bounds the work).
        for (let page = 0; page < MAX_PAGES; page += 1) {
          const body = await ask({ from: start, offset: page * MAX_ROWS });
          if (seq !== this.seq) return;
          fresh.push(...comparePoints(body));
          venues = this.venuesOf(body);
          if (!(body.count >= MAX_ROWS)) break;
        }
        fresh.sort((a, b) => a.t - b.t);
      }
      const points = mergePoints(since === null ? [] : this.held.points, fresh, { since, after: start });
      this.held = { key, points, venues, asset, range, resolution };
      this.draw(this.held);
    } catch (error) {
      if (seq !== this.seq) return;
      setText(this.source, `could not compare ${asset}: ${error.message}`);
    } finally {
      if (seq === this.seq) {
        const every = resolution === "windows" ? this.windowSeconds * 2000 : resolution === "minutes" ? 60_000 : 5 * 60_000;
        this.timer = setTimeout(() => this.refresh(), every);
      }
    }
  }

  /** The venues the answer has (one exchange enabled: one), and its note shown. */
  venuesOf(body) {
    const note = body && typeof body.note === "string" ? body.note : "";
    setText(this.note, note);
    this.note.hidden = !note;
    const listed = Array.isArray(body && body.exchanges) ? body.exchanges : VENUES;
    return VENUES.filter((v) => listed.includes(v));
  }

  draw({ points, venues, asset, range, resolution }) {
    const has = points.length > 0;
    this.empty.hidden = has;
    if (!has) {
      setText(this.empty, this.emptyText);
      setText(this.source, `${asset}: no rows in the last ${range}`);
    } else {
      const last = points[points.length - 1];
      const what = resolution === "windows" ? `${this.windowSeconds} s windows` : WHAT[resolution];
      const spreads = venues
        .map((v) => `${v === "paradex" ? "Paradex" : "Lighter"} ${last[v] ? fmtFixed(last[v].spread, 2) : "—"}`)
        .join(", ");
      const basis = last.basis === null ? "—" : `${fmtFixed(last.basis, 2)} bps`;
      setText(
        this.source,
        `${asset} · ${fmtInt(points.length)} ${what} · ${fmtDateTime(points[0].t)} → ${fmtClock(last.t)} · ` +
          `latest spread (bps): ${spreads} · basis ${basis}`,
      );
    }
    const datasets = compareDatasets(points, this.view, venues);
    if (!this.ensureChart(datasets)) return;
    datasets.forEach((d, i) => {
      this.chart.data.datasets[i].data = d.data;
    });
    const { ms, step } = COMPARE_RANGES[range];
    const now = Math.max(Date.now(), has ? points[points.length - 1].t : 0);
    const x = this.chart.options.scales.x;
    x.min = Math.floor((now - ms) / step) * step;
    x.max = Math.ceil(now / step) * step;
    x.ticks.stepSize = step;
    this.longRange = step >= DAY_MS;
    this.chart.update("none");
  }

  /** The chart for these datasets (made again when the view or the venues changed). */
  ensureChart(datasets) {
    const shape = datasets.map((d) => d.label).join("|");
    if (this.chart && this.shape === shape) return true;
    if (this.chart) this.chart.destroy();
    this.chart = null;
    const Chart = chartLibrary(this.empty);
    if (!Chart) return false;
    this.shape = shape;
    const colors = theme();
    const venueColor = { lighter: colors.accent, paradex: colors.venueB, basis: colors.spread };
    const { axis, unit } = COMPARE_VIEWS[this.view];
    const format = (v) => (unit ? fmtFixed(v, 2) : fmtCompact(v));
    this.chart = timeChart(Chart, this.canvas, {
      datasets: datasets.map(({ venue, label, dash }) =>
        line({
          label,
          color: venueColor[venue],
          dash,
          width: venue === "basis" ? 1.2 : 1.6,
          yAxisID: venue === "basis" ? "basis" : "y",
        }),
      ),
      colors,
      xTick: rangeTick(this),
      scales: {
        y: valueAxis(axis, format, colors),
        basis: {
          position: "right",
          title: { display: true, text: "basis: Paradex − Lighter (bps of Lighter's mid)" },
          ticks: { callback: (value) => fmtFixed(value, 2) },
          grid: { drawOnChartArea: false },
        },
      },
      tooltipLabel: (item) =>
        ` ${item.dataset.label}: ${item.dataset.yAxisID === "basis" ? fmtFixed(item.parsed.y, 2) : format(item.parsed.y)}`,
    });
    return true;
  }
}
