// Talking to the engine's API: JSON over fetch, and the user's WebSocket stream with
// reconnection. The key lives in sessionStorage only (gone when the tab closes).

const KEY_ITEM = "orderengine.apiKey";
const USER_ITEM = "orderengine.userId";

export const session = {
  get key() { return sessionStorage.getItem(KEY_ITEM) || ""; },
  get userId() { return sessionStorage.getItem(USER_ITEM) || ""; },
  save(userId, key) {
    sessionStorage.setItem(USER_ITEM, userId);
    if (key) sessionStorage.setItem(KEY_ITEM, key); else sessionStorage.removeItem(KEY_ITEM);
  },
};

/** An answer that is not 2xx: the API's error body (`{"error": {code, message, field?}}`). */
export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
    this.field = error.field;
    this.orderStatus = error.status;
  }
}

export async function call(method, path, { body, headers = {} } = {}) {
  const sent = { ...headers };
  if (session.key) sent.Authorization = `Bearer ${session.key}`;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    throw new ApiError(response.status, (data && data.error) || { message: text || response.statusText });
  }
  return data;
}

// A browser cannot send Authorization on a WebSocket handshake: the key goes in a
// subprotocol (api/auth.py), base64url without padding so it is a valid header token.
function subprotocols() {
  if (!session.key) return undefined;
  const bytes = new TextEncoder().encode(session.key);
  const b64 = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return ["orderengine", `bearer.${b64}`];
}

/**
 * Follows `/ws?userId=` (or, `{ all: "true" }`, every order) and reconnects by itself, resuming after the last position it
 * handled, so nothing is missed or repeated across an API restart. `onEvent` gets each
 * message; `onState` gets "connecting" | "live" | "reconnecting" | "refused" and a reason.
 */
export class LiveStream {
  constructor(params, { onEvent, onState }) {
    this.params = params;
    this.onEvent = onEvent;
    this.onState = onState;
    this.position = 0;
    this.retryMs = 250;
    this.stopped = false;
    this.reconnects = 0;
    this.connect();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = new URLSearchParams({ ...this.params, fromPosition: String(this.position) });
    this.onState(this.reconnects ? "reconnecting" : "connecting");
    const socket = new WebSocket(`${scheme}://${location.host}/ws?${query}`, subprotocols());
    this.socket = socket;
    socket.onopen = () => { this.retryMs = 250; this.onState("live"); };
    socket.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (typeof event.position === "number") {
        if (event.position <= this.position) return; // already handled before a reconnect
        this.position = event.position;
      }
      this.onEvent(event);
    };
    socket.onclose = (close) => {
      if (this.stopped) return;
      if (close.code === 1008) { // refused: a bad key or user; retrying will not mend it
        this.onState("refused", close.reason);
        return;
      }
      this.reconnects += 1;
      this.onState("reconnecting", close.reason || `closed (${close.code})`);
      setTimeout(() => { if (!this.stopped) this.connect(); }, this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 4000);
    };
  }

  stop() {
    this.stopped = true;
    if (this.socket) this.socket.close(1000);
  }
}
