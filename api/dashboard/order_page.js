// An order's page: its events from the log, and a slider over its versions that shows the
// state the engine's own fold gives at each (GET /api/orders/{id}/state?version=N).

import { call } from "./api.js";

const SHOWN = [
  ["status", "Status"], ["orderType", "Type"], ["amount", "Amount"], ["limitPrice", "Limit price"],
  ["bestPrice", "Best price seen"], ["chosenDex", "Chosen venue"], ["expectedOut", "Expected out"],
  ["minOut", "Min out"], ["attempts", "Attempts"], ["lastError", "Last error"], ["txHash", "Tx hash"],
  ["executedPrice", "Executed price"], ["amountOut", "Amount out"], ["cancelReason", "Cancelled because"],
  ["updatedAt", "As of"],
];

let current = null;
let request = 0;

function brief(data) {
  // The stored event (snake_case) without the fields every event repeats.
  const { type, order_id: _id, quotes, ...rest } = data;
  const parts = Object.entries(rest).filter(([, v]) => v !== null && v !== "" && typeof v !== "object")
    .map(([k, v]) => `${k}=${v}`);
  if (quotes) parts.unshift(`quotes=${quotes.map((q) => `${q.dex}@${Number(q.price).toPrecision(6)}`).join(",")}`);
  return parts.join(" · ");
}

export async function showOrder(orderId) {
  current = orderId;
  const title = document.getElementById("order-title");
  const timeline = document.getElementById("timeline");
  const slider = document.getElementById("version-slider");
  title.textContent = `Order ${orderId}`;
  timeline.innerHTML = "";
  document.getElementById("state").innerHTML = "";
  let events;
  try {
    ({ events } = await call("GET", `/api/orders/${orderId}/events`));
  } catch (error) {
    document.getElementById("version-caption").textContent = error.message;
    return;
  }
  for (const e of events) {
    const item = document.createElement("li");
    item.dataset.version = e.version;
    const when = new Date(e.recordedAt).toLocaleTimeString("en-GB", { hour12: false, fractionalSecondDigits: 3 });
    item.innerHTML = `<span class="v">v${e.version}</span> <strong></strong> <time></time><div class="d"></div>`;
    item.querySelector("strong").textContent = e.type;
    item.querySelector("time").textContent = when;
    item.querySelector("time").dateTime = e.recordedAt;
    item.querySelector(".d").textContent = brief(e.data);
    timeline.append(item);
  }
  const latest = events[events.length - 1].version;
  slider.max = String(latest);
  slider.value = String(latest);
  slider.oninput = () => showVersion(orderId, Number(slider.value));
  await showVersion(orderId, latest);
}

async function showVersion(orderId, version) {
  const mine = ++request; // a slow answer for an older position must not overwrite a newer one
  const slider = document.getElementById("version-slider");
  slider.setAttribute("aria-valuetext", `version ${version}`);
  let at;
  try {
    at = await call("GET", `/api/orders/${orderId}/state?version=${version}`);
  } catch (error) {
    document.getElementById("version-caption").textContent = error.message;
    return;
  }
  if (mine !== request || orderId !== current) return;
  document.getElementById("version-label").textContent = `Version ${at.version} of ${at.latestVersion}`;
  const caption = document.getElementById("version-caption");
  caption.textContent = `After ${at.eventType}: ${at.order.status}`;
  caption.dataset.status = at.order.status;
  caption.dataset.version = String(at.version);
  slider.setAttribute("aria-valuetext", `version ${at.version}: ${at.eventType}, ${at.order.status}`);
  for (const item of document.querySelectorAll("#timeline li")) {
    item.classList.toggle("after", Number(item.dataset.version) > at.version);
    item.toggleAttribute("aria-current", Number(item.dataset.version) === at.version);
  }
  const list = document.getElementById("state");
  list.innerHTML = "";
  for (const [key, label] of SHOWN) {
    const value = at.order[key];
    if (value === null || value === undefined || value === "") continue;
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = String(value);
    dd.dataset.key = key;
    list.append(dt, dd);
  }
}
