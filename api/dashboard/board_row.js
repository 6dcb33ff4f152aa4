// One row of the board: made once from a template, then written part by part, each part only
// when what it shows changed (board.js decides which rows are in the DOM and when).

import { call } from "./api.js";

export const CANCELLABLE = new Set(["pending", "waiting", "routing", "building"]);

const short = (id) => id.slice(0, 8);

function num(text, digits = 6) {
  if (text === null || text === undefined || text === "") return "";
  const n = Number(text);
  if (!Number.isFinite(n)) return String(text);
  return n.toLocaleString("en-US", { maximumSignificantDigits: digits });
}

const ROW_HTML = `<th scope="row" class="c-order"><a class="order-link"></a><span></span><button type="button"
    class="cancel">Cancel</button><span class="row-msg" role="status"></span></th><td class="c-user" data-label="User"></td>
    <td class="c-status"></td>
    <td class="c-quotes" data-label="Quotes and route"></td><td class="c-attempts" data-label="Attempts"></td>
    <td class="c-minout" data-label="Min out"></td><td class="c-tx" data-label="Transaction"></td>
    <td class="c-exec" data-label="Executed / limit"></td>`;
let template = null;

export function newRow(order) {
  if (!template) {
    template = document.createElement("tr");
    template.innerHTML = ROW_HTML;
  }
  const row = template.cloneNode(true);
  row.dataset.orderId = order.orderId;
  const [head, user, status, quotes, attempts, minOut, tx, exec] = row.children;
  const [link, meta, button, message] = head.children;
  row.cells_ = { link, meta, button, message, user, status, quotes, attempts, minOut, tx, exec };
  row.keys = {}; // what each part last showed: a part is written only when it changes
  // Cancel sits under the order's name, so it is in view however wide the other cells are.
  link.href = `#/orders/${order.orderId}`;
  link.textContent = short(order.orderId);
  link.setAttribute("aria-label", `Order ${short(order.orderId)}: timeline`);
  button.setAttribute("aria-label", `Cancel order ${short(order.orderId)}`);
  button.addEventListener("click", () => cancel(order.orderId, row));
  return row;
}

/** Whether `key` changed for `part` of the row since it was last written (and remember it). */
function changedPart(row, part, key) {
  if (row.keys[part] === key) return false;
  row.keys[part] = key;
  return true;
}

function setData(row, name, value) {
  if (row.dataset[name] !== value) row.dataset[name] = value;
}

function setText(row, part, text) {
  if (changedPart(row, part, text)) row.cells_[part].textContent = text;
}

export function render(row, o) {
  row.drawn = o.version;
  const c = row.cells_;
  setData(row, "status", o.status);
  setData(row, "history", o.history.join(" "));
  setData(row, "type", o.orderType || "");
  setData(row, "pair", `${o.tokenIn}/${o.tokenOut}`);
  setData(row, "userId", o.userId || "");
  setText(row, "meta", `${o.orderType || ""} ${num(o.amount)} ${o.tokenIn || ""}→${o.tokenOut || ""}`);
  setText(row, "user", o.userId || "");
  if (changedPart(row, "statusCell", [o.status, o.awaiting, o.bestPrice, o.error, o.cancelReason].join("|"))) {
    renderStatus(c.status, o);
  }
  if (changedPart(row, "quotesCell", `${o.route}`)) renderQuotes(c.quotes, o);
  setText(row, "attempts", o.retry
    ? `${o.attempts} · retry ${o.retry.step} in ${o.retry.retryInMs} ms (${o.retry.error})`
    : o.attempts ? String(o.attempts) : "");
  setText(row, "minOut", o.minOut ? `${num(o.minOut)} ${o.tokenOut}` : "");
  if (changedPart(row, "txCell", `${o.txHash}|${o.explorerUrl}`)) renderTx(c.tx, o);
  const limit = o.limitPrice ? ` / ${num(o.limitPrice)}` : "";
  let exec = o.executedPrice ? `${num(o.executedPrice)}${limit}` : limit ? `— ${limit}` : "";
  if (o.executedPrice && o.limitPrice) {
    exec += Number(o.executedPrice) >= Number(o.limitPrice) ? " ✓ at or above" : " ✗ below";
  }
  setText(row, "exec", exec);
  const cancellable = CANCELLABLE.has(o.status);
  if (c.button.hidden === cancellable) c.button.hidden = !cancellable;
}

function renderStatus(cell, o) {
  cell.textContent = "";
  const badge = document.createElement("span");
  badge.className = `badge s-${o.status}`;
  badge.textContent = o.status;
  cell.append(badge);
  if (o.status === "waiting") {
    const why = document.createElement("small");
    why.textContent = o.awaiting ? ` for ${o.awaiting} to launch` : o.bestPrice ? ` best ${num(o.bestPrice)}` : "";
    cell.append(why);
  }
  if (o.error || o.cancelReason) {
    const why = document.createElement("small");
    why.className = "block";
    why.textContent = o.error || o.cancelReason;
    cell.append(why);
  }
}

function renderTx(cell, o) {
  cell.textContent = "";
  if (!o.txHash) return;
  const a = document.createElement(o.explorerUrl ? "a" : "span");
  if (o.explorerUrl) { a.href = o.explorerUrl; a.target = "_blank"; a.rel = "noopener noreferrer"; }
  a.textContent = `${o.txHash.slice(0, 10)}…`;
  a.title = o.txHash;
  if (o.explorerUrl) a.setAttribute("aria-label", `transaction ${o.txHash.slice(0, 10)} in the explorer`);
  cell.append(a);
}

/** The engine's reason with its long decimals cut to `digits` significant digits, for reading. */
export function roundedNumbers(text, digits = 6) {
  return text.replace(/\d+\.\d+/g, (figure) => num(figure, digits));
}

function renderQuotes(cell, o) {
  cell.textContent = "";
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
