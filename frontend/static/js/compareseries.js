// GET /api/compare's answer as chart points, and what each view of the compare chart
// draws (pure: tests/unit/test_dashboard_compare.py runs it under node).
//
// The answer holds, per exchange, one list per column aligned on `timestamps` (newest
// first, null where that exchange has no row), and `basis_bps` (null where either mid
// is missing, or null altogether with one exchange). A point is one timestamp:
// {t, basis, lighter: {...} | null, paradex: {...} | null}, each venue's values or
// null when it has no row there.

export const VENUES = ["lighter", "paradex"];
export const BANDS = ["10", "50", "100"];
export const SIZES = ["1k", "10k", "100k", "1m"];

function num(value) {
  const n = typeof value === "string" ? Number(value) : value;
  return typeof n === "number" && Number.isFinite(n) ? n : null;
}

/** The mean of two sides, or null unless both are numbers (a size one side cannot fill
 * is not half a cost). */
function meanOfSides(a, b) {
  return a === null || b === null ? null : (a + b) / 2;
}

/** One venue's row at index i of the answer: the values a view draws, or null. */
function venueAt(columns, i) {
  if (!columns || typeof columns !== "object") return null;
  const at = (key) => (Array.isArray(columns[key]) ? num(columns[key][i]) : null);
  if (at("tick_count") === null && at("twap_mid") === null && at("avg_spread_bps") === null) return null;
  const out = { spread: at("avg_spread_bps"), mid: at("twap_mid") };
  for (const band of BANDS) {
    const bid = at(`bid_depth_${band}`);
    const ask = at(`ask_depth_${band}`);
    out[`depth_${band}`] = bid === null || ask === null ? null : bid + ask;
  }
  for (const size of SIZES) out[`slip_${size}`] = meanOfSides(at(`slip_buy_${size}`), at(`slip_sell_${size}`));
  return out;
}

/** The answer's points, ascending by time. */
export function comparePoints(body) {
  const stamps = body && Array.isArray(body.timestamps) ? body.timestamps : [];
  const series = (body && body.series) || {};
  const basis = body && Array.isArray(body.basis_bps) ? body.basis_bps : [];
  const out = [];
  stamps.forEach((stamp, i) => {
    const t = num(stamp);
    if (t === null) return;
    const point = { t, basis: num(basis[i]) };
    for (const venue of VENUES) point[venue] = venueAt(series[venue], i);
    out.push(point);
  });
  out.sort((a, b) => a.t - b.t);
  return out;
}

// Per view: the lines of each venue (a key of venueAt's values, a label, a dash), the
// left axis's title and how its values read. The basis is drawn in every view, on the
// right axis.
export const COMPARE_VIEWS = {
  spread: { lines: [{ key: "spread", label: "spread", dash: [] }], axis: "spread (bps)", unit: "bps" },
  depth: {
    lines: BANDS.map((band, i) => ({ key: `depth_${band}`, label: `depth ±${band} bps`, dash: [[], [6, 3], [2, 3]][i] })),
    axis: "bid + ask depth (quote notional)",
    unit: "",
  },
  slippage: {
    lines: SIZES.map((size, i) => ({
      key: `slip_${size}`,
      label: `slippage ${size.toUpperCase()}`,
      dash: [[], [6, 3], [2, 3], [8, 3, 2, 3]][i],
    })),
    axis: "slippage, mean of buy and sell (bps of the mid)",
    unit: "bps",
  },
};

/** The datasets a view draws from the points: each venue's lines (in VENUES order, the
 * venues the answer has), then the basis (with both venues). Data as {x, y}, nulls left out. */
export function compareDatasets(points, view, venues = VENUES) {
  const { lines } = COMPARE_VIEWS[view];
  const out = [];
  for (const venue of venues) {
    for (const { key, label, dash } of lines) {
      const data = [];
      for (const p of points) {
        const value = p[venue] ? p[venue][key] : null;
        if (value !== null && value !== undefined) data.push({ x: p.t, y: value });
      }
      out.push({ venue, key, label: `${venue === "paradex" ? "Paradex" : "Lighter"} ${label}`, dash, data });
    }
  }
  if (venues.length < 2) return out; // one venue: no basis
  const basis = points.filter((p) => p.basis !== null).map((p) => ({ x: p.t, y: p.basis }));
  out.push({ venue: "basis", key: "basis", label: "basis (bps)", dash: [4, 4], data: basis });
  return out;
}
