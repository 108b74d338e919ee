// A graph run's page: its DAG (Cytoscape + dagre) with each node coloured by its state, a node's details on click,
// and a timeline of node durations (Chart.js floating bars from the run's start), both following
// GET /graph/runs/<run_id> while the run is pending or running.
import cytoscape from "cytoscape";
import dagre from "cytoscape-dagre";
import { BarController, BarElement, CategoryScale, Chart, LinearScale, Tooltip } from "chart.js";
import { STATE_COLOURS, TERMINAL, followRun, paintStates, stateStyles } from "./runstate.js";

cytoscape.use(dagre);
Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip);

const $ = (id) => document.getElementById(id);
const page = JSON.parse($("run-data").textContent);
let run = page.run;
let selected = null;
const byId = () => Object.fromEntries(run.nodes.map((n) => [n.node_id, n]));
const ms = (value) => (value == null ? "—" : `${Number(value).toFixed(1)} ms`);
const when = (iso) => (iso ? new Date(iso).toISOString().slice(0, 19).replace("T", " ") : "—");
const json = (value) => (value == null ? "—" : JSON.stringify(value, null, 2));

// --- the DAG ---------------------------------------------------------------------------------------------------
const dag = $("run-dag");
const cy = cytoscape({
  container: dag,
  autoungrabify: true,
  wheelSensitivity: 0.3,
  minZoom: 0.2,
  maxZoom: 1.5,  // fitting a small graph would otherwise blow its nodes up
  elements: [
    ...page.ids.map((id) => ({ group: "nodes", data: { id } })),
    ...Object.entries(page.parents).flatMap(([child, parents]) =>
      parents.map((parent) => ({ group: "edges", data: { source: parent, target: child } }))),
  ],
  style: [
    { selector: "node", style: {
      shape: "round-rectangle", "background-color": "#edf2ff", "border-width": 2, "border-color": "#3b5bdb",
      label: "data(id)", "text-valign": "center", "font-size": 12, color: "#1c2230", width: "label", height: 34,
      padding: "12px" } },
    ...stateStyles,
    { selector: "node:selected", style: { "border-width": 4, "border-color": "#1c2230" } },
    { selector: "edge", style: { width: 2, "line-color": "#868e96", "target-arrow-color": "#868e96",
      "target-arrow-shape": "triangle", "curve-style": "bezier" } },
  ],
});
cy.layout({ name: "dagre", rankDir: "LR", nodeSep: 30, rankSep: 70, animate: false }).run();
cy.fit(undefined, 30);

function showNode(id) {
  const node = byId()[id];
  const box = $("node-detail");
  box.replaceChildren();
  if (!node) return;
  const title = document.createElement("h3");
  title.textContent = `${id} · ${node.status}`;
  const facts = document.createElement("dl");
  facts.className = "kv small";
  const rows = [["Attempts", String(node.attempt)], ["Run attempt", String(node.run_attempt)],
    ["Started", when(node.started_at)], ["Finished", when(node.finished_at)], ["Duration", ms(node.duration_ms)]];
  if (node.error) rows.push(["Error", `${node.error_type}: ${node.error}`]);
  for (const [name, value] of rows) {
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = name;
    dd.textContent = value;
    facts.append(dt, dd);
  }
  box.append(title, facts);
  for (const [name, value] of [["Input", node.input], ["Output", node.output]]) {
    const head = document.createElement("h4");
    const pre = document.createElement("pre");
    head.textContent = name;
    pre.className = "output";
    pre.dataset.testid = `node-${name.toLowerCase()}`;
    pre.textContent = json(value);
    box.append(head, pre);
  }
}
cy.on("tap", "node", (event) => { selected = event.target.id(); showNode(selected); });

// --- the timeline ----------------------------------------------------------------------------------------------
// Each node from its start to its end (now, while it runs), in ms from the run's start; a node that has not
// started has no bar.
function bars() {
  const starts = run.nodes.map((n) => n.started_at).filter(Boolean).map((t) => Date.parse(t));
  const origin = run.started_at ? Date.parse(run.started_at) : Math.min(...starts);
  return run.nodes.map((n) => {
    if (!n.started_at) return null;
    const end = n.finished_at ? Date.parse(n.finished_at) : Date.now();
    return [Date.parse(n.started_at) - origin, Math.max(end, Date.parse(n.started_at)) - origin];
  });
}
const gantt = $("run-gantt");
const chart = new Chart(gantt, {
  type: "bar",
  data: { labels: run.nodes.map((n) => n.node_id), datasets: [{ label: "node", data: bars(), borderSkipped: false,
    backgroundColor: run.nodes.map((n) => STATE_COLOURS[n.status] || "#adb5bd"), minBarLength: 2 }] },
  options: {
    indexAxis: "y",
    animation: false,
    maintainAspectRatio: false,
    scales: { x: { beginAtZero: true, title: { display: true, text: "ms from the run's start" } } },
    plugins: { tooltip: { callbacks: { label: (item) => {
      const node = run.nodes[item.dataIndex];
      return `${node.status}: ${ms(node.duration_ms ?? (item.raw ? item.raw[1] - item.raw[0] : null))}`;
    } } } },
  },
});
function drawTimeline() {
  chart.data.labels = run.nodes.map((n) => n.node_id);
  chart.data.datasets[0].data = bars();
  chart.data.datasets[0].backgroundColor = run.nodes.map((n) => STATE_COLOURS[n.status] || "#adb5bd");
  chart.update("none");
  gantt.dataset.bars = String(chart.data.datasets[0].data.filter(Boolean).length);
  gantt.dataset.ready = "true";
}

// --- the rest of the page --------------------------------------------------------------------------------------
function showRun() {
  paintStates(cy, Object.fromEntries(run.nodes.map((n) => [n.node_id, n.status])), dag);
  drawTimeline();
  const status = $("run-status");
  status.textContent = run.status;
  status.className = `badge status-${run.status}`;
  $("run-attempt").textContent = String(run.attempt);
  $("run-output").textContent = json(run.output);
  $("run-error").textContent = run.error ? `${run.error_type}: ${run.error}` : "";
  $("run-failed-node").textContent = run.failed_node || "—";
  $("run-started").textContent = when(run.started_at);
  $("run-finished").textContent = when(run.finished_at);
  $("run-duration").textContent = ms(run.duration_ms);
  for (const node of run.nodes) {
    const row = document.querySelector(`#node-rows tr[data-node="${CSS.escape(node.node_id)}"]`);
    if (!row) continue;
    row.dataset.status = node.status;
    row.cells[1].firstElementChild.textContent = node.status;
    row.cells[1].firstElementChild.className = `badge status-${node.status}`;
    row.cells[2].textContent = String(node.attempt);
    row.cells[3].textContent = ms(node.duration_ms);
  }
  if (selected) showNode(selected);
  if (TERMINAL.has(run.status)) {
    $("cancel-form")?.remove();
    // Retry (shown to whom may retry) once the run has failed or was cancelled.
    if (run.status !== "completed") $("retry-form")?.removeAttribute("hidden");
  }
}
showRun();

if (page.active) {
  const note = $("live-note");
  followRun(page.api, (fresh) => {
    run = fresh;
    showRun();
    note.textContent = TERMINAL.has(run.status) ? "finished" : "updating live";
  }, (message) => { note.textContent = `live updates paused: ${message}`; });
}
window.policygridRun = { cy, chart };
