// Live response rate: polls the JSON endpoint and refreshes the numbers. The page works without it.
(function () {
  const root = document.getElementById("response-rate");
  if (!root) return;
  const url = root.dataset.url;
  const cell = (text) => { const td = document.createElement("td"); td.textContent = text; return td; };

  function render(data) {
    for (const [key, value] of Object.entries(data.totals)) {
      const el = root.querySelector(`[data-total="${key}"]`);
      if (el) el.textContent = value === null ? "—" : value;
    }
    const body = root.querySelector("[data-rows]");
    if (body && data.departments.length) {
      body.replaceChildren(...data.departments.map((r) => {
        const tr = document.createElement("tr");
        tr.append(cell(r.label), cell(r.invited), cell(r.opened), cell(r.answered),
          cell(r.rate === null ? "—" : `${r.rate} %`), cell(r.share_answers));
        return tr;
      }));
    }
    if (data.status === "closed") {
      root.querySelector("[data-status]").textContent = "The survey is closed.";
      return false;
    }
    return true;
  }

  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok && !render(await response.json())) return;
    } catch (e) { /* offline for a moment: try again later */ }
    setTimeout(poll, 5000);
  }
  setTimeout(poll, 5000);
})();
