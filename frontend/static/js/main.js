// The dashboard: wires the live socket, the API polls and the views together.
// Settings come from the data- attributes of #app (rendered by Jinja2, escaped).

import { ActivityView } from "./activity.js";
import { getJSON } from "./api.js";
import { Control, showLinkState } from "./control.js";
import { byId } from "./dom.js";
import { LiveSocket, socketUrl } from "./live.js";
import { DepthChart } from "./depthchart.js";
import { MarketTable } from "./markets.js";
import { PriceChart } from "./pricechart.js";
import { StatsPanel } from "./status.js";

const app = byId("app");
const config = {
  wsPath: app.dataset.wsPath || "/ws",
  windowSeconds: Number(app.dataset.windowSeconds) || 15,
  overviewPollMs: Number(app.dataset.overviewPollMs) || 5000,
  controlEnabled: app.dataset.controlEnabled === "true",
  initialSymbol: app.dataset.initialSymbol || "",
};

const stats = new StatsPanel({ windowSeconds: config.windowSeconds });
const activity = new ActivityView({ list: byId("log"), follow: byId("log-follow"), clear: byId("log-clear") });

const depth = new DepthChart({
  canvas: byId("depth-chart"),
  source: byId("depth-source"),
  empty: byId("depth-empty"),
  buttons: [...document.querySelectorAll(".depth-panel button[data-range]")],
  windowSeconds: config.windowSeconds,
});

const chart = new PriceChart({
  canvas: byId("price-chart"),
  select: byId("symbol-select"),
  source: byId("chart-source"),
  empty: byId("chart-empty"),
  windowSeconds: config.windowSeconds,
  initialSymbol: config.initialSymbol,
  onSymbol: (symbol, chosen) => {
    table.setSelected(symbol);
    depth.setSymbol(symbol);
    if (!chosen) return;
    const url = new URL(window.location.href);
    url.searchParams.set("symbol", symbol);
    window.history.replaceState(null, "", url);
  },
});

const table = new MarketTable({
  tbody: byId("market-rows"),
  filter: byId("market-filter"),
  count: byId("markets-count"),
  empty: byId("markets-empty"),
  headers: [...document.querySelectorAll("#markets thead button[data-sort]")],
  windowSeconds: config.windowSeconds,
  onSelect: (symbol) => chart.choose(symbol),
});

// ---- tracker stats ---------------------------------------------------------
// Pushed by the live socket (shard 0's object; with several shards it sums
// their stats and relays their log lines).

let lastFlushed = null;
let lastTracking = null;

function showStats(s) {
  stats.update(s);
  control.setTracking(s.isTracking);
  const flushed = s.windowsFlushed;
  if (lastFlushed !== null && flushed !== lastFlushed) {
    // A window just landed in D1: show it now rather than at the next poll.
    refreshOverview();
    chart.refreshSoon(500);
    depth.refreshSoon(700);
  }
  if (lastTracking === false && s.isTracking) chart.refreshSoon(500);
  lastFlushed = flushed;
  lastTracking = Boolean(s.isTracking);
}

const control = new Control({
  enabled: config.controlEnabled,
  onResult: (body) => {
    if (body && typeof body === "object" && "isTracking" in body) showStats(body);
    live.send({ type: "stats" });
  },
});

const live = new LiveSocket(socketUrl(config.wsPath), {
  onHello: (entries, s) => {
    activity.replace(entries);
    if (s) showStats(s);
  },
  onLog: (entry) => activity.add(entry),
  onStats: showStats,
  onState: (state, detail) => showLinkState(state, detail),
});

// ---- market overview ---------------------------------------------------------

let overviewBusy = false;

async function refreshOverview() {
  if (overviewBusy) return;
  overviewBusy = true;
  try {
    const overview = await getJSON("/api/overview");
    table.update(overview);
    chart.setSymbols(table.symbols(), table.busiest());
  } catch (error) {
    table.showError(error.message);
  } finally {
    overviewBusy = false;
  }
}

setInterval(() => {
  if (!document.hidden) refreshOverview();
}, config.overviewPollMs);

// ---- clocks ------------------------------------------------------------------

setInterval(() => {
  const now = Date.now();
  stats.tick(now);
  table.tick(now);
}, 1000);

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) {
    refreshOverview();
    live.nudge();
  }
});

live.start();
refreshOverview();
if (config.initialSymbol) chart.choose(config.initialSymbol, { remember: false });
