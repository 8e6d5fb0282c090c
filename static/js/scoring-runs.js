// Scoring runs page: refresh the rows of queued and running runs until they end.
(() => {
  const rows = () => Array.from(document.querySelectorAll("tr[data-run-url][data-active='1']"));
  const update = (row, run) => {
    row.querySelector("progress").value = run.progress;
    row.querySelector(".run-progress").textContent = `${run.progress}%`;
    row.querySelector(".run-days").textContent = `${run.days_done}/${run.days_total}`;
    row.querySelector(".run-rows").textContent = run.rows_written;
    row.querySelector(".run-duration").textContent = run.duration_seconds === null ? "" : `${run.duration_seconds} s`;
    const status = row.querySelector(".run-status");
    status.textContent = run.stalled ? "stalled" : run.status;
    status.classList.toggle("good", run.status === "succeeded");
    status.classList.toggle("bad", run.status === "failed");
    status.classList.toggle("warn", run.stalled);
    const stall = row.querySelector(".run-stall");
    stall.textContent = run.stall_note;
    stall.hidden = !run.stalled;
    const error = row.querySelector(".run-error");
    error.textContent = run.error;
    error.hidden = !run.error;
    row.dataset.active = run.active ? "1" : "0";
  };
  const poll = async () => {
    const active = rows();
    if (!active.length) return;
    await Promise.all(active.map(async (row) => {
      try {
        const response = await fetch(row.dataset.runUrl, { headers: { Accept: "application/json" } });
        if (response.ok) update(row, await response.json());
      } catch (_) { /* network hiccup: try again on the next tick */ }
    }));
    setTimeout(poll, 2000);
  };
  document.addEventListener("DOMContentLoaded", () => setTimeout(poll, 1000));
})();
