// The admin token, asked for once and kept in localStorage. It is sent only with
// control actions (POST /api/start, /api/stop); a 401 answer forgets it.

const KEY = "lighterTracker.adminToken";
let memory = ""; // when localStorage is unavailable (private mode, disabled storage)

export const tokenStore = {
  get() {
    try {
      return window.localStorage.getItem(KEY) || "";
    } catch {
      return memory;
    }
  },
  set(token) {
    memory = token;
    try {
      window.localStorage.setItem(KEY, token);
    } catch {
      /* memory only */
    }
  },
  clear() {
    memory = "";
    try {
      window.localStorage.removeItem(KEY);
    } catch {
      /* nothing stored */
    }
  },
};
