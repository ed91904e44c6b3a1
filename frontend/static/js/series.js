// A chart's rows, kept between refreshes (pure: tests/unit/test_dashboard_reads.py runs
// it under node). A refresh asks only for the rows from the newest one it holds on
// (that one again: a minute or an hour row still gains windows until it is complete),
// instead of every row each time: an open dashboard then reads a few D1 rows a
// refresh, not a thousand (D1 bills every row a query reads; the Free plan allows
// 5 million a day).

/**
 * Where the next fetch starts: the newest point's time, or null (fetch everything)
 * when nothing is held or what is held is another chart's.
 */
export function fetchFrom(held, key) {
  if (!held || held.key !== key || !held.points.length) return null;
  return held.points[held.points.length - 1].t;
}

/**
 * The held points with `fresh` (ascending, every point from `since` on) merged in:
 * points from `since` on are replaced by the fresh ones; the result keeps the newest
 * `keep` points and, with `after`, only those at or after it. `full`: the fetch was
 * not incremental (or came back full, rows may be missing between): `fresh` alone.
 */
export function mergePoints(held, fresh, { since = null, full = false, keep = Infinity, after = -Infinity } = {}) {
  let out;
  if (full || since === null) out = [...fresh];
  else out = [...held.filter((p) => p.t < since), ...fresh.filter((p) => p.t >= since)];
  out = out.filter((p) => p.t >= after);
  return out.length > keep ? out.slice(out.length - keep) : out;
}
