// The activity log: what the tracker does, pushed over the live socket.
// Entries are {ts, level, component, shard, message, exchange?}; every field is shown
// as text. Every line is shown whatever exchange the page is on; with several
// exchanges enabled each line names its exchange (Lighter's lines carry none) and a
// picker (#log-exchange) may show one exchange's lines only.

import { el } from "./dom.js";
import { entryExchange, exchangeLabel } from "./exchange.js";
import { fmtClock } from "./format.js";

const LEVELS = new Set(["debug", "info", "warn", "error"]);

export function entryNode(entry) {
  const level = LEVELS.has(entry.level) ? entry.level : "info";
  const exchange = entryExchange(entry);
  const shard = Number.isInteger(entry.shard) && entry.shard > 0 ? `:${entry.shard}` : "";
  const component = `[${String(entry.component ?? "?")}${shard}]`;
  return el(
    "li",
    { dataset: { level, exchange } },
    el("span", { className: "ts", text: fmtClock(entry.ts) }),
    el("span", { className: `lvl lvl-${level}`, text: level }),
    el("span", { className: "exch", text: exchangeLabel(exchange), title: exchange }),
    el("span", { className: "comp", text: component }),
    el("span", { className: "msg", text: String(entry.message ?? "") }),
  );
}

export class ActivityView {
  /**
   * @param {{list, follow, clear, picker?: HTMLSelectElement|null, exchanges?: string[], max?: number}} options
   *   exchanges: the enabled ones; with more than one, each line names its exchange.
   */
  constructor({ list, follow, clear, picker = null, exchanges = ["lighter"], max = 500 }) {
    this.list = list;
    this.follow = follow;
    this.max = max;
    this.exchanges = exchanges;
    this.only = ""; // show every exchange's lines
    this.list.classList.toggle("by-exchange", exchanges.length > 1);
    clear.addEventListener("click", () => this.list.replaceChildren());
    follow.addEventListener("change", () => this.scroll());
    if (picker) {
      picker.addEventListener("change", () => {
        this.only = picker.value;
        for (const node of this.list.children) this.applyFilter(node);
        this.scroll();
      });
    }
  }

  node(entry) {
    const node = entryNode(entry);
    // A line of an exchange the page does not show (a disabled exchange's shard
    // stopping itself): name the exchange on every line from now on.
    if (!this.exchanges.includes(node.dataset.exchange)) this.list.classList.add("by-exchange");
    this.applyFilter(node);
    return node;
  }

  applyFilter(node) {
    const hide = Boolean(this.only) && node.dataset.exchange !== this.only;
    if (node.hidden !== hide) node.hidden = hide;
  }

  /** Replace everything (the server's replay on each (re)connect). */
  replace(entries) {
    const nodes = entries.filter((e) => e && typeof e === "object").slice(-this.max).map((e) => this.node(e));
    this.list.replaceChildren(...nodes);
    this.scroll();
  }

  add(entry) {
    this.list.append(this.node(entry));
    while (this.list.childElementCount > this.max) this.list.firstElementChild.remove();
    this.scroll();
  }

  scroll() {
    if (this.follow.checked) this.list.scrollTop = this.list.scrollHeight;
  }
}
