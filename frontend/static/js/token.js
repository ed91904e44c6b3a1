// The dashboard's two tokens, asked for once and kept in this browser.
//
// - The admin token (ADMIN_TOKEN) is sent only with control actions (POST /api/start,
//   /api/stop); kept in localStorage, so it survives a restart of the browser; a 401
//   answer forgets it. DEPLOY.md says what keeping it there means (any script running
//   on this origin can read it; so can anyone using this browser profile).
// - The read token (READ_TOKEN, when the deployment sets one) goes with every data call
//   and opens the live socket. It is kept in sessionStorage: this tab only, gone when
//   the tab closes, so a shared or borrowed machine keeps nothing; "remember on this
//   device" puts it in localStorage instead. A 401 forgets it and asks again.
//
// When storage is unavailable (private mode, disabled storage) a token lives in memory
// for the page's life.

const ADMIN_KEY = "lighterTracker.adminToken";
const READ_KEY = "lighterTracker.readToken";

function storage(kind) {
  try {
    return kind === "session" ? window.sessionStorage : window.localStorage;
  } catch {
    return null;
  }
}

function read(kind, key) {
  try {
    return storage(kind)?.getItem(key) || "";
  } catch {
    return "";
  }
}

function write(kind, key, value) {
  try {
    storage(kind)?.setItem(key, value);
    return true;
  } catch {
    return false;
  }
}

function remove(kind, key) {
  try {
    storage(kind)?.removeItem(key);
  } catch {
    /* nothing stored */
  }
}

let adminMemory = "";

export const tokenStore = {
  get() {
    return read("local", ADMIN_KEY) || adminMemory;
  },
  set(token) {
    adminMemory = token;
    write("local", ADMIN_KEY, token);
  },
  clear() {
    adminMemory = "";
    remove("local", ADMIN_KEY);
  },
};

let readMemory = "";

export const readTokenStore = {
  /** This tab's token first, then the one remembered on this device. */
  get() {
    return read("session", READ_KEY) || read("local", READ_KEY) || readMemory;
  },
  /** Where a token is kept: "device" (localStorage), "tab" (sessionStorage) or "" (none). */
  where() {
    if (read("session", READ_KEY)) return "tab";
    if (read("local", READ_KEY)) return "device";
    return readMemory ? "tab" : "";
  },
  set(token, { remember = false } = {}) {
    readMemory = token;
    remove(remember ? "session" : "local", READ_KEY);
    write(remember ? "local" : "session", READ_KEY, token);
  },
  clear() {
    readMemory = "";
    remove("session", READ_KEY);
    remove("local", READ_KEY);
  },
};

// -- the live socket's subprotocols (pure) ---------------------------------------------
// A browser cannot set an Authorization header on a WebSocket: the read token travels
// as a subprotocol, `bearer.<base64url>`, next to the protocol the hub names back
// (src/tracker/validation.py). A header, never the URL: URLs end up in logs and history.

export const LIVE_PROTOCOL = "lighter-tracker";

/** UTF-8, then base64url without padding: only characters a subprotocol may hold. */
export function base64url(text) {
  let binary = "";
  for (const byte of new TextEncoder().encode(String(text))) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The subprotocols to open /ws with: none without a token (reads are public). */
export function liveProtocols(token) {
  return token ? [LIVE_PROTOCOL, `bearer.${base64url(token)}`] : [];
}
