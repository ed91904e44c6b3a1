// The market table: one row per market from GET /api/overview, latest window
// and minute. Symbols come from the exchange: they are set as text only.

import { el, setText } from "./dom.js";
import { fmtAtPrecisionOf, fmtCompact, fmtDuration, fmtFixed, fmtInt, fmtPrice, isNumber } from "./format.js";

const COLUMNS = ["symbol", "bid", "ask", "mid", "spread", "bps", "depth50", "imbalance", "slip10k", "slip100k", "ticks", "age"];
const NUMERIC = new Set(["bid", "ask", "mid", "spread", "bps", "depth50", "imbalance", "slip10k", "slip100k", "ticks", "age"]);
// Slippage columns: the size (as in the API's column names) each shows.
const SLIPPAGE = { slip10k: "10k", slip100k: "100k" };
// Numeric columns whose first click sorts the lowest first: the freshest, the cheapest.
const LOW_FIRST = new Set(["age", "slip10k", "slip100k"]);

function num(value) {
  const n = typeof value === "string" ? Number(value) : value;
  return isNumber(n) ? n : null;
}

/** The numbers a row shows, from one /api/overview market entry. */
export function rowValues(market, windowMs, serverNow) {
  const w = market.window && typeof market.window === "object" ? market.window : {};
  const m = market.minute && typeof market.minute === "object" ? market.minute : {};
  const bid = num(w.last_bid) ?? num(w.avg_bid) ?? num(m.last_bid);
  const ask = num(w.last_ask) ?? num(w.avg_ask) ?? num(m.last_ask);
  // Depth within 50 bps of the mid, both sides, of the latest window (else minute).
  const depthOf = (row) => {
    const bid = num(row.bid_depth_50);
    const ask = num(row.ask_depth_50);
    return bid !== null && ask !== null ? bid + ask : null;
  };
  // Slippage of a market order of that size, buy and sell, in bps of the mid, of the
  // latest window (else minute); null where no sample filled it on both sides. The cell
  // shows (and sorts by) their mean: what a trade of that size costs, either way.
  const slippageOf = (size) => {
    for (const row of [w, m]) {
      const buy = num(row[`slip_buy_${size}`]);
      const sell = num(row[`slip_sell_${size}`]);
      if (buy !== null && sell !== null) return { buy, sell, mean: (buy + sell) / 2 };
    }
    return null;
  };
  const slip10k = slippageOf("10k");
  const slip100k = slippageOf("100k");
  let age = num(market.age_ms);
  if (age === null && isNumber(serverNow) && num(w.timestamp) !== null) age = serverNow - (num(w.timestamp) + windowMs);
  return {
    symbol: String(market.symbol ?? `#${market.market_index}`),
    bid,
    ask,
    mid: num(w.avg_mid) ?? num(m.avg_mid) ?? (bid !== null && ask !== null ? (bid + ask) / 2 : null),
    spread: num(w.avg_spread) ?? num(m.avg_spread),
    bps: num(w.avg_spread_bps) ?? num(m.avg_spread_bps),
    depth50: depthOf(w) ?? depthOf(m),
    imbalance: num(w.imbalance_50) ?? num(m.imbalance_50),
    slip10k: slip10k ? slip10k.mean : null,
    slip10kSides: slip10k,
    slip100k: slip100k ? slip100k.mean : null,
    slip100kSides: slip100k,
    ticks: num(w.tick_count),
    minuteTicks: num(m.tick_count),
    age,
  };
}

export class MarketTable {
  /**
   * @param {{tbody, filter, count, empty, headers: HTMLElement[], windowSeconds: number,
   *          onSelect: (symbol: string) => void}} options
   */
  constructor({ tbody, filter, count, empty, headers, windowSeconds, onSelect }) {
    this.tbody = tbody;
    this.filter = filter;
    this.count = count;
    this.empty = empty;
    this.headers = headers;
    this.windowMs = windowSeconds * 1000;
    this.onSelect = onSelect;
    this.rows = new Map(); // key -> {tr, cells, values, receivedAt}
    this.sort = { key: "symbol", dir: 1 };
    this.selected = "";
    this.emptyText = empty.textContent;

    filter.addEventListener("input", () => this.applyFilter());
    for (const button of headers) {
      button.addEventListener("click", () => {
        const key = button.dataset.sort;
        this.sort = { key, dir: this.sort.key === key ? -this.sort.dir : NUMERIC.has(key) && !LOW_FIRST.has(key) ? -1 : 1 };
        this.order();
      });
    }
    this.tbody.addEventListener("click", (event) => {
      const tr = event.target.closest("tr");
      if (tr && tr.dataset.key && this.rows.has(tr.dataset.key)) this.onSelect(this.rows.get(tr.dataset.key).values.symbol);
    });
    this.showSortState();
  }

  /** Symbols of the markets that have data, for the chart's picker. */
  symbols() {
    return [...this.rows.values()].map((row) => row.values.symbol);
  }

  /** The symbol with the most ticks in its latest window ("" when none has data). */
  busiest() {
    let best = null;
    for (const row of this.rows.values()) {
      const ticks = row.values.ticks;
      if (ticks !== null && ticks > 0 && row.values.mid !== null && (!best || ticks > best.ticks)) best = row.values;
    }
    return best ? best.symbol : "";
  }

  update(overview, receivedAt = Date.now()) {
    const markets = Array.isArray(overview && overview.markets) ? overview.markets : [];
    const serverNow = num(overview && overview.now);
    const seen = new Set();
    for (const market of markets) {
      if (!market || typeof market !== "object") continue;
      const key = String(market.market_index ?? market.symbol);
      seen.add(key);
      let row = this.rows.get(key);
      if (!row) {
        row = this.createRow(key);
        this.rows.set(key, row);
      }
      this.fill(row, rowValues(market, this.windowMs, serverNow), receivedAt);
    }
    for (const [key, row] of this.rows) {
      if (!seen.has(key)) {
        row.tr.remove();
        this.rows.delete(key);
      }
    }
    this.order();
    this.applyFilter();
    this.setSelected(this.selected);
  }

  createRow(key) {
    const cells = {};
    const tr = el("tr", { dataset: { key } });
    for (const column of COLUMNS) {
      cells[column] = el("td", { className: column === "symbol" ? "text symbol" : column });
      tr.append(cells[column]);
    }
    return { tr, cells, values: null, receivedAt: 0 };
  }

  fill(row, values, receivedAt) {
    const previous = row.values;
    const { cells } = row;
    row.values = values;
    row.receivedAt = receivedAt;
    setText(cells.symbol, values.symbol);
    cells.symbol.title = values.symbol;
    setText(cells.bid, fmtPrice(values.bid));
    setText(cells.ask, fmtPrice(values.ask));
    setText(cells.mid, fmtPrice(values.mid));
    setText(cells.spread, fmtAtPrecisionOf(values.spread, values.mid));
    setText(cells.bps, fmtFixed(values.bps, 2));
    setText(cells.depth50, fmtCompact(values.depth50));
    setText(cells.imbalance, fmtFixed(values.imbalance, 2));
    const lean = values.imbalance === null ? "" : values.imbalance > 0 ? "bid" : values.imbalance < 0 ? "ask" : "";
    if (cells.imbalance.dataset.lean !== lean) cells.imbalance.dataset.lean = lean;
    for (const [key, size] of Object.entries(SLIPPAGE)) {
      const sides = values[`${key}Sides`];
      setText(cells[key], fmtFixed(values[key], 2));
      cells[key].title = sides
        ? `${size} USD: buy ${fmtFixed(sides.buy, 2)} bps, sell ${fmtFixed(sides.sell, 2)} bps from the mid`
        : `no sample of the latest window or minute filled ${size} USD on both sides`;
    }
    cells.ticks.replaceChildren(
      fmtInt(values.ticks),
      ...(values.minuteTicks !== null ? [el("span", { className: "sub", text: `/ ${fmtInt(values.minuteTicks)}` })] : []),
    );
    cells.ticks.title = "updates in the latest window / in its minute";
    if (previous && previous.mid !== null && values.mid !== null && previous.mid !== values.mid) {
      flash(cells.mid, values.mid > previous.mid ? "up" : "down");
    }
    this.tickRow(row, receivedAt);
  }

  tickRow(row, now) {
    const age = row.values.age === null ? null : row.values.age + (now - row.receivedAt);
    setText(row.cells.age, age === null ? "—" : fmtDuration(age));
    const stale = age !== null && age > 3 * this.windowMs + 2000 ? "true" : "false";
    if (row.tr.dataset.stale !== stale) row.tr.dataset.stale = stale;
  }

  /** Refresh the ages (every second, between polls). */
  tick(now = Date.now()) {
    for (const row of this.rows.values()) this.tickRow(row, now);
  }

  order() {
    const { key, dir } = this.sort;
    const rows = [...this.rows.values()];
    rows.sort((a, b) => {
      const x = a.values[key];
      const y = b.values[key];
      if (key === "symbol") return dir * String(x).localeCompare(String(y), "en", { numeric: true });
      if (x === null && y === null) return a.values.symbol.localeCompare(b.values.symbol);
      if (x === null) return 1;
      if (y === null) return -1;
      return dir * (x - y) || a.values.symbol.localeCompare(b.values.symbol);
    });
    // Only move what is out of place (appendChild of every row would restart the flashes).
    let cursor = this.tbody.firstElementChild;
    for (const row of rows) {
      if (row.tr === cursor) cursor = cursor.nextElementSibling;
      else this.tbody.insertBefore(row.tr, cursor);
    }
    this.showSortState();
  }

  showSortState() {
    for (const button of this.headers) {
      if (button.dataset.sort === this.sort.key) button.setAttribute("aria-sort", this.sort.dir > 0 ? "ascending" : "descending");
      else button.removeAttribute("aria-sort");
    }
  }

  applyFilter() {
    const needle = this.filter.value.trim().toLowerCase();
    let shown = 0;
    for (const row of this.rows.values()) {
      const hide = Boolean(needle) && !row.values.symbol.toLowerCase().includes(needle);
      if (row.tr.hidden !== hide) row.tr.hidden = hide;
      if (!hide) shown += 1;
    }
    const total = this.rows.size;
    setText(this.count, total ? (shown === total ? `(${total})` : `(${shown} of ${total})`) : "");
    if (!total) setText(this.empty, this.emptyText);
    this.empty.hidden = total > 0;
  }

  setSelected(symbol) {
    this.selected = symbol;
    for (const row of this.rows.values()) {
      const selected = row.values.symbol === symbol ? "true" : "false";
      if (row.tr.getAttribute("aria-selected") !== selected) row.tr.setAttribute("aria-selected", selected);
    }
  }

  /** Forget every row: another exchange (its market indexes are not these). */
  clear() {
    for (const row of this.rows.values()) row.tr.remove();
    this.rows.clear();
    this.selected = "";
    this.applyFilter();
  }

  /** Show why the table could not be refreshed (keeps the last rows). */
  showError(message) {
    if (this.rows.size === 0) {
      setText(this.empty, `Market overview unavailable: ${message}`);
      this.empty.hidden = false;
    }
  }
}

function flash(cell, direction) {
  cell.classList.remove("up", "down");
  void cell.offsetWidth; // restart the animation
  cell.classList.add(direction);
}
