// The graph editor: a canvas of functions (Cytoscape.js), edges drawn by dragging (cytoscape-edgehandles),
// automatic layout (cytoscape-dagre), validation as you edit, and saving through the API (POST /graphs, or
// PUT /graphs/<uri> for the draft it opened), whose validator has the last word.
import cytoscape from "cytoscape";
import dagre from "cytoscape-dagre";
import edgehandles from "cytoscape-edgehandles";
import { TERMINAL, followRun, paintStates, stateStyles } from "./runstate.js";

cytoscape.use(dagre);
cytoscape.use(edgehandles);

const config = JSON.parse(document.getElementById("editor-data").textContent);
const editable = config.mode !== "read";
const known = new Map(config.functions.map((f) => [f.id, f]));
const $ = (id) => document.getElementById(id);
const note = (text) => { $("canvas-note").textContent = text; };
// The graph's own elements: not the handle, ghost and preview elements edgehandles draws while an edge is dragged.
const nodes = () => cy.nodes().not(".eh-handle, .eh-ghost, .eh-ghost-node");
const edges = () => cy.edges().not(".eh-ghost-edge, .eh-preview");

const cy = cytoscape({
  container: $("canvas"),
  wheelSensitivity: 0.3,
  minZoom: 0.1,
  maxZoom: 3,
  autoungrabify: !editable,
  style: [
    { selector: "node", style: {
      shape: "round-rectangle", "background-color": "#edf2ff", "border-width": 2, "border-color": "#3b5bdb",
      label: "data(id)", "text-valign": "center", "font-size": 12, color: "#1c2230",
      width: "label", height: 34, padding: "12px" } },
    { selector: "node.unknown", style: { "border-color": "#c92a2a", "background-color": "#fff5f5" } },
    { selector: "node.disconnected", style: { "border-style": "dashed", "border-color": "#e67700" } },
    ...stateStyles,  // a run's trace (?run=): its node states
    { selector: "node:selected", style: { "border-width": 4, "border-color": "#1c2230" } },
    { selector: "edge", style: { width: 2, "line-color": "#5c7cfa", "target-arrow-color": "#5c7cfa",
      "target-arrow-shape": "triangle", "curve-style": "bezier" } },
    { selector: "edge:selected", style: { "line-color": "#1c2230", "target-arrow-color": "#1c2230", width: 4 } },
    { selector: ".eh-handle", style: { "background-color": "#3b5bdb", width: 10, height: 10, shape: "ellipse" } },
    { selector: ".eh-preview, .eh-ghost-edge", style: { "line-color": "#748ffc", "target-arrow-color": "#748ffc",
      "target-arrow-shape": "triangle", "line-style": "dashed" } },
  ],
});

// --- the graph's own fields --------------------------------------------------------------------------------
const form = $("graph-form");
const fieldsOf = ["graph_name", "graph_version", "graph_release_tag", "graph_description"];
const schemaFields = ["graph_input_schema", "graph_output_schema"];
for (const [value, label] of config.merge_modes) $("graph_merge_mode").add(new Option(label, value));
const graph = config.graph;
if (graph) {
  for (const name of fieldsOf) $(name).value = graph[name] || "";
  for (const name of schemaFields) $(name).value = JSON.stringify(graph[name] || {}, null, 2);
  $("graph_merge_mode").value = graph.graph_merge_mode;
  const positions = (graph.graph_metadata && graph.graph_metadata.editor && graph.graph_metadata.editor.positions) || {};
  for (const id of graph.graph_function_ids) addNode(id, positions[id], false);
  for (const [source, targets] of Object.entries(graph.graph_connection_data || {})) {
    for (const target of targets) cy.add({ group: "edges", data: { source, target } });
  }
  if (!Object.keys(positions).length) layout(); else cy.fit(undefined, 40);
} else {
  for (const name of schemaFields) $(name).value = "{}";
  $("graph_release_tag").value = "beta";
}
if (!editable) for (const element of form.elements) element.disabled = true;

// --- nodes and edges ---------------------------------------------------------------------------------------
function addNode(id, position, announce = true) {
  if (cy.getElementById(id).length) {
    note(`${id} is already on the canvas: a function appears once in a graph.`);
    return null;
  }
  const node = cy.add({ group: "nodes", data: { id }, position: position || centre() });
  if (announce) note(`Added ${id}.`);
  changed();
  return node;
}

function centre() {
  const extent = cy.extent();
  const jitter = () => (Math.random() - 0.5) * 60;
  return { x: (extent.x1 + extent.x2) / 2 + jitter(), y: (extent.y1 + extent.y2) / 2 + jitter() };
}

function pathBetween(from, to) {
  // A path from -> ... -> to along the edges, or null: the cycle an edge to -> from would close.
  const seen = new Set([from]);
  const queue = [[from]];
  while (queue.length) {
    const path = queue.shift();
    const last = path[path.length - 1];
    if (last === to) return path;
    for (const edge of cy.getElementById(last).outgoers("edge").not(".eh-ghost-edge, .eh-preview")) {
      const next = edge.target().id();
      if (!seen.has(next)) { seen.add(next); queue.push([...path, next]); }
    }
  }
  return null;
}

function refuseCycle(edge) {
  const source = edge.source().id();
  const target = edge.target().id();
  edge.remove();
  const cycle = source === target ? [source, source] : [...(pathBetween(target, source) || [target, source]), target];
  showIssues([`Refused: the edge ${source} → ${target} would make a cycle (${cycle.join(" → ")}). A graph must stay acyclic.`], "error");
  note("Edge refused: it would make a cycle.");
}

function connect(source, target) {
  if (source === target || pathBetween(target, source)) {
    const edge = cy.add({ group: "edges", data: { source, target } });
    refuseCycle(edge);
    return;
  }
  if (cy.edges(`[source = "${source}"][target = "${target}"]`).length) { note("These two are already connected."); return; }
  cy.add({ group: "edges", data: { source, target } });
  note(`Connected ${source} → ${target}.`);
  changed();
}

let handles = null;
if (editable) {
  handles = cy.edgehandles({
    canConnect: (source, target) => !source.edgesTo(target).length,
    edgeParams: () => ({}),
    snap: true,
    hoverDelay: 50,
  });
  cy.on("ehcomplete", (event, source, target, edge) => {
    // The new edge runs source → target: it closes a cycle when target already reaches source.
    if (source.id() === target.id() || pathBetween(target.id(), source.id())) { refuseCycle(edge); return; }
    note(`Connected ${source.id()} → ${target.id()}.`);
    setTimeout(changed, 0);  // once edgehandles has removed its preview elements
  });
}

function deleteSelected() {
  const selected = cy.$(":selected");
  if (!selected.length) { note("Select a node or an edge first (click it)."); return; }
  note(`Deleted ${selected.length} element${selected.length > 1 ? "s" : ""}.`);
  selected.remove();
  changed();
}

function layout() {
  const started = performance.now();
  cy.layout({ name: "dagre", rankDir: "LR", nodeSep: 30, rankSep: 70, animate: false }).run();
  cy.fit(undefined, 40);
  const took = performance.now() - started;
  $("canvas").dataset.layoutMs = String(Math.round(took));
  return took;
}

function setConnectMode(on) {
  if (!handles) return;
  if (on) handles.enableDrawMode(); else handles.disableDrawMode();
  const button = $("mode-connect");
  button.setAttribute("aria-pressed", String(on));
  button.classList.toggle("primary", on);
  note(on ? "Connect mode: drag from one node to another. Press C or the button again to move nodes." : "Move mode.");
}

// --- validation as you edit ----------------------------------------------------------------------------------
function issues() {
  const found = [];
  nodes().removeClass("unknown disconnected");
  for (const node of nodes()) {
    if (!known.has(node.id())) { node.addClass("unknown"); found.push(`Unknown function ${node.id()}: it is not registered.`); }
    if (nodes().length > 1 && node.connectedEdges().not(".eh-ghost-edge, .eh-preview").length === 0) {
      node.addClass("disconnected");
      found.push(`${node.id()} is disconnected: connect it or delete it.`);
    }
  }
  const order = topological();
  if (!order) found.push("The graph has a cycle.");
  if (!nodes().length) found.push("The canvas is empty: drag a function from the palette.");
  return found;
}

function topological() {
  const indegree = new Map(nodes().map((n) => [n.id(), n.incomers("edge").not(".eh-ghost-edge, .eh-preview").length]));
  const ready = [...indegree].filter(([, d]) => d === 0).map(([id]) => id);
  const order = [];
  while (ready.length) {
    const id = ready.shift();
    order.push(id);
    for (const edge of cy.getElementById(id).outgoers("edge").not(".eh-ghost-edge, .eh-preview")) {
      const t = edge.target().id();
      indegree.set(t, indegree.get(t) - 1);
      if (indegree.get(t) === 0) ready.push(t);
    }
  }
  return order.length === nodes().length ? order : null;
}

function showIssues(list, level = "warning") {
  const box = $("validation");
  box.replaceChildren();
  box.className = `validation ${list.length ? level : "ok"}`;
  if (!list.length) { box.textContent = `Valid: ${nodes().length} nodes, ${edges().length} edges, no cycle.`; return; }
  const ul = document.createElement("ul");
  for (const text of list) { const li = document.createElement("li"); li.textContent = text; ul.append(li); }
  box.append(ul);
}

function changed() {
  showIssues(issues());
  refreshEdgeForm();
}

// --- palette -------------------------------------------------------------------------------------------------
function renderPalette() {
  const list = $("palette");
  if (!list) return;
  const term = $("palette-search").value.trim().toLowerCase();
  list.replaceChildren();
  const shown = config.functions.filter((f) => !term || f.id.toLowerCase().includes(term) || f.policy.toLowerCase().includes(term));
  for (const f of shown) {
    const li = document.createElement("li");
    li.className = "palette-item";
    li.tabIndex = 0;
    li.dataset.id = f.id;
    li.dataset.testid = "palette-item";
    li.setAttribute("role", "button");
    li.innerHTML = "<strong></strong><span class=\"muted small\"></span>";
    li.firstChild.textContent = f.id;
    li.lastChild.textContent = ` ${f.policy} · ${f.status}`;
    list.append(li);
  }
  if (!shown.length) {
    const li = document.createElement("li");
    li.className = "muted small";
    li.textContent = config.functions.length ? "No function matches." : "No function is deployed yet: deploy one (POST /executor/<id>/deploy_function) and reload.";
    list.append(li);
  }
}

function startDrag(event, item) {
  event.preventDefault();
  const ghost = item.cloneNode(true);
  ghost.className = "palette-item ghost";
  document.body.append(ghost);
  const move = (e) => { ghost.style.left = `${e.clientX + 6}px`; ghost.style.top = `${e.clientY + 6}px`; };
  move(event);
  const up = (e) => {
    document.removeEventListener("pointermove", move);
    document.removeEventListener("pointerup", up);
    ghost.remove();
    const box = $("canvas").getBoundingClientRect();
    if (e.clientX < box.left || e.clientX > box.right || e.clientY < box.top || e.clientY > box.bottom) return;
    const pan = cy.pan();
    const zoom = cy.zoom();
    addNode(item.dataset.id, { x: (e.clientX - box.left - pan.x) / zoom, y: (e.clientY - box.top - pan.y) / zoom });
  };
  document.addEventListener("pointermove", move);
  document.addEventListener("pointerup", up);
}

if (editable) {
  renderPalette();
  $("palette-search").addEventListener("input", renderPalette);
  $("palette").addEventListener("pointerdown", (e) => {
    const item = e.target.closest(".palette-item");
    if (item && e.button === 0) startDrag(e, item);
  });
  $("palette").addEventListener("keydown", (e) => {
    const item = e.target.closest(".palette-item");
    if (item && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); addNode(item.dataset.id); }
  });
  $("mode-connect").addEventListener("click", () => setConnectMode($("mode-connect").getAttribute("aria-pressed") !== "true"));
  $("delete").addEventListener("click", deleteSelected);
  $("edge-form").addEventListener("submit", (e) => { e.preventDefault(); connect($("edge-from").value, $("edge-to").value); });
  form.addEventListener("submit", (e) => { e.preventDefault(); save(); });
}

function refreshEdgeForm() {
  if (!$("edge-from")) return;
  for (const select of [$("edge-from"), $("edge-to")]) {
    const keep = select.value;
    select.replaceChildren(...nodes().map((n) => new Option(n.id(), n.id())));
    if (keep) select.value = keep;
  }
}

// --- toolbar and keyboard ------------------------------------------------------------------------------------
$("layout").addEventListener("click", () => { note(`Laid out in ${Math.round(layout())} ms.`); });
$("zoom-in").addEventListener("click", () => cy.zoom({ level: cy.zoom() * 1.2, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } }));
$("zoom-out").addEventListener("click", () => cy.zoom({ level: cy.zoom() / 1.2, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } }));
$("fit").addEventListener("click", () => cy.fit(undefined, 40));
function selectNext() {
  // Keyboard selection: N moves the selection to the next node, in the order they were added.
  const all = nodes();
  if (!all.length) return;
  const current = all.filter(":selected")[0];
  const next = current ? all[(all.indexOf(current) + 1) % all.length] : all[0];
  cy.elements().unselect();
  next.select();
  note(`Selected ${next.id()}.`);
}

$("canvas").addEventListener("keydown", (e) => {
  const keys = {
    n: selectNext,
    Delete: deleteSelected, Backspace: deleteSelected, l: layout, f: () => cy.fit(undefined, 40),
    c: () => setConnectMode($("mode-connect")?.getAttribute("aria-pressed") !== "true"),
    "+": () => $("zoom-in").click(), "=": () => $("zoom-in").click(), "-": () => $("zoom-out").click(),
    ArrowLeft: () => cy.panBy({ x: 40, y: 0 }), ArrowRight: () => cy.panBy({ x: -40, y: 0 }),
    ArrowUp: () => cy.panBy({ x: 0, y: 40 }), ArrowDown: () => cy.panBy({ x: 0, y: -40 }),
  };
  const action = keys[e.key];
  if (action && (editable || !["Delete", "Backspace", "c"].includes(e.key))) { e.preventDefault(); action(); }
});
document.addEventListener("keydown", (e) => {
  if (editable && (e.ctrlKey || e.metaKey) && e.key === "s") { e.preventDefault(); save(); }
});

// --- saving through the API ----------------------------------------------------------------------------------
function fieldError(name, text) {
  const slot = form.querySelector(`[data-error="${name}"]`) || form.querySelector('[data-error="_message"]');
  slot.textContent = text;
}

async function save() {
  for (const slot of form.querySelectorAll("[data-error]")) slot.textContent = "";
  const body = { graph_merge_mode: $("graph_merge_mode").value };
  for (const name of fieldsOf) body[name] = $(name).value.trim();
  let bad = false;
  for (const name of schemaFields) {
    try { body[name] = JSON.parse($(name).value || "{}"); } catch (error) { fieldError(name, `not JSON: ${error.message}`); bad = true; }
  }
  for (const name of ["graph_name", "graph_version", "graph_release_tag"]) {
    if (!body[name]) { fieldError(name, "required"); bad = true; }
  }
  if (!topological()) { fieldError("graph_connection_data", "the graph has a cycle: remove an edge of it"); bad = true; }
  if (bad) return;
  body.graph_function_ids = topological();
  body.graph_connection_data = {};
  for (const edge of edges()) (body.graph_connection_data[edge.source().id()] ||= []).push(edge.target().id());
  const positions = {};
  for (const node of nodes()) positions[node.id()] = node.position();
  body.graph_metadata = { ...(graph && graph.graph_metadata), editor: { positions } };
  // The draft this page opened is changed in place; a new name, version or tag makes a new draft.
  const identity = ["graph_name", "graph_version", "graph_release_tag"];
  const update = config.mode === "update" && identity.every((name) => body[name] === graph[name]);
  const url = update ? `/graphs/${encodeURIComponent(graph.graph_uri)}` : "/graphs";
  const response = await fetch(url, {
    method: update ? "PUT" : "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": form.elements.csrfmiddlewaretoken.value },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({ success: false, message: `HTTP ${response.status}` }));
  if (answer.success) {
    window.location.assign(config.page_url.replace("__uri__", encodeURI(answer.data.graph_uri)));
    return;
  }
  fieldError("_message", answer.message || `HTTP ${response.status}`);
  for (const [name, reasons] of Object.entries(answer.errors || {})) fieldError(name.split(".")[0], reasons.join("; "));
}

changed();

// --- a run's trace (?run=<run_id>): the nodes coloured by that run's node states, following it while it runs --
if (config.run) {
  const trace = config.run;
  const paint = (states) => paintStates(cy, states, $("canvas"));
  paint(trace.nodes);
  note(`Run ${trace.run_id}: ${trace.status}.`);
  if (!TERMINAL.has(trace.status)) {
    followRun(trace.api, (run) => {
      paint(Object.fromEntries(run.nodes.map((n) => [n.node_id, n.status])));
      note(`Run ${trace.run_id}: ${run.status}.`);
    }, (message) => note(`Live updates of the run paused: ${message}`));
  }
}
window.policygridEditor = { cy, nodes, edges, addNode, connect, layout };
