// The live board: one row per order, folded from the user's stream and updated in place.
// Messages are applied at once to the order's model; the DOM is written once per animation
// frame, and only what changed: the cells an event changed, of the rows in view.
//
// Windowing: with more than ALL_ROWS orders shown, only the rows in the scroll region's view
// (plus a margin of a view above and below) are in the DOM, between two spacer rows as tall
// as the rows left out (their measured heights, else the average). The table says how many
// rows it has (aria-rowcount) and each row its place (aria-rowindex), so a screen reader
// still reads "row 412 of 1001". The order, the filters and the counts come from the models,
// not from the DOM (docs/dashboard.md says why: a thousand rows in a <table> cost more in
// style and layout after every frame's writes than everything else the page does).

import { newRow, render } from "./board_row.js";

export { CANCELLABLE, roundedNumbers } from "./board_row.js";

const STATUSES = ["pending", "waiting", "routing", "building", "submitted", "confirmed", "failed",
  "cancelled", "expired"];
const ALL_ROWS = 60; // up to this many shown orders, every row is in the DOM (no windowing)
const ROW_GUESS = 56; // px: a row's height until one has been measured
const FOCUS_REACH = 50; // rows: a focused row stays in the DOM while this near the window

const orders = new Map(); // orderId -> model
const sequence = []; // orderIds in the order they first arrived (oldest first)
const rows = new Map(); // orderId -> its <tr>, made the first time it comes into view
const heights = new Map(); // orderId -> the row's measured height (px)
const statusCounts = new Map(); // status -> orders in it
const dirty = new Set();
let shownIds = []; // the orders the filters let through, newest first: the board's rows
let listStale = true; // shownIds must be rebuilt (a new order, or one entered or left the filter)
let measuredSum = 0;
let measuredCount = 0;
let frame = 0;
let listeners = [];
let current = { status: "", pair: "", type: "" }; // the filters, read when one changes
let view = { top: 0, height: 0 }; // the scroll region, as its events last said
let range = { first: 0, last: 0 }; // the slice of shownIds in the DOM
let countText = "";

const tbody = () => document.querySelector("#board tbody");

/** Everything the board knows of each order (what the price charts read too). */
export function allOrders() { return orders.values(); }
export function orderById(orderId) { return orders.get(orderId); }

export function onChange(listener) { listeners.push(listener); }

/**
 * The board's state, from its models (rows out of view are not in the DOM): for the
 * end-to-end tests, the benchmark, and a curious person at the console.
 */
export const boardState = {
  get size() { return sequence.length; },
  get shown() { return shownIds.length; },
  get window() { return { ...range }; },
  count(status) { return statusCounts.get(status) || 0; },
  finished() { return this.count("confirmed") + this.count("failed"); },
  ids() { return [...shownIds]; },
  order(orderId) {
    const o = orders.get(orderId);
    return o && { status: o.status, history: [...o.history], version: o.version };
  },
};

/** Fold one stream message into its order (versions already seen are dropped). */
export function apply(message) {
  const { orderId, version, status, details = {}, type } = message;
  let order = orders.get(orderId);
  if (!order) {
    order = { orderId, version: 0, history: [], attempts: 0, quotes: [], route: 0, isNew: true };
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
      order.route += 1;
      break;
    case "OrderBuilding":
      order.minOut = details.minOut;
      order.chosenDex = details.dex || order.chosenDex;
      order.route += 1;
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
  if (status !== "retrying" && status !== order.status) {
    if (order.status) statusCounts.set(order.status, statusCounts.get(order.status) - 1);
    statusCounts.set(status, (statusCounts.get(status) || 0) + 1);
    order.status = status;
  }
  dirty.add(orderId); // many events of one order in a frame: one write
  schedule();
}

function schedule() {
  if (!frame) frame = requestAnimationFrame(flush);
}

function flush() {
  frame = 0;
  const news = dirty.size > 0 || listStale; // else only the view moved: the charts need nothing
  for (const id of dirty) {
    const order = orders.get(id);
    if (order.isNew) {
      order.isNew = false;
      sequence.push(id);
      addPair(`${order.tokenIn}/${order.tokenOut}`);
      listStale = true;
    }
    const shown = matches(order);
    if (shown !== order.shown) { order.shown = shown; listStale = true; }
  }
  if (listStale) {
    listStale = false;
    // Newest first: the stream delivers oldest first.
    const list = [];
    for (let i = sequence.length - 1; i >= 0; i -= 1) if (orders.get(sequence[i]).shown) list.push(sequence[i]);
    shownIds = list;
  }
  place();
  dirty.clear();
  const text = `(${shownIds.length} of ${sequence.length})`;
  if (text !== countText) {
    countText = text;
    document.getElementById("board-count").textContent = text;
  }
  const empty = document.getElementById("board-empty");
  if (empty.hidden !== sequence.length > 0) empty.hidden = sequence.length > 0;
  if (news) for (const listener of listeners) listener();
}

// -- the window of rows in the DOM -----------------------------------------------------------

const rowHeight = (id) => heights.get(id) ?? (measuredCount ? measuredSum / measuredCount : ROW_GUESS);

/** The slice of shownIds to keep in the DOM: all of it when short, else what is in view. */
function windowOf() {
  const n = shownIds.length;
  if (n <= ALL_ROWS) return { first: 0, last: n };
  const margin = Math.max(view.height, 400);
  const from = view.top - margin;
  const to = view.top + (view.height || 600) + margin;
  let first = n;
  let last = n;
  let y = 0;
  for (let i = 0; i < n; i += 1) {
    const bottom = y + rowHeight(shownIds[i]);
    if (first === n && bottom > from) first = i;
    if (y >= to) { last = i; break; }
    y = bottom;
  }
  if (first === n) first = Math.max(0, n - 1);
  // The row holding the focus stays while it is near, so Tab and a screen reader keep their place.
  const focused = document.activeElement?.closest?.("#board tbody tr[data-order-id]");
  if (focused) {
    const at = shownIds.indexOf(focused.dataset.orderId);
    if (at >= 0 && at < first && first - at <= FOCUS_REACH) first = at;
    if (at >= last && at - last < FOCUS_REACH) last = at + 1;
  }
  return { first, last };
}

const spacers = { top: null, bottom: null };
function spacer(name) {
  if (!spacers[name]) {
    const tr = document.createElement("tr");
    tr.className = "spacer";
    tr.setAttribute("aria-hidden", "true");
    tr.innerHTML = `<td colspan="8"></td>`;
    spacers[name] = tr;
  }
  return spacers[name];
}

/** The spacer standing for `px` of rows left out, or none (removed) when there are none. */
function setSpacer(name, px, windowed) {
  const tr = spacer(name);
  if (!windowed || px <= 0) { if (tr.parentNode) tr.remove(); return null; }
  const height = `${Math.round(px)}px`;
  if (tr.style.height !== height) tr.style.height = height;
  // As many columns as are shown (the user column only on the every-order board): one more
  // would add an empty column to the table and narrow the others.
  const columns = document.getElementById("board").classList.contains("all") ? 8 : 7;
  if (tr.firstChild.colSpan !== columns) tr.firstChild.colSpan = columns;
  return tr;
}

/** Bring the DOM to shownIds[first, last): new rows made, changed ones written, others moved out. */
function place() {
  const body = tbody();
  const { first, last } = windowOf();
  range = { first, last };
  const windowed = shownIds.length > ALL_ROWS;
  const wanted = new Set();
  for (let i = first; i < last; i += 1) wanted.add(shownIds[i]);
  for (const child of [...body.children]) {
    const id = child.dataset.orderId;
    if (id && !wanted.has(id)) { child.remove(); resizes.unobserve(child); }
  }
  let above = 0;
  let below = 0;
  if (windowed) {
    for (let i = 0; i < first; i += 1) above += rowHeight(shownIds[i]);
    for (let i = last; i < shownIds.length; i += 1) below += rowHeight(shownIds[i]);
  }
  const top = setSpacer("top", above, windowed);
  if (top && body.firstChild !== top) body.prepend(top);
  let cursor = top ? top.nextSibling : body.firstChild;
  for (let i = first; i < last; i += 1) {
    const id = shownIds[i];
    const order = orders.get(id);
    let row = rows.get(id);
    if (!row) { row = newRow(order); rows.set(id, row); }
    if (row.drawn !== order.version) render(row, order); // a row out of view catches up here
    const index = String(i + 2); // the header row is row 1
    if (row.index !== index) { row.index = index; row.setAttribute("aria-rowindex", index); }
    if (cursor === row) {
      cursor = cursor.nextSibling;
    } else {
      body.insertBefore(row, cursor);
      resizes.observe(row);
    }
  }
  const bottom = setSpacer("bottom", below, windowed);
  if (bottom && body.lastChild !== bottom) body.append(bottom);
  const count = String(shownIds.length + 1);
  const table = document.getElementById("board");
  if (table.getAttribute("aria-rowcount") !== count) table.setAttribute("aria-rowcount", count);
}

// Rows' heights as laid out (no forced layout: the observer reports after layout): the
// spacers follow them, and the next frame corrects the window if they moved it.
const resizes = new ResizeObserver((entries) => {
  let moved = false;
  for (const entry of entries) {
    const id = entry.target.dataset.orderId;
    const size = entry.borderBoxSize?.[0]?.blockSize ?? entry.target.offsetHeight;
    if (!id || !size || !entry.target.isConnected) continue;
    const old = heights.get(id);
    if (old === size) continue;
    if (old === undefined) { measuredSum += size; measuredCount += 1; } else { measuredSum += size - old; }
    heights.set(id, size);
    moved = true;
  }
  if (moved && shownIds.length > ALL_ROWS) schedule();
});

function watchScroll() {
  const region = document.querySelector(".table-scroll");
  region.addEventListener("scroll", () => {
    view.top = region.scrollTop;
    if (shownIds.length > ALL_ROWS) schedule();
  }, { passive: true });
  let width = region.clientWidth;
  new ResizeObserver(() => {
    view = { top: region.scrollTop, height: region.clientHeight };
    if (region.clientWidth !== width) { // rows wrap differently: the heights measured are stale
      width = region.clientWidth;
      heights.clear();
      measuredSum = 0;
      measuredCount = 0;
    }
    if (shownIds.length > ALL_ROWS) schedule();
  }).observe(region);
  // The header's height lies between the region's top and the first row: counted in view.top.
  view = { top: region.scrollTop, height: region.clientHeight };
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

function readFilters() {
  current = {
    status: document.getElementById("filter-status").value,
    pair: document.getElementById("filter-pair").value,
    type: document.getElementById("filter-type").value,
  };
}

function matches(o) {
  const f = current;
  return (!f.status || o.status === f.status) && (!f.pair || `${o.tokenIn}/${o.tokenOut}` === f.pair)
    && (!f.type || o.orderType === f.type);
}

function refilter() {
  readFilters();
  for (const id of sequence) orders.get(id).shown = matches(orders.get(id));
  listStale = true;
  schedule();
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
  readFilters();
  watchScroll();
  schedule(); // the empty board's count
}

/** Show the user column (the every-order board) or hide it (one user's). */
export function showUsers(shown) {
  document.getElementById("board").classList.toggle("all", shown);
}

/** Forget every order (another user connected). */
export function clearBoard() {
  orders.clear();
  sequence.length = 0;
  rows.clear();
  heights.clear();
  statusCounts.clear();
  dirty.clear();
  measuredSum = 0;
  measuredCount = 0;
  shownIds = [];
  listStale = true;
  resizes.disconnect();
  tbody().textContent = "";
  schedule();
}
