// Injected before the dashboard's own scripts by tests/benchmarks/dashboard.py: measures
// the page while orders stream onto its board. Nothing here changes what the page does.
(() => {
  const bench = { sampling: false, frames: [], longtasks: [], renders: [], latencies: [], events: 0 };
  const arrivals = new Map(); // orderId -> arrival times of its messages not yet shown
  window.__bench = bench;

  new PerformanceObserver((list) => {
    if (bench.sampling) for (const entry of list.getEntries()) bench.longtasks.push(entry.duration);
  }).observe({ type: "longtask", buffered: false });

  // Each message's arrival, before the page handles it (this listener is registered first).
  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (message) => {
        if (!bench.sampling) return;
        const at = performance.now();
        const { orderId } = JSON.parse(message.data);
        bench.events += 1;
        if (!arrivals.has(orderId)) arrivals.set(orderId, []);
        arrivals.get(orderId).push(at);
      });
    }
  };

  // The board writes its rows in an animation frame: time every frame callback of the page.
  const nativeRaf = window.requestAnimationFrame.bind(window);
  window.requestAnimationFrame = (callback) => nativeRaf((t) => {
    const started = performance.now();
    callback(t);
    if (bench.sampling) bench.renders.push(performance.now() - started);
  });

  // A row shows an event once its history has that many entries; the time is taken in the
  // first task after the frame that wrote it.
  const shown = new Map(); // orderId -> entries already counted
  function watchBoard() {
    const body = document.querySelector("#board tbody");
    new MutationObserver((records) => {
      if (!bench.sampling) return;
      const rows = new Set();
      for (const r of records) {
        const row = r.target.closest ? r.target.closest("tr") : null;
        if (row && row.dataset.orderId) rows.add(row);
        for (const added of r.addedNodes) if (added.dataset && added.dataset.orderId) rows.add(added);
      }
      setTimeout(() => {
        const now = performance.now();
        for (const row of rows) {
          const id = row.dataset.orderId;
          const count = (row.dataset.history || "").split(" ").filter(Boolean).length;
          const pending = arrivals.get(id) || [];
          const done = shown.get(id) || 0;
          for (let i = done; i < Math.min(count, pending.length); i += 1) bench.latencies.push(now - pending[i]);
          shown.set(id, Math.max(done, Math.min(count, pending.length)));
        }
      });
    }).observe(body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-history"] });
  }
  document.addEventListener("DOMContentLoaded", watchBoard);

  function tick(previous) {
    nativeRaf((now) => {
      if (!bench.sampling) return;
      bench.frames.push(now - previous);
      tick(now);
    });
  }

  const sorted = (xs) => [...xs].sort((a, b) => a - b);
  const pct = (xs, p) => (xs.length ? sorted(xs)[Math.min(xs.length - 1, Math.floor(xs.length * p))] : 0);
  const max = (xs) => (xs.length ? Math.max(...xs) : 0);
  const nextFrame = () => new Promise((resolve) => nativeRaf(() => setTimeout(resolve)));

  bench.start = () => {
    bench.sampling = true;
    nativeRaf(tick);
  };

  bench.stop = () => {
    bench.sampling = false;
    return {
      frames: bench.frames.length,
      frame_median_ms: pct(bench.frames, 0.5),
      frame_p95_ms: pct(bench.frames, 0.95),
      frame_max_ms: max(bench.frames),
      longtasks: bench.longtasks.length,
      longtask_max_ms: max(bench.longtasks),
      longtask_total_ms: bench.longtasks.reduce((a, b) => a + b, 0),
      render_median_ms: pct(bench.renders, 0.5),
      render_max_ms: max(bench.renders),
      event_to_row_median_ms: pct(bench.latencies, 0.5),
      event_to_row_p95_ms: pct(bench.latencies, 0.95),
      event_to_row_max_ms: max(bench.latencies),
      events: bench.events,
      events_shown: bench.latencies.length,
    };
  };

  bench.filterAndScroll = async () => {
    const status = document.getElementById("filter-status");
    const choose = async (value) => {
      const started = performance.now();
      status.value = value;
      status.dispatchEvent(new Event("change"));
      await nextFrame();
      return performance.now() - started;
    };
    const filter_ms = await choose("failed");
    const unfilter_ms = await choose("");
    const region = document.querySelector(".table-scroll");
    region.scrollTop = 0;
    await nextFrame();
    const frames = [];
    const started = performance.now();
    let last = started;
    while (region.scrollTop + region.clientHeight < region.scrollHeight - 1 && frames.length < 2000) {
      region.scrollTop += region.clientHeight / 2;
      await new Promise((resolve) => nativeRaf(resolve));
      const now = performance.now();
      frames.push(now - last);
      last = now;
    }
    // At the bottom, the board's last row must be its oldest order, and the rows in its DOM in
    // the order of its state (a windowed board keeps only these; an older page exposes none).
    const board = window.dashboard && window.dashboard.board;
    const inDom = [...document.querySelectorAll("#board tbody tr[data-order-id]")].map((r) => r.dataset.orderId);
    const rows_in_order = board
      ? Number(JSON.stringify(inDom) === JSON.stringify(board.ids().slice(board.window.first, board.window.last))
        && inDom[inDom.length - 1] === board.ids()[board.shown - 1])
      : 1;
    return {
      rows_in_order, rows_in_dom: inDom.length,
      filter_ms, unfilter_ms, scroll_ms: performance.now() - started,
      scroll_frame_p95_ms: pct(frames, 0.95), scroll_frame_max_ms: max(frames),
    };
  };
})();
