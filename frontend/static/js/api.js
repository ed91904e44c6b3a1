// The tracker's JSON API, as the dashboard uses it.

import { readTokenStore } from "./token.js";

export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "HttpError";
    this.status = status;
  }
}

async function parse(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const why = body && typeof body.error === "string" ? body.error : response.statusText;
    throw new HttpError(response.status, `HTTP ${response.status}: ${why}`);
  }
  return body;
}

let unauthorized = null; // what to do when a read is refused (the page asks for the read token)

/** Call `handler(error)` whenever a data call answers 401 (READ_TOKEN missing or wrong). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/** GET a JSON document, with the read token when this browser has one; throws
 * HttpError on a non-2xx answer (after telling the 401 handler). */
export async function getJSON(path, { signal } = {}) {
  const headers = { accept: "application/json" };
  const token = readTokenStore.get();
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(path, { headers, cache: "no-store", credentials: "same-origin", signal });
  try {
    return await parse(response);
  } catch (error) {
    if (error.status === 401 && unauthorized) unauthorized(error);
    throw error;
  }
}

/** POST a control action (start/stop) with the admin token. */
export async function postControl(path, token) {
  const response = await fetch(path, {
    method: "POST",
    headers: { accept: "application/json", authorization: `Bearer ${token}` },
    cache: "no-store",
    credentials: "same-origin",
  });
  return parse(response);
}

/** A path with query parameters, each value URI-encoded. */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}
