// The order form: sends what the user typed, as typed, and shows the API's own refusal
// beside the field it names (the page does no validation of its own, so the two can
// never disagree).

import { call, session } from "./api.js";

const FALLBACK_TOKENS = ["SOL", "USDC", "USDT", "BONK", "JUP", "RAY", "LAUNCH"];

/** Put `message` beside the field the API named (or under the form when it named none). */
export function showFieldError(named, message, fallback) {
  const field = named === "Authorization" ? "apiKey" : named; // a 401 names the header
  const box = field ? document.getElementById(`${field}-error`) : null;
  if (!box) {
    fallback.textContent = message;
    return;
  }
  box.textContent = message;
  const input = document.querySelector(`[aria-describedby~="${field}-error"]`);
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
}

export function clearErrors(root) {
  for (const box of root.querySelectorAll(".field-error")) box.textContent = "";
  for (const input of root.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

function orderType(form) {
  return form.querySelector('input[name="orderType"]:checked').value;
}

function showTypeFields(form) {
  const type = orderType(form);
  for (const field of form.querySelectorAll('[data-for="limit"]')) field.hidden = type !== "limit";
  if (type === "sniper" && form.tokenOut.value !== "LAUNCH") form.tokenOut.value = "LAUNCH";
}

function body(form) {
  const type = orderType(form);
  const sent = { orderType: type, tokenIn: form.tokenIn.value, tokenOut: form.tokenOut.value };
  if (session.userId) sent.userId = session.userId;
  const text = (name) => form.elements[name].value.trim();
  if (text("amount") !== "") sent.amount = text("amount");
  if (text("slippageTolerance") !== "") sent.slippageTolerance = text("slippageTolerance");
  if (text("clientOrderId") !== "") sent.clientOrderId = text("clientOrderId");
  if (type === "limit") {
    if (text("limitPrice") !== "") sent.limitPrice = text("limitPrice");
    // datetime-local has no zone: it is the browser's local time, sent with its offset.
    if (text("expiresAt") !== "") sent.expiresAt = new Date(text("expiresAt")).toISOString();
  }
  return sent;
}

export async function setUpOrderForm(tokens) {
  const form = document.getElementById("order-form");
  const result = document.getElementById("order-result");
  const symbols = tokens.length ? tokens : FALLBACK_TOKENS;
  for (const [select, chosen] of [[form.tokenIn, "SOL"], [form.tokenOut, "USDC"]]) {
    select.innerHTML = "";
    for (const symbol of symbols) select.append(new Option(symbol, symbol, false, symbol === chosen));
  }
  for (const radio of form.querySelectorAll('input[name="orderType"]')) {
    radio.addEventListener("change", () => showTypeFields(form));
  }
  showTypeFields(form);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    clearErrors(document.getElementById("session"));
    result.textContent = "Placing…";
    const headers = {};
    const key = form.elements["Idempotency-Key"].value;
    if (key !== "") headers["Idempotency-Key"] = key;
    try {
      const accepted = await call("POST", "/api/orders/execute", { body: body(form), headers });
      result.textContent = `Order ${accepted.orderId.slice(0, 8)} accepted (${accepted.status}).`;
      result.dataset.orderId = accepted.orderId;
    } catch (error) {
      result.textContent = error.field ? "The order was refused: see the highlighted field." : error.message;
      showFieldError(error.field, error.message, result);
    }
  });
}
