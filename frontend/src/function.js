// A function's page: its status and message follow the API while it is deploying or being removed (the page
// reloads when that ends, to offer what a ready function allows), its replicas are refreshed every few seconds,
// the logs on demand, and the management form shows the data inputs of the chosen command.
const live = document.getElementById("function-live");
const get = async (url) => (await fetch(url, { credentials: "same-origin" })).json();
const note = document.getElementById("live-note");

const cell = (text, className) => {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
};

if (live) {
  const api = live.dataset.api;
  const active = new Set(["deploying", "removing"]);
  const statusEl = document.getElementById("function-status");
  const rows = document.getElementById("replica-rows");
  let status = live.dataset.status;
  // Once a form is sent (remove, call, manage) the page is being replaced: no more polls, which could reach a
  // function the sent form has just removed (a 404 in the console).
  let leaving = false;
  document.addEventListener("submit", (event) => { if (!event.defaultPrevented) leaving = true; });
  window.addEventListener("pagehide", () => { leaving = true; });

  const pollStatus = async () => {
    if (leaving) return;
    try {
      const answer = await get(api);
      if (answer.success) {
        const data = answer.data;
        statusEl.textContent = data.function_status;
        statusEl.className = `badge status-${data.function_status}`;
        document.getElementById("function-message").textContent = data.function_message || "—";
        if (active.has(status) && !active.has(data.function_status)) {
          window.location.reload();
          return;
        }
        status = data.function_status;
      } else if (answer.error_type === "not_found" || answer.message) {
        note.textContent = answer.message || "gone";
        return;
      }
    } catch (error) {
      note.textContent = `live updates paused: ${error}`;
    }
    setTimeout(pollStatus, active.has(status) ? 1000 : 5000);
  };

  const pollReplicas = async () => {
    if (leaving) return;
    try {
      const answer = await get(`${api}/replicas`);
      if (answer.success) {
        rows.replaceChildren();
        for (const replica of answer.data.replicas) {
          const tr = document.createElement("tr");
          tr.dataset.testid = "replica-row";
          const badge = document.createElement("span");
          badge.className = `badge status-${replica.state}`;
          badge.textContent = replica.state;
          const state = cell("");
          state.append(badge);
          tr.append(cell(String(replica.replica ?? ""), "mono"), state, cell(String(replica.restarts ?? 0)),
            cell(replica.message || "", "small"));
          rows.append(tr);
        }
        if (!answer.data.replicas.length) {
          const tr = document.createElement("tr");
          tr.append(cell(answer.data.message || `no replica (${answer.data.state})`, "muted small"));
          tr.firstChild.colSpan = 4;
          rows.append(tr);
        }
      } else {
        rows.replaceChildren();
        const tr = document.createElement("tr");
        tr.append(cell(answer.message || "the runtime did not answer", "field-error small"));
        tr.firstChild.colSpan = 4;
        rows.append(tr);
      }
    } catch (error) {
      note.textContent = `live updates paused: ${error}`;
    }
    setTimeout(pollReplicas, 3000);
  };

  const logs = document.getElementById("function-logs");
  const tail = document.getElementById("log-tail");
  const refreshLogs = async () => {
    try {
      const answer = await get(`${live.dataset.logs}?tail=${encodeURIComponent(tail.value || "200")}`);
      logs.textContent = answer.success ? (answer.logs || "(no log lines yet)") : `(the logs can't be read now: ${answer.message})`;
      logs.scrollTop = logs.scrollHeight;
    } catch (error) {
      logs.textContent = `(the logs can't be read now: ${error})`;
    }
  };
  document.getElementById("log-refresh").addEventListener("click", refreshLogs);
  refreshLogs();
  pollReplicas();
  setTimeout(pollStatus, active.has(status) ? 500 : 5000);
}

// The management form: only the chosen command's data inputs are shown and sent.
const action = document.getElementById("action");
if (action) {
  const show = () => {
    for (const fieldset of document.querySelectorAll("fieldset[data-command]")) {
      const chosen = fieldset.dataset.command === action.value;
      fieldset.hidden = !chosen;
      fieldset.disabled = !chosen;
    }
  };
  action.addEventListener("change", show);
  show();
}
