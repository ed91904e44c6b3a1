// The tracker's JSON API, as the dashboard uses it.

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

/** GET a JSON document; throws HttpError on a non-2xx answer. */
export async function getJSON(path, { signal } = {}) {
  const response = await fetch(path, {
    headers: { accept: "application/json" },
    cache: "no-store",
    credentials: "same-origin",
    signal,
  });
  return parse(response);
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
