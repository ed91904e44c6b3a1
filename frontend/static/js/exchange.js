// Which exchange the page shows (Lighter, Paradex). The server renders the enabled
// exchanges into #app (data-exchanges) and, when there are several, a switch in the
// header. The choice is remembered in the URL (?exchange=) and in localStorage; the
// URL wins, then this browser's last choice, then the server's (?exchange= or the
// default). Pure functions first (tests/unit/test_dashboard_exchange.py runs them
// under node), then the little switch.

export const DEFAULT_EXCHANGE = "lighter";
const LABELS = { lighter: "Lighter", paradex: "Paradex" };
const KEY = "lighterTracker.exchange";

function clean(value) {
  return typeof value === "string" ? value.trim().toLowerCase() : "";
}

/** How the page names an exchange ("paradex" -> "Paradex"); text only. */
export function exchangeLabel(name) {
  return Object.prototype.hasOwnProperty.call(LABELS, name) ? LABELS[name] : String(name ?? "");
}

/** The enabled exchanges from data-exchanges ("lighter,paradex"); never empty. */
export function parseExchanges(text) {
  const names = [...new Set(String(text ?? "").split(",").map(clean).filter(Boolean))];
  return names.length ? names : [DEFAULT_EXCHANGE];
}

/** The exchange to show: the URL's, else the stored one, else the server's, each only if enabled. */
export function chooseExchange(enabled, { url = "", stored = "", server = "" } = {}) {
  for (const candidate of [url, stored, server]) {
    const name = clean(candidate);
    if (name && enabled.includes(name)) return name;
  }
  return enabled.includes(DEFAULT_EXCHANGE) ? DEFAULT_EXCHANGE : enabled[0];
}

/**
 * One exchange's stats out of a stats message or a start/stop answer: the top level
 * is the default exchange's (named by `exchange`), `exchanges` holds each one's.
 * null when that exchange is not in it (an answer about another exchange).
 */
export function statsFor(stats, exchange) {
  if (!stats || typeof stats !== "object") return null;
  const all = stats.exchanges;
  if (all && typeof all === "object" && !Array.isArray(all)) {
    const one = Object.prototype.hasOwnProperty.call(all, exchange) ? all[exchange] : null;
    return one && typeof one === "object" && !Array.isArray(one) ? one : null;
  }
  // One exchange's answer without `exchanges` (a hub from before Paradex): Lighter's
  // unless it names another.
  const top = clean(stats.exchange) || DEFAULT_EXCHANGE;
  return top === exchange ? stats : null;
}

/** The exchange a log line is about: its `exchange`; Lighter's lines carry none. */
export function entryExchange(entry) {
  return (entry && clean(entry.exchange)) || DEFAULT_EXCHANGE;
}

/**
 * Query parameters that name the exchange on a data route (/api/overview, minutes,
 * snapshots, hours): none for the default exchange, the API's own default, so
 * Lighter's URLs stay what they were.
 */
export function exchangeParams(exchange) {
  return exchange && exchange !== DEFAULT_EXCHANGE ? { exchange } : {};
}

/** The page's address after a switch: ?exchange= set, ?symbol= dropped (a symbol is one exchange's). */
export function urlForExchange(href, exchange) {
  const url = new URL(href);
  url.searchParams.set("exchange", exchange);
  url.searchParams.delete("symbol");
  return url.toString();
}

/** The localStorage key of the chart's last symbol on an exchange (Lighter's is the old key). */
export function symbolKey(base, exchange) {
  return !exchange || exchange === DEFAULT_EXCHANGE ? base : `${base}.${exchange}`;
}

export const exchangeStore = {
  get() {
    try {
      return window.localStorage.getItem(KEY) || "";
    } catch {
      return "";
    }
  },
  set(name) {
    try {
      window.localStorage.setItem(KEY, name);
    } catch {
      /* not remembered */
    }
  },
};

/**
 * The switch: buttons[data-exchange] (rendered only when several exchanges are
 * enabled). onChange(name) runs on a click on another exchange than the current.
 */
export class ExchangeSwitch {
  constructor({ buttons, current, onChange }) {
    this.buttons = buttons;
    this.current = current;
    this.onChange = onChange;
    for (const button of buttons) {
      button.addEventListener("click", () => {
        const name = button.dataset.exchange;
        if (name && name !== this.current) this.onChange(name);
      });
    }
    this.show(current);
  }

  show(name) {
    this.current = name;
    for (const button of this.buttons) button.setAttribute("aria-pressed", String(button.dataset.exchange === name));
  }
}

/**
 * The markets panel's line about which markets are tracked: the exchange's allowlist
 * (LIGHTER_MARKETS / PARADEX_MARKETS, from data-allowlists) and the symbols of it the
 * exchange does not list (the shards' `marketsNotListed`). "" when every market is tracked.
 */
export function scopeText(exchange, allowlists, notListed) {
  const list = allowlists && Array.isArray(allowlists[exchange]) ? allowlists[exchange].map(String) : [];
  if (!list.length) return "";
  const variable = `${String(exchange).toUpperCase()}_MARKETS`;
  let text = `Tracking only ${variable}: ${list.join(", ")}`;
  const missing = Array.isArray(notListed) ? notListed.map(String) : [];
  if (missing.length) text += ` · not listed by ${exchangeLabel(exchange)}, skipped: ${missing.join(", ")}`;
  return text;
}
