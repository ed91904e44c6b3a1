// Number, time and duration formatting for the dashboard.

const DASH = "—";
const intFormat = new Intl.NumberFormat("en-US");
const fixedFormats = new Map();

function fixed(decimals) {
  let format = fixedFormats.get(decimals);
  if (!format) {
    format = new Intl.NumberFormat("en-US", {
      minimumFractionDigits: decimals,
      maximumFractionDigits: decimals,
    });
    fixedFormats.set(decimals, format);
  }
  return format;
}

export function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

/** Decimals that show `significant` significant digits of a value this size. */
export function decimalsFor(value, significant = 6) {
  const abs = Math.abs(value);
  if (!abs) return 2;
  const magnitude = Math.floor(Math.log10(abs));
  return Math.min(10, Math.max(0, significant - 1 - magnitude));
}

/** A price with ~6 significant digits: 95,012.3  2,360.12  0.160000  0.00980000 */
export function fmtPrice(value, significant = 6) {
  if (!isNumber(value)) return DASH;
  return fixed(decimalsFor(value, significant)).format(value);
}

/** A price at a reference precision (so a spread lines up with its market's prices). */
export function fmtAtPrecisionOf(value, reference, significant = 6) {
  if (!isNumber(value)) return DASH;
  return fixed(decimalsFor(isNumber(reference) && reference ? reference : value, significant)).format(value);
}

export function fmtFixed(value, decimals) {
  if (!isNumber(value)) return DASH;
  return fixed(decimals).format(value);
}

export function fmtInt(value) {
  if (!isNumber(value)) return DASH;
  return intFormat.format(Math.round(value));
}

/** A duration: 850 ms, 4.2 s, 38 s, 3 m 07 s, 2 h 05 m, 3 d 4 h */
export function fmtDuration(ms) {
  if (!isNumber(ms)) return DASH;
  const abs = Math.max(0, ms);
  if (abs < 1000) return `${Math.round(abs)} ms`;
  const s = abs / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.floor(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${String(m % 60).padStart(2, "0")} m`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

function pad2(n) {
  return String(n).padStart(2, "0");
}

/** Local wall-clock time of a ms timestamp: 14:03:27 */
export function fmtClock(ms, withSeconds = true) {
  if (!isNumber(ms)) return DASH;
  const d = new Date(ms);
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  return withSeconds ? `${hm}:${pad2(d.getSeconds())}` : hm;
}

/** Local date and time: 2026-11-24 14:03:27 */
export function fmtDateTime(ms) {
  if (!isNumber(ms)) return DASH;
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${fmtClock(ms)}`;
}

/** "12 s ago" for a past timestamp (relative to now). */
export function fmtAgo(ms, now = Date.now()) {
  if (!isNumber(ms)) return DASH;
  return `${fmtDuration(now - ms)} ago`;
}

/** A notional, compact: 950  12.3k  4.56M  1.20B (quote currency, no symbol). */
export function fmtCompact(value) {
  if (!isNumber(value)) return DASH;
  const abs = Math.abs(value);
  for (const [scale, suffix] of [[1e9, "B"], [1e6, "M"], [1e3, "k"]]) {
    if (abs >= scale) return `${fixed(abs >= 100 * scale ? 0 : abs >= 10 * scale ? 1 : 2).format(value / scale)}${suffix}`;
  }
  return fixed(abs >= 100 ? 0 : 2).format(value);
}
