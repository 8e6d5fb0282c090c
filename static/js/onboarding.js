// Ticks the onboarding checklist live (e.g. "first event received") without a reload.
// Polls the status JSON every 3 s while a step is still to do; stops when all are done.
(function () {
  const box = document.getElementById("checklist");
  if (!box || !box.dataset.statusUrl) return;
  let timer = null;
  function apply(state) {
    let done = 0;
    Object.entries(state.steps).forEach(([key, isDone]) => {
      const item = box.querySelector(`[data-step="${key}"]`);
      if (!item) return;
      if (isDone) done += 1;
      item.classList.toggle("done", isDone);
      item.classList.toggle("todo", !isDone);
      item.querySelector(".mark").textContent = isDone ? "✓" : "○";
      item.querySelector(".state").textContent = isDone ? "done" : "to do";
    });
    const count = box.querySelector("[data-done-count]");
    if (count) count.textContent = String(done);
    if (state.complete && timer) { clearInterval(timer); timer = null; }
  }
  function poll() {
    fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))
      .then((state) => { if (state) apply(state); })
      .catch(() => {});
  }
  if (box.querySelector(".step.todo")) timer = setInterval(poll, 3000);
})();
