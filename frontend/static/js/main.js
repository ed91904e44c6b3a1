// The dashboard: wires the live socket, the API polls and the views together.
// Settings come from the data- attributes of #app (rendered by Jinja2, escaped).
// The market table, the charts, the stats and start/stop are those of one exchange,
// chosen with the switch in the header when several are enabled; the activity log
// shows every exchange's lines.

import { ActivityView } from "./activity.js";
import { getJSON, onUnauthorized, withQuery } from "./api.js";
import { Control, showLinkState } from "./control.js";
import { byId, setText } from "./dom.js";
import {
  ExchangeSwitch,
  chooseExchange,
  exchangeLabel,
  exchangeParams,
  exchangeStore,
  parseExchanges,
  scopeText,
  statsFor,
  urlForExchange,
} from "./exchange.js";
import { LiveSocket, liveText, socketUrl } from "./live.js";
import { CompareChart } from "./comparechart.js";
import { DepthChart } from "./depthchart.js";
import { MarketTable } from "./markets.js";
import { PriceChart } from "./pricechart.js";
import { ReadTokenForm } from "./readtoken.js";
import { StatsPanel } from "./status.js";
import { liveProtocols, readTokenStore } from "./token.js";

const app = byId("app");
const config = {
  wsPath: app.dataset.wsPath || "/ws",
  windowSeconds: Number(app.dataset.windowSeconds) || 15,
  overviewPollMs: Number(app.dataset.overviewPollMs) || 30000,
  livePushMs: Number(app.dataset.livePushMs) || 10000,
  controlEnabled: app.dataset.controlEnabled === "true",
  readProtected: app.dataset.readProtected === "true",
  initialSymbol: app.dataset.initialSymbol || "",
  exchanges: parseExchanges(app.dataset.exchanges),
  allowlists: parseJSON(app.dataset.allowlists, {}),
};

function parseJSON(text, fallback) {
  try {
    return JSON.parse(text || "");
  } catch {
    return fallback;
  }
}

/** Which markets this exchange tracks, when an allowlist narrows them (markets panel). */
function showScope(notListed) {
  const node = byId("markets-scope");
  const text = scopeText(exchange, config.allowlists, notListed);
  setText(node, text);
  node.hidden = !text;
}

// ---- the exchange ------------------------------------------------------------
// The URL's ?exchange=, else this browser's last choice, else the server's. A link
// with a ?symbol= but no ?exchange= is Lighter's (it predates the switch).

const pageParams = new URL(window.location.href).searchParams;
let exchange = chooseExchange(config.exchanges, {
  url: pageParams.get("exchange") || "",
  stored: pageParams.has("symbol") ? "" : exchangeStore.get(),
  server: app.dataset.exchange || "",
});

const switchButtons = [...document.querySelectorAll("#exchange-switch button[data-exchange]")];
const exchangeSwitch = new ExchangeSwitch({ buttons: switchButtons, current: exchange, onChange: (name) => switchTo(name) });

/** The header and the feed tile name the exchange shown. */
function showExchange(name) {
  exchangeSwitch.show(name);
  setText(byId("stat-connected-label"), `${exchangeLabel(name)} feed`);
  const button = switchButtons.find((b) => b.dataset.exchange === name);
  if (button && button.dataset.feedUrl) setText(byId("feed-url"), button.dataset.feedUrl);
}

const stats = new StatsPanel({ windowSeconds: config.windowSeconds });
const activity = new ActivityView({
  list: byId("log"),
  follow: byId("log-follow"),
  clear: byId("log-clear"),
  picker: document.getElementById("log-exchange"),
  exchanges: config.exchanges,
});

const depth = new DepthChart({
  canvas: byId("depth-chart"),
  source: byId("depth-source"),
  empty: byId("depth-empty"),
  buttons: [...document.querySelectorAll(".depth-panel button[data-range]")],
  viewButtons: [...document.querySelectorAll(".depth-panel button[data-view]")],
  windowSeconds: config.windowSeconds,
  exchange,
});

// Lighter beside Paradex (rendered only with both exchanges enabled): it follows no
// exchange switch, it shows both.
const comparePanel = document.getElementById("compare-panel");
const compare = comparePanel
  ? new CompareChart({
      select: byId("compare-asset"),
      canvas: byId("compare-chart"),
      source: byId("compare-source"),
      empty: byId("compare-empty"),
      note: byId("compare-note"),
      buttons: [...comparePanel.querySelectorAll("button[data-range]")],
      viewButtons: [...comparePanel.querySelectorAll("button[data-view]")],
      windowSeconds: config.windowSeconds,
    })
  : null;

/** The compare chart's assets (again while none is listed yet: markets come with the first start). */
function refreshCompare() {
  if (!compare) return;
  if (!compare.loaded || !compare.asset) compare.loadAssets();
  else compare.refreshSoon(900);
}

const chart = new PriceChart({
  canvas: byId("price-chart"),
  select: byId("symbol-select"),
  source: byId("chart-source"),
  empty: byId("chart-empty"),
  windowSeconds: config.windowSeconds,
  initialSymbol: config.initialSymbol,
  exchange,
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
// Pushed by the live socket (the DashboardHub object: every shard's stats summed,
// per exchange, and their log lines relayed).

let lastFlushed = null;
let lastTracking = null;
let lastPush = null; // the last stats message: every enabled exchange's

/** A stats message (or a start/stop answer): the shown exchange's part of it, if any. */
function showStatsOf(message) {
  const s = statsFor(message, exchange);
  if (s) showStats(s);
}

function showStats(s) {
  stats.update(s);
  showScope(s.marketsNotListed);
  control.setTracking(s.isTracking);
  const flushed = s.windowsFlushed;
  if (lastFlushed !== null && flushed !== lastFlushed) {
    // A window just landed in D1: show it now rather than at the next poll.
    refreshOverview();
    chart.refreshSoon(500);
    depth.refreshSoon(700);
    refreshCompare();
  }
  if (lastTracking === false && s.isTracking) chart.refreshSoon(500);
  lastFlushed = flushed;
  lastTracking = Boolean(s.isTracking);
}

const control = new Control({
  enabled: config.controlEnabled,
  exchange,
  onResult: (body, about) => {
    const s = about === exchange ? statsFor(body, about) : null;
    if (s && "isTracking" in s) showStats(s);
    // Not `live.send({type: "stats"})`: the hub answers that from its last push, which
    // can predate this action and would flip the button back for a second. The next
    // push (within a second) is fetched after it.
  },
});

function onPush(message) {
  lastPush = message;
  showStatsOf(message);
}

const live = new LiveSocket(socketUrl(config.wsPath), {
  onHello: (entries, s) => {
    activity.replace(entries);
    if (s) onPush(s);
  },
  onLog: (entry) => activity.add(entry),
  onStats: onPush,
  onState: (state, detail) => showLinkState(state, detail),
}, { pushMs: config.livePushMs, protocols: () => liveProtocols(readTokenStore.get()) });

// ---- private reads (READ_TOKEN) ------------------------------------------------
// Asked for once (readtoken.js); every data call sends it (api.js) and the live socket
// carries it as a subprotocol (token.js). A 401 forgets it and asks again.

const readToken = new ReadTokenForm({
  required: config.readProtected,
  onToken: () => {
    refreshOverview();
    chart.refreshSoon(100);
    depth.refreshSoon(200);
    if (compare) compare.loadAssets();
    live.restart();
  },
});

onUnauthorized(() => {
  live.stop(); // its handshake would be refused too, over and over
  readToken.refused();
});

// ---- market overview ---------------------------------------------------------

let overviewBusy = null; // the exchange whose overview is being fetched
let overviewAt = 0; // when the last one was asked for

async function refreshOverview() {
  const asked = exchange;
  if (overviewBusy === asked) return;
  overviewBusy = asked;
  overviewAt = Date.now();
  try {
    // Lighter's is plain /api/overview (the API's default), another's ?exchange=<name>.
    const overview = await getJSON(withQuery("/api/overview", exchangeParams(asked)));
    if (asked !== exchange) return; // switched meanwhile
    table.update(overview);
    chart.setSymbols(table.symbols(), table.busiest());
  } catch (error) {
    if (asked === exchange) table.showError(error.message);
  } finally {
    if (overviewBusy === asked) overviewBusy = null;
  }
}

// ---- switching exchange --------------------------------------------------------

function switchTo(name) {
  if (name === exchange || !config.exchanges.includes(name)) return;
  exchange = name;
  exchangeStore.set(name);
  window.history.replaceState(null, "", urlForExchange(window.location.href, name));
  showExchange(name);
  stats.reset();
  showScope([]);
  lastFlushed = null;
  lastTracking = null;
  control.setExchange(name);
  table.clear();
  chart.setExchange(name);
  depth.setExchange(name);
  if (lastPush) showStatsOf(lastPush); // the last push has every exchange's stats
  refreshOverview();
}

// The table follows the pushes (a window landing refreshes it at once); this poll only
// fills in when none came for a while, so it never doubles a refresh that just ran.
setInterval(() => {
  if (!document.hidden && readToken.ready && Date.now() - overviewAt >= config.overviewPollMs - 1000) refreshOverview();
}, 1000);

// ---- clocks ------------------------------------------------------------------

setInterval(() => {
  const now = Date.now();
  stats.tick(now);
  table.tick(now);
  if (live.state === "open") showLinkState("open", { text: liveText(live.lastPushAt, live.pushMs, now) });
}, 1000);

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && readToken.ready) {
    refreshOverview();
    live.nudge();
  }
});

showExchange(exchange);
showScope([]);
if (readToken.ready) {
  live.start();
  refreshOverview();
  if (compare) compare.loadAssets();
} else {
  readToken.ask("");
}
if (config.initialSymbol) chart.choose(config.initialSymbol, { remember: false });
