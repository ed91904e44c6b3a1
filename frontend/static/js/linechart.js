// What the dashboard's three line charts (price, depth, Lighter beside Paradex) share:
// the theme's colours, a line's look, and chart.js options for a time x axis. Each chart
// says only what is its own: its lines, its y axes, its tick and tooltip texts.
// chart.js comes from /static/vendor (window.Chart).

import { setText } from "./dom.js";
import { fmtClock, fmtDateTime } from "./format.js";

function cssVar(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

/** The theme's colours (CSS variables, with the dark theme's values when unset). */
export function theme() {
  return {
    text: cssVar("--text", "#e6edf3"),
    muted: cssVar("--muted", "#8b98a8"),
    border: cssVar("--border", "#262f3b"),
    accent: cssVar("--accent", "#5aa9ff"),
    spread: cssVar("--spread", "#e3b341"),
    up: cssVar("--up", "#3fb950"),
    down: cssVar("--down", "#f85149"),
    venueB: cssVar("--venue-b", "#d2a8ff"),
  };
}

/** window.Chart, or null with the reason shown in `empty` (the vendor file is missing). */
export function chartLibrary(empty) {
  if (window.Chart) return window.Chart;
  setText(empty, "Chart library missing: /static/vendor/chart.umd.min.js (run scripts/setup).");
  empty.hidden = false;
  return null;
}

/** One line: dots while it is short (a single point has no line to show it). */
export function line({ label, color, dash, width = 1.6, yAxisID, dot = 2 }) {
  return {
    label,
    data: [],
    ...(yAxisID ? { yAxisID } : {}),
    borderColor: color,
    backgroundColor: color,
    borderDash: dash,
    borderWidth: width,
    pointRadius: (context) => (context.dataset.data.length < 40 ? dot : 0),
    pointHoverRadius: 3,
    tension: 0,
  };
}

/** The x tick of a range chart: dates once a step is a day or more, else the clock. */
export function rangeTick(chart) {
  return (value) => (chart.longRange ? fmtDateTime(value).slice(5, 10) : fmtClock(value, false));
}

/** The left y axis of a chart of one quantity, from zero, titled, its ticks formatted. */
export function valueAxis(title, format, colors) {
  return {
    beginAtZero: true,
    title: { display: true, text: title },
    ticks: { callback: (value) => format(value) },
    grid: { color: colors.border },
  };
}

/** A line chart over time (x: ms since the epoch), drawn without animation from points
 * given as {x, y} (parsing off), with `scales` beside the x axis. */
export function timeChart(Chart, canvas, { datasets, colors, xTick, scales, tooltipLabel, boxWidth = 14 }) {
  return new Chart(canvas, {
    type: "line",
    data: { datasets },
    options: {
      animation: false,
      parsing: false,
      normalized: true,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      scales: {
        x: {
          type: "linear",
          ticks: { callback: xTick, maxTicksLimit: 10, maxRotation: 0 },
          grid: { color: colors.border },
        },
        ...scales,
      },
      plugins: {
        legend: { labels: { color: colors.text, boxWidth, boxHeight: 2 } },
        tooltip: {
          callbacks: {
            title: (items) => (items.length ? fmtDateTime(items[0].parsed.x) : ""),
            label: tooltipLabel,
          },
        },
      },
    },
  });
}
