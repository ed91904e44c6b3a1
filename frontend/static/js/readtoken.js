// The read token form: shown when the deployment's data is private (READ_TOKEN) and
// this browser has no token yet, or when a data call was refused (401). No prompt():
// an inline form, like the admin token's. Where the token is kept: token.js.

import { byId, setText } from "./dom.js";
import { readTokenStore } from "./token.js";

export class ReadTokenForm {
  /**
   * @param {{required: boolean, onToken: () => void}} options
   *   required: the deployment said READ_TOKEN is set (data-read-protected);
   *   onToken: runs after a token is entered (the page loads everything again).
   */
  constructor({ required, onToken }) {
    this.required = required;
    this.onToken = onToken;
    this.panel = byId("read-panel");
    this.form = byId("read-form");
    this.input = byId("read-input");
    this.remember = byId("read-remember");
    this.note = byId("read-note");
    this.state = byId("read-state");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    byId("read-forget").addEventListener("click", () => {
      readTokenStore.clear();
      this.ask("Read token forgotten: enter it to see this deployment's data.");
    });
    this.render();
  }

  /** Whether the page may load data now (reads are public, or a token is at hand). */
  get ready() {
    return !this.required || Boolean(readTokenStore.get());
  }

  /** Show the form; `why` says what happened (first visit, or a refused token). */
  ask(why) {
    this.required = true;
    setText(this.note, why);
    this.note.hidden = !why;
    this.panel.hidden = false;
    this.render();
    this.input.focus();
  }

  /** A data call answered 401: the stored token (if any) is wrong or gone. */
  refused() {
    const had = Boolean(readTokenStore.get());
    readTokenStore.clear();
    if (this.panel.hidden) {
      this.ask(had ? "The read token was refused (401). Enter it again." : "This deployment's data is private: enter its read token.");
    }
  }

  save() {
    const token = this.input.value.trim();
    if (!token) {
      this.input.focus();
      return;
    }
    readTokenStore.set(token, { remember: this.remember.checked });
    this.input.value = "";
    this.panel.hidden = true;
    this.render();
    this.onToken();
  }

  render() {
    const where = readTokenStore.where();
    this.state.hidden = !where || !this.panel.hidden;
    setText(byId("read-where"), where === "device" ? "on this device" : "in this tab");
  }
}
