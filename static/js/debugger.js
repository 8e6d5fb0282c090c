// Live debugger: polls the feed every 2 s and prepends new events and rejected messages.
// Rows are built with DOM calls and textContent only: payloads are untrusted client data.
(() => {
  const root = document.getElementById("debugger");
  if (!root) return;
  const list = document.getElementById("debugger-feed");
  const empty = document.getElementById("debugger-empty");
  const status = document.getElementById("debugger-status");
  const pause = document.getElementById("debugger-pause");
  const feedUrl = root.dataset.feedUrl;
  const MAX_ROWS = 200;
  const INTERVAL = 2000;
  let cursor = root.dataset.cursor || "0.0";
  let paused = false;
  let busy = false;

  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  };

  function row(item) {
    const li = el("li", `feed-item ${item.kind === "rejected" ? "rejected" : "event"} fresh`);
    li.dataset.key = item.key;
    const details = el("details");
    const summary = el("summary");
    const time = el("time", "", item.received_label);
    time.dateTime = item.received_at;
    summary.append(time, " ");
    if (item.kind === "rejected") {
      const source = item.source && item.source !== "api" ? ` (${item.source})` : "";
      summary.append(el("span", "badge bad", `rejected${source}`), " ", el("span", "reason", item.reason));
    } else {
      summary.append(el("span", "badge", item.type), " ", el("strong", "", item.name), " ",
        el("span", "muted", "by"), " ", el("span", "user", item.user));
    }
    summary.append(" ", el("code", "mid", item.message_id));
    details.append(summary, el("pre", "", JSON.stringify(item.payload, null, 2)));
    li.append(details);
    return li;
  }

  function show(items) {
    // The feed is newest first: insert from the oldest so the newest ends on top.
    for (const item of items.slice().reverse()) {
      if (list.querySelector(`[data-key="${item.key}"]`)) continue;
      list.prepend(row(item));
    }
    while (list.children.length > MAX_ROWS) list.lastElementChild.remove();
    if (list.children.length && empty) empty.hidden = true;
  }

  async function poll() {
    if (paused || busy || document.hidden) return;
    busy = true;
    try {
      const response = await fetch(`${feedUrl}?after=${encodeURIComponent(cursor)}`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const data = await response.json();
      cursor = data.cursor;
      show(data.items);
      status.textContent = `Live: checked ${new Date().toLocaleTimeString()}. ${data.items.length ? `${data.items.length} new.` : "No new events."}`;
    } catch (error) {
      status.textContent = `Cannot reach the server (${error.message}); retrying every 2 seconds. Reload if you were logged out.`;
    } finally {
      busy = false;
    }
  }

  if (pause) {
    pause.hidden = false;
    pause.addEventListener("click", () => {
      paused = !paused;
      pause.textContent = paused ? "Resume" : "Pause";
      status.textContent = paused ? "Paused." : "Resuming…";
      if (!paused) poll();
    });
  }
  setInterval(poll, INTERVAL);
})();
