// The live board: one row per order, folded from the user's stream and updated in place.
// Messages are applied at once to the order's model; the DOM is written once per animation
// frame for the rows that changed, so a burst of events over a thousand rows stays smooth.

import { call } from "./api.js";

export const CANCELLABLE = new Set(["pending", "waiting", "routing", "building"]);
const STATUSES = ["pending", "waiting", "routing", "building", "submitted", "confirmed", "failed",
  "cancelled", "expired"];

const orders = new Map(); // orderId -> model
const rows = new Map(); // orderId -> <tr>
const dirty = new Set();
let frame = 0;
let listeners = [];

const tbody = () => document.querySelector("#board tbody");
const short = (id) => id.slice(0, 8);

function num(text, digits = 6) {
  if (text === null || text === undefined || text === "") return "";
  const n = Number(text);
  if (!Number.isFinite(n)) return String(text);
  return n.toLocaleString("en-US", { maximumSignificantDigits: digits });
}

/** Everything the board knows of each order (what the price charts read too). */
export function allOrders() { return orders.values(); }

export function onChange(listener) { listeners.push(listener); }

/** Fold one stream message into its order (versions already seen are dropped). */
export function apply(message) {
  const { orderId, version, status, details = {}, type } = message;
  let order = orders.get(orderId);
  if (!order) {
    order = { orderId, version: 0, history: [], attempts: 0, quotes: [] };
    orders.set(orderId, order);
  }
  if (version <= order.version) return; // a repeat: never applied twice
  order.version = version;
  order.updatedAt = message.timestamp;
  order.history.push(status);
  order.retry = null;
  switch (type) {
    case "OrderPending":
      Object.assign(order, {
        orderType: details.orderType, tokenIn: details.tokenIn, tokenOut: details.tokenOut,
        amount: details.amount, limitPrice: details.limitPrice, createdAt: message.timestamp,
        userId: details.userId,
      });
      break;
    case "OrderWaiting":
      order.bestPrice = details.bestPrice;
      order.bestDex = details.bestDex;
      break;
    case "OrderAwaitingLaunch":
      order.awaiting = details.token;
      break;
    case "OrderRouting":
      order.quotes = details.quotes || [];
      order.chosenDex = details.chosenDex;
      order.reason = details.reason;
      order.attempts = Math.max(order.attempts, 1);
      break;
    case "OrderBuilding":
      order.minOut = details.minOut;
      order.chosenDex = details.dex || order.chosenDex;
      break;
    case "OrderSubmitted":
    case "SwapReissued":
      order.txHash = details.txHash;
      order.explorerUrl = details.explorerUrl || order.explorerUrl;
      break;
    case "OrderConfirmed":
      order.txHash = details.txHash || order.txHash;
      order.explorerUrl = details.explorerUrl || order.explorerUrl;
      order.executedPrice = details.executedPrice;
      order.amountOut = details.amountOut;
      break;
    case "RetryScheduled":
      order.attempts = Math.max(order.attempts, details.attempt + 1);
      order.retry = details;
      break;
    case "OrderFailed":
      order.attempts = details.attempts ?? order.attempts;
      order.error = details.error;
      break;
    case "OrderCancelled":
      order.cancelReason = details.reason;
      break;
    default:
      break;
  }
  if (status !== "retrying") order.status = status;
  dirty.add(orderId);
  if (!frame) frame = requestAnimationFrame(flush);
}

function flush() {
  frame = 0;
  const body = tbody();
  const fresh = [];
  for (const id of dirty) {
    const order = orders.get(id);
    let row = rows.get(id);
    if (!row) {
      row = newRow(order);
      rows.set(id, row);
      fresh.push(row);
      addPair(`${order.tokenIn}/${order.tokenOut}`);
    }
    render(row, order);
    row.hidden = !matches(order);
  }
  dirty.clear();
  // Newest first: the stream delivers oldest first, so each new row goes on top.
  if (fresh.length) body.prepend(...fresh.reverse());
  updateCount();
  for (const listener of listeners) listener();
}

function newRow(order) {
  const row = document.createElement("tr");
  row.dataset.orderId = order.orderId;
  row.innerHTML = `<th scope="row" class="c-order"></th><td class="c-user" data-label="User"></td>
    <td class="c-status"></td>
    <td class="c-quotes" data-label="Quotes and route"></td><td class="c-attempts" data-label="Attempts"></td>
    <td class="c-minout" data-label="Min out"></td><td class="c-tx" data-label="Transaction"></td>
    <td class="c-exec" data-label="Executed / limit"></td>`;
  const link = document.createElement("a");
  link.href = `#/orders/${order.orderId}`;
  link.className = "order-link";
  // Cancel sits under the order's name, so it is in view however wide the other cells are.
  const button = document.createElement("button");
  button.type = "button";
  button.className = "cancel";
  button.textContent = "Cancel";
  button.setAttribute("aria-label", `Cancel order ${short(order.orderId)}`);
  const message = document.createElement("span");
  message.className = "row-msg";
  message.setAttribute("role", "status");
  row.querySelector(".c-order").append(link, document.createElement("span"), button, message);
  row.querySelector(".cancel").addEventListener("click", () => cancel(order.orderId, row));
  return row;
}

function render(row, o) {
  row.dataset.status = o.status;
  row.dataset.history = o.history.join(" ");
  row.dataset.type = o.orderType || "";
  row.dataset.pair = `${o.tokenIn}/${o.tokenOut}`;
  const [link, meta] = row.querySelector(".c-order").children;
  link.textContent = short(o.orderId);
  link.setAttribute("aria-label", `Order ${short(o.orderId)}: timeline`);
  meta.textContent = `${o.orderType || ""} ${num(o.amount)} ${o.tokenIn || ""}→${o.tokenOut || ""}`;
  row.dataset.userId = o.userId || "";
  row.querySelector(".c-user").textContent = o.userId || "";
  const status = row.querySelector(".c-status");
  status.innerHTML = "";
  const badge = document.createElement("span");
  badge.className = `badge s-${o.status}`;
  badge.textContent = o.status;
  status.append(badge);
  if (o.status === "waiting") {
    const why = document.createElement("small");
    why.textContent = o.awaiting ? ` for ${o.awaiting} to launch` : o.bestPrice ? ` best ${num(o.bestPrice)}` : "";
    status.append(why);
  }
  if (o.error || o.cancelReason) {
    const why = document.createElement("small");
    why.className = "block";
    why.textContent = o.error || o.cancelReason;
    status.append(why);
  }
  renderQuotes(row.querySelector(".c-quotes"), o);
  row.querySelector(".c-attempts").textContent = o.retry
    ? `${o.attempts} · retry ${o.retry.step} in ${o.retry.retryInMs} ms (${o.retry.error})`
    : o.attempts ? String(o.attempts) : "";
  row.querySelector(".c-minout").textContent = o.minOut ? `${num(o.minOut)} ${o.tokenOut}` : "";
  const tx = row.querySelector(".c-tx");
  tx.innerHTML = "";
  if (o.txHash) {
    const a = document.createElement(o.explorerUrl ? "a" : "span");
    if (o.explorerUrl) { a.href = o.explorerUrl; a.target = "_blank"; a.rel = "noopener noreferrer"; }
    a.textContent = `${o.txHash.slice(0, 10)}…`;
    a.title = o.txHash;
    if (o.explorerUrl) a.setAttribute("aria-label", `transaction ${o.txHash.slice(0, 10)} in the explorer`);
    tx.append(a);
  }
  const exec = row.querySelector(".c-exec");
  const limit = o.limitPrice ? ` / ${num(o.limitPrice)}` : "";
  exec.textContent = o.executedPrice ? `${num(o.executedPrice)}${limit}` : limit ? `— ${limit}` : "";
  if (o.executedPrice && o.limitPrice) {
    exec.textContent += Number(o.executedPrice) >= Number(o.limitPrice) ? " ✓ at or above" : " ✗ below";
  }
  row.querySelector(".cancel").hidden = !CANCELLABLE.has(o.status);
}

/** The engine's reason with its long decimals cut to `digits` significant digits, for reading. */
export function roundedNumbers(text, digits = 6) {
  return text.replace(/\d+\.\d+/g, (figure) => num(figure, digits));
}

function renderQuotes(cell, o) {
  cell.innerHTML = "";
  if (!o.quotes.length) return;
  const list = document.createElement("span");
  for (const q of o.quotes) {
    const item = document.createElement(q.dex === o.chosenDex ? "strong" : "span");
    item.textContent = `${q.dex} ${num(q.price)}`;
    if (q.dex === o.chosenDex) item.title = "chosen venue";
    list.append(item, " ");
  }
  cell.append(list);
  if (o.reason) {
    const why = document.createElement("small");
    why.className = "block reason";
    why.textContent = roundedNumbers(o.reason);
    why.title = o.reason; // the exact figures, as the API sent them
    cell.append(why);
  }
}

async function cancel(orderId, row) {
  const message = row.querySelector(".row-msg");
  message.textContent = "";
  try {
    await call("DELETE", `/api/orders/${orderId}`);
  } catch (error) {
    message.textContent = error.message;
  }
}

// -- filters ------------------------------------------------------------------------------

const pairs = new Set();
function addPair(pair) {
  if (pairs.has(pair)) return;
  pairs.add(pair);
  const option = document.createElement("option");
  option.textContent = pair;
  document.getElementById("filter-pair").append(option);
}

function filters() {
  return {
    status: document.getElementById("filter-status").value,
    pair: document.getElementById("filter-pair").value,
    type: document.getElementById("filter-type").value,
  };
}

function matches(o) {
  const f = filters();
  return (!f.status || o.status === f.status) && (!f.pair || `${o.tokenIn}/${o.tokenOut}` === f.pair)
    && (!f.type || o.orderType === f.type);
}

function refilter() {
  for (const [id, row] of rows) row.hidden = !matches(orders.get(id));
  updateCount();
}

function updateCount() {
  const shown = [...rows.values()].filter((r) => !r.hidden).length;
  document.getElementById("board-count").textContent = `(${shown} of ${rows.size})`;
  document.getElementById("board-empty").hidden = rows.size > 0;
}

export function setUpBoard() {
  const status = document.getElementById("filter-status");
  for (const s of STATUSES) {
    const option = document.createElement("option");
    option.textContent = s;
    status.append(option);
  }
  for (const id of ["filter-status", "filter-pair", "filter-type"]) {
    document.getElementById(id).addEventListener("change", refilter);
  }
}

/** Show the user column (the every-order board) or hide it (one user's). */
export function showUsers(shown) {
  document.getElementById("board").classList.toggle("all", shown);
}

/** Forget every order (another user connected). */
export function clearBoard() {
  orders.clear();
  rows.clear();
  dirty.clear();
  tbody().innerHTML = "";
  updateCount();
}
