// The dashboard's entry point: the session (user and key), the user's stream feeding the
// board, the views (board, one order), and the periodic reads (prices, health).

import { call, session, UserStream } from "./api.js";
import { apply, clearBoard, onChange, setUpBoard } from "./board.js";
import { refreshHealth } from "./health.js";
import { clearErrors, setUpOrderForm, showFieldError } from "./order_form.js";
import { showOrder } from "./order_page.js";
import { draw, knownTokens, sample, setUpLaunch } from "./prices.js";

let stream = null;
const connection = document.getElementById("connection");

const STATE_TEXT = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  refused: "Refused",
};

function setConnection(state, reason) {
  connection.dataset.state = state;
  connection.textContent = STATE_TEXT[state] + (reason && state !== "live" ? `: ${reason}` : "");
  if (state === "refused") {
    const field = /key/i.test(reason || "") ? "apiKey" : "userId";
    showFieldError(field, reason, connection);
  }
}

function connect() {
  if (stream) stream.stop();
  clearBoard();
  if (!session.userId) {
    setConnection("refused", "enter your user id to follow your orders");
    return;
  }
  // Exposed for the end-to-end tests and for a curious person at the console.
  window.dashboard.stream = stream = new UserStream(session.userId, { onEvent: apply, onState: setConnection });
}

function route() {
  const match = location.hash.match(/^#\/orders\/([0-9a-fA-F-]{36})$/);
  document.getElementById("board-view").hidden = Boolean(match);
  document.getElementById("order-view").hidden = !match;
  if (match) {
    showOrder(match[1]);
    document.getElementById("order-title").focus?.();
  }
}

async function start() {
  window.dashboard = {};
  const form = document.getElementById("session");
  form.userId.value = session.userId;
  form.apiKey.value = session.key;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form);
    session.save(form.userId.value.trim(), form.apiKey.value.trim());
    connect();
    sample();
    refreshHealth();
  });
  setUpBoard();
  setUpLaunch();
  onChange(draw);
  await sample();
  await setUpOrderForm(knownTokens());
  window.addEventListener("hashchange", route);
  route();
  connect();
  refreshHealth();
  setInterval(sample, 1000);
  setInterval(refreshHealth, 2000);
  try {
    await call("GET", "/api/engine/health");
  } catch (error) {
    if (error.status === 401) showFieldError("apiKey", "This engine needs an API key.", connection);
  }
  document.body.dataset.ready = "true";
}

start();
