// CSV import progress: polls the job's status endpoint and updates the bar and counters
// (and the rows read while the preview is being prepared).
(() => {
  const root = document.getElementById("import-progress");
  if (!root || root.dataset.finished === "1") return;
  const bar = document.getElementById("import-bar");
  const url = root.dataset.statusUrl;

  function update(data) {
    for (const node of root.querySelectorAll("[data-field]")) {
      const value = data[node.dataset.field];
      if (value === undefined) continue;
      node.textContent = String(value);
      if (node.dataset.field === "error") node.hidden = !value;
    }
    if (bar) {
      bar.value = data.percent;
      bar.textContent = `${data.percent}%`;
    }
  }

  async function poll() {
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const data = await response.json();
      update(data);
      // Reload when the preview is ready or the job has ended: the server renders those states.
      const scanned = root.dataset.status === "scanning" && data.status !== "scanning";
      if (data.finished || scanned) { window.location.reload(); return; }
    } catch (error) {
      // A transient failure: keep polling.
    }
    setTimeout(poll, 1500);
  }
  setTimeout(poll, 1000);
})();
