// The activity log: what the tracker does, pushed over the live socket.
// Entries are {ts, level, component, shard, message}; every field is shown as text.

import { el } from "./dom.js";
import { fmtClock } from "./format.js";

const LEVELS = new Set(["debug", "info", "warn", "error"]);

export function entryNode(entry) {
  const level = LEVELS.has(entry.level) ? entry.level : "info";
  const shard = Number.isInteger(entry.shard) && entry.shard > 0 ? `:${entry.shard}` : "";
  const component = `[${String(entry.component ?? "?")}${shard}]`;
  return el(
    "li",
    { dataset: { level } },
    el("span", { className: "ts", text: fmtClock(entry.ts) }),
    el("span", { className: `lvl lvl-${level}`, text: level }),
    el("span", { className: "comp", text: component }),
    el("span", { className: "msg", text: String(entry.message ?? "") }),
  );
}

export class ActivityView {
  constructor({ list, follow, clear, max = 500 }) {
    this.list = list;
    this.follow = follow;
    this.max = max;
    clear.addEventListener("click", () => this.list.replaceChildren());
    follow.addEventListener("change", () => this.scroll());
  }

  /** Replace everything (the server's replay on each (re)connect). */
  replace(entries) {
    const nodes = entries.filter((e) => e && typeof e === "object").slice(-this.max).map(entryNode);
    this.list.replaceChildren(...nodes);
    this.scroll();
  }

  add(entry) {
    this.list.append(entryNode(entry));
    while (this.list.childElementCount > this.max) this.list.firstElementChild.remove();
    this.scroll();
  }

  scroll() {
    if (this.follow.checked) this.list.scrollTop = this.list.scrollHeight;
  }
}
