// Price charts: the engine keeps no price history, so the page samples GET /api/market/prices
// once a second and keeps the last few minutes per pair (a pair's price is tokenOut per
// tokenIn: the ratio of the two USD prices). Each chart also draws, dashed, the limit of
// every waiting limit order of its pair, and marks the price each routed order was quoted.

import { allOrders } from "./board.js";
import { call } from "./api.js";
import { clearErrors, showFieldError } from "./order_form.js";

const SAMPLES = 300;
const MAX_FILLS = 100;
// The viewBox is about the size a chart is drawn at, so its labels stay readable.
const W = 320;
const H = 140;
const PAD = 6;
const series = new Map(); // "SOL/USDC" -> [{t, price}]
let usd = {};
// "mock": the mock market's USD prices, sampled; "chain": no such market exists, so a
// pair's price is what the engine quoted for its orders (each routing's chosen quote and
// each waiting limit order's best price), taken from the stream as the board receives it.
let market = "mock";

/** Told by the health panel (GET /api/engine/health `market`). */
export function setMarket(kind) {
  if (kind === market) return;
  market = kind;
  series.clear();
  document.getElementById("launch-box").hidden = kind === "chain"; // launches are the mock's
  document.getElementById("prices-hint").textContent = kind === "chain"
    ? "The prices the engine quoted on chain per pair (each routing's chosen quote, each waiting "
      + "limit order's best price); dashed lines are the limits of waiting orders."
    : "The engine's market prices per pair, sampled each second; dashed lines are the limits of "
      + "waiting orders.";
  draw();
}

/** A stream message: on chain, a quote it carries is a point of its pair's chart. */
export function noteQuote(message, order) {
  if (market !== "chain" || !order || !order.tokenIn) return;
  const { details = {}, type } = message;
  let price = null;
  if (type === "OrderRouting") {
    const chosen = (details.quotes || []).find((q) => q.dex === details.chosenDex);
    price = chosen && Number(chosen.price);
  } else if (type === "OrderWaiting") {
    price = Number(details.bestPrice);
  }
  if (!price || !Number.isFinite(price)) return;
  const pair = `${order.tokenIn}/${order.tokenOut}`;
  const points = series.get(pair) || [];
  points.push({ t: Date.parse(message.timestamp) || Date.now(), price });
  if (points.length > SAMPLES) points.shift();
  series.set(pair, points);
}

function pairsShown() {
  const pairs = new Set(["SOL/USDC"]);
  for (const o of allOrders()) if (o.tokenIn && o.status !== "cancelled") pairs.add(`${o.tokenIn}/${o.tokenOut}`);
  return [...pairs];
}

export async function sample() {
  if (market === "chain") return; // the chart follows the quotes (noteQuote)
  try {
    usd = await call("GET", "/api/market/prices");
  } catch {
    return; // the API is restarting, or the key is missing: the board says so
  }
  const t = Date.now();
  for (const pair of pairsShown()) {
    const [a, b] = pair.split("/");
    if (!usd[a] || !usd[b]) continue;
    const points = series.get(pair) || [];
    points.push({ t, price: Number(usd[a]) / Number(usd[b]) });
    if (points.length > SAMPLES) points.shift();
    series.set(pair, points);
  }
  draw();
}

function svg(tag, attributes) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, String(v));
  return node;
}

function fmt(n) { return n.toLocaleString("en-US", { maximumSignificantDigits: 6 }); }

export function draw() {
  const box = document.getElementById("charts");
  const wanted = pairsShown().filter((p) => series.has(p));
  for (const figure of [...box.children]) if (!wanted.includes(figure.dataset.pair)) figure.remove();
  for (const pair of wanted) {
    let figure = box.querySelector(`figure[data-pair="${pair}"]`);
    if (!figure) {
      figure = document.createElement("figure");
      figure.dataset.pair = pair;
      figure.innerHTML = `<figcaption></figcaption>`;
      box.append(figure);
    }
    drawPair(figure, pair);
  }
}

function drawPair(figure, pair) {
  const points = series.get(pair);
  const orders = [...allOrders()].filter((o) => `${o.tokenIn}/${o.tokenOut}` === pair);
  const limits = orders.filter((o) => o.status === "waiting" && o.limitPrice).map((o) => ({
    id: o.orderId, price: Number(o.limitPrice),
  }));
  // The latest fills only: a thousand circles per redraw would say no more than a hundred.
  const fills = orders.filter((o) => o.executedPrice).slice(-MAX_FILLS).map((o) => Number(o.executedPrice));
  const values = [...points.map((p) => p.price), ...limits.map((l) => l.price), ...fills];
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi - lo < hi * 1e-4) { lo *= 0.999; hi *= 1.001; } // a frozen market: a flat line mid-chart
  const t0 = points[0].t;
  const span = Math.max(points[points.length - 1].t - t0, 1);
  const x = (t) => PAD + ((t - t0) / span) * (W - 2 * PAD);
  const y = (v) => H - PAD - ((v - lo) / (hi - lo)) * (H - 2 * PAD);
  const last = points[points.length - 1].price;
  figure.querySelector("figcaption").textContent = `${pair} ${fmt(last)}${market === "chain" ? " quoted" : ""}` +
    (limits.length ? ` · ${limits.length} waiting limit${limits.length > 1 ? "s" : ""}` : "");
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart" });
  chart.setAttribute("aria-label", `${pair}: price ${fmt(last)}, range ${fmt(lo)} to ${fmt(hi)}` +
    limits.map((l) => `; limit ${fmt(l.price)}`).join(""));
  chart.append(svg("rect", { x: 0, y: 0, width: W, height: H, class: "bg" }));
  for (const l of limits) {
    chart.append(svg("line", {
      x1: 0, x2: W, y1: y(l.price), y2: y(l.price), class: "limit", "data-limit-order": l.id,
    }));
    const above = y(l.price) > 16; // a line at the top edge gets its label below it
    const label = svg("text", {
      x: W - PAD, y: y(l.price) + (above ? -3 : 12), class: "limit-label", "text-anchor": "end",
    });
    label.textContent = `limit ${fmt(l.price)} (${l.id.slice(0, 8)})`;
    chart.append(label);
  }
  for (const [value, dy] of [[hi, 12], [lo, -3]]) { // the scale: the top and bottom of the range
    const tick = svg("text", { x: PAD, y: y(value) + dy, class: "axis" });
    tick.textContent = fmt(value);
    chart.append(tick);
  }
  const path = points.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.price).toFixed(1)}`).join("");
  chart.append(svg("path", { d: path, class: "price" }));
  for (const price of fills) chart.append(svg("circle", { cx: W - PAD, cy: y(price), r: 3, class: "fill" }));
  const old = figure.querySelector("svg");
  if (old) old.replaceWith(chart); else figure.append(chart);
}

export function setUpLaunch() {
  const button = document.getElementById("launch-button");
  const result = document.getElementById("launch-result");
  button.addEventListener("click", async () => {
    const launchBox = button.parentElement;
    clearErrors(launchBox);
    result.textContent = "";
    try {
      const token = document.getElementById("launch-token").value;
      const answer = await call("POST", "/api/market/launches", { body: { token } });
      result.textContent = answer.launched
        ? `${answer.token} launched: ${answer.ordersWoken} sniper order(s) fired.`
        : `${answer.token} had launched already.`;
    } catch (error) {
      showFieldError(error.field, error.message, result);
    }
  });
}

export function knownTokens() { return Object.keys(usd); }
