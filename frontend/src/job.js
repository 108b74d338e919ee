// A job's page: while the job is pending or running, its status, output and logs follow the API (fetch).
const live = document.getElementById("job-live");
if (live && live.dataset.active === "true") {
  const api = live.dataset.api;
  const statusEl = document.getElementById("job-status");
  const note = document.getElementById("live-note");
  const terminal = new Set(["completed", "failed", "cancelled", "lost"]);
  const poll = async () => {
    try {
      const [job, logs] = await Promise.all([
        fetch(api, { credentials: "same-origin" }).then((r) => r.json()),
        fetch(`${api}/logs?tail=${live.dataset.tail}`, { credentials: "same-origin" }).then((r) => r.json()),
      ]);
      if (job.success) {
        const data = job.data;
        statusEl.textContent = data.job_status;
        statusEl.className = `badge status-${data.job_status}`;
        document.getElementById("job-output").textContent =
          data.job_output_data == null ? "—" : JSON.stringify(data.job_output_data, null, 2);
        document.getElementById("job-error").textContent = data.job_error || "";
        if (terminal.has(data.job_status)) {
          note.textContent = "finished";
          document.getElementById("cancel-form")?.remove();
          return;
        }
      }
      if (logs.success) document.getElementById("job-logs").textContent = logs.logs || "(no log lines yet)";
    } catch (error) {
      note.textContent = `live updates paused: ${error}`;
    }
    setTimeout(poll, 2000);
  };
  setTimeout(poll, 2000);
}
