// What the run page and the editor's run trace share: the colour of each node state (the legend's too, in
// pages.css), the Cytoscape style that paints a node by its state, and following a run through the API.
export const STATE_COLOURS = {
  pending: "#adb5bd", running: "#e67700", completed: "#2b8a3e", failed: "#c92a2a", skipped: "#dee2e6",
  cancelled: "#868e96",
};
export const TERMINAL = new Set(["completed", "failed", "cancelled"]);

// Cytoscape selectors: a node whose data has a state is filled with its colour.
export const stateStyles = Object.entries(STATE_COLOURS).map(([state, colour]) => ({
  selector: `node[state = "${state}"]`,
  style: { "background-color": colour, "border-color": colour, color: ["completed", "failed", "running"].includes(state) ? "#fff" : "#1c2230" },
}));

// Paint each node of `cy` with its state ({node_id: state}); the canvas element says them all in data-node-states
// (what the tests, and assistive tools, read without reaching into the canvas).
export function paintStates(cy, states, element) {
  for (const [id, state] of Object.entries(states)) cy.getElementById(id).data("state", state);
  element.dataset.nodeStates = JSON.stringify(Object.fromEntries(cy.nodes().map((n) => [n.id(), n.data("state") || ""])));
}

// Call onRun(run) with GET <api> every `every` ms until the run has ended; onError(message) when a poll fails
// (the next one is still tried: the page keeps following a run through a blip).
export function followRun(api, onRun, onError, every = 1500) {
  const poll = async () => {
    try {
      const answer = await (await fetch(api, { credentials: "same-origin", headers: { Accept: "application/json" } })).json();
      if (!answer.success) throw new Error(answer.message || "the API refused");
      onRun(answer.data);
      if (TERMINAL.has(answer.data.status)) return;
    } catch (error) {
      onError(String(error));
    }
    setTimeout(poll, every);
  };
  setTimeout(poll, every);
}
