// The dashboard's entry point: the session (user and key), the user's stream feeding the
// board, the views (board, one order), and the periodic reads (prices, health).

import { call, LiveStream, session } from "./api.js";
import { apply, boardState, clearBoard, onChange, orderById, setUpBoard, showUsers } from "./board.js";
import { refreshHealth } from "./health.js";
import { clearErrors, setUpOrderForm, showFieldError } from "./order_form.js";
import { showOrder } from "./order_page.js";
import { draw, knownTokens, noteQuote, sample, setUpLaunch } from "./prices.js";

let stream = null;
let role = "user"; // what the key may follow (GET /api/me): "user", "operator" or "open"
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

const allOrders = document.getElementById("all-orders");

// The charts follow the board at most four times a second: redrawn on every frame of a
// burst, their SVG (a circle per fill) cost more than the rows (docs/dashboard.md).
let drawTimer = 0;
function drawSoon() {
  if (!drawTimer) drawTimer = setTimeout(() => { drawTimer = 0; draw(); }, 250);
}

function onMessage(message) {
  apply(message);
  noteQuote(message, orderById(message.orderId));
}

function connect() {
  if (stream) stream.stop();
  clearBoard();
  const everyOrder = role !== "user" && allOrders.checked;
  showUsers(everyOrder);
  if (!everyOrder && !session.userId) {
    setConnection("refused", "enter your user id to follow your orders");
    return;
  }
  const params = everyOrder ? { all: "true" } : { userId: session.userId };
  // Exposed for the end-to-end tests and for a curious person at the console.
  window.dashboard.stream = stream = new LiveStream(params, { onEvent: onMessage, onState: setConnection });
}

/** Which board the key may have: the every-order switch only for an operator (or an open API). */
async function learnRole() {
  try {
    role = (await call("GET", "/api/me")).role;
  } catch {
    role = "user"; // no key yet, or a wrong one: the stream says why
  }
  document.getElementById("all-orders-control").hidden = role === "user";
  document.body.dataset.role = role;
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
  // The board's models (its DOM holds only the rows in view): for the tests and the console.
  window.dashboard = { board: boardState };
  const form = document.getElementById("session");
  form.userId.value = session.userId;
  form.apiKey.value = session.key;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    session.save(form.userId.value.trim(), form.apiKey.value.trim());
    await learnRole();
    await refreshHealth(); // first: it says whether the charts follow the stream's quotes (chain)
    connect();
    sample();
  });
  setUpBoard();
  setUpLaunch();
  onChange(drawSoon);
  await sample();
  await setUpOrderForm(knownTokens());
  window.addEventListener("hashchange", route);
  route();
  allOrders.addEventListener("change", connect);
  await learnRole();
  await refreshHealth(); // before the stream: on chain its history's quotes are the charts' points
  connect();
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
