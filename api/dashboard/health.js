// Engine health from the API's own endpoints: GET /api/engine/health (load against the
// limits, queues, lag, heartbeats) and GET /readyz (what the engine says is down).

import { call } from "./api.js";
import { setMarket } from "./prices.js";

function meter(label, value, max, unit) {
  const wrap = document.createElement("div");
  wrap.className = "meter";
  const id = `m-${label.replace(/\W+/g, "-")}`;
  wrap.innerHTML = `<label for="${id}"></label><meter id="${id}" min="0"></meter><span></span>`;
  wrap.querySelector("label").textContent = label;
  const m = wrap.querySelector("meter");
  m.max = max;
  m.value = value;
  m.high = max * 0.8;
  wrap.querySelector("span").textContent = `${value} / ${max}${unit}`;
  return wrap;
}

function table(caption, rows, headers) {
  const t = document.createElement("table");
  t.className = "mini";
  t.innerHTML = `<caption></caption><thead><tr>${headers.map((h) => `<th scope="col">${h}</th>`).join("")}</tr></thead><tbody></tbody>`;
  t.caption.textContent = caption;
  for (const cells of rows) {
    const tr = document.createElement("tr");
    cells.forEach((c, i) => {
      const cell = document.createElement(i ? "td" : "th");
      if (!i) cell.scope = "row";
      cell.textContent = String(c);
      tr.append(cell);
    });
    t.tBodies[0].append(tr);
  }
  return t;
}

export async function refreshHealth() {
  const box = document.getElementById("health");
  let health;
  let ready = null;
  try {
    health = await call("GET", "/api/engine/health");
  } catch (error) {
    box.dataset.state = "down";
    box.innerHTML = "";
    const p = document.createElement("p");
    p.className = "bad";
    p.textContent = `Health unavailable: ${error.message}`;
    box.append(p);
    return;
  }
  try {
    const response = await fetch("/readyz");
    ready = await response.json();
  } catch {
    ready = null;
  }
  const parts = [];
  const status = document.createElement("p");
  status.className = ready && ready.status === "ready" ? "good" : "bad";
  status.textContent = ready
    ? ready.status === "ready" ? "Ready: every dependency is up." : `Not ready: ${ready.down.join(", ")} down.`
    : "Readiness unknown.";
  parts.push(status);
  setMarket(health.market);
  const market = document.createElement("p");
  market.textContent = health.market === "chain" ? "Market: on chain (USE_REAL_DEVNET)." : "Market: the mock DEX.";
  market.dataset.market = health.market;
  parts.push(market);
  parts.push(meter("In flight", health.inFlight, health.maxInFlight, ""));
  parts.push(meter("Starts in the last minute", health.startsLastMinute, health.startsPerMinute, " per min"));
  parts.push(table("Queue depth", Object.entries(health.queues).map(([q, d]) => [q.replace("orders_priority", "priority lane"), d.ready, d.unacked, d.delayed, d.dead]),
    ["queue", "ready", "unacked", "delayed", "dead"]));
  parts.push(table("Lag behind the log", Object.entries(health.lag).map(([name, l]) => [
    name === "redis_relay" ? "outbox (redis_relay)" : `projection ${name}`, l.events, `${l.seconds} s`,
  ]), ["follower", "events", "oldest"]));
  const beats = health.workers.map((w) => [w.process, `${w.ageSeconds} s ago`]);
  beats.push(["scheduler", health.scheduler ? `${health.scheduler.ageSeconds} s ago` : "no heartbeat"]);
  if (!health.workers.length) beats.unshift(["worker", "no heartbeat"]);
  parts.push(table("Heartbeats", beats, ["process", "last beat"]));
  box.dataset.state = "up";
  box.dataset.checkedAt = health.checkedAt;
  box.replaceChildren(...parts);
}
