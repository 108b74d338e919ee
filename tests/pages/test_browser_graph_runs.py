"""A graph run in the portal, in Debian's chromium (Playwright) against the embedded system started for real (portal,
worker, beat and the local executor service) with four functions of the graph tests' node policy: a 4-node graph
drawn by drag-and-drop in the editor, submitted by its author, approved by a reviewer and run by an operator to
completion; an operator starts a run of a 3-node graph from its version's page, its page follows it live until
every node is coloured ``completed`` on the Cytoscape canvas and the Gantt timeline has a bar per node; a node's
details on click; the trace on the editor canvas; a failed run retried. Screenshots in test-artifacts/portal/; no
console error, no CSP violation."""
import json

import pytest
from playwright.sync_api import expect

from tests.functions.conftest import push_and_approve, user_session
from tests.graphs.conftest import NODE, NODE_RECORD, NODE_URI, GraphSystem
from tests.pages.dragdrop import draw_edges, drop_functions
from tests.pages.test_browser_functions import logins, sign_in
from tests.pages.test_browser_portal import shot
from tests.portal.test_embedded import start_embedded

pytestmark = [pytest.mark.browser, pytest.mark.slow]
NODES = ("run-root", "run-left", "run-right")
JOIN = "run-join"  # the fourth node of the drawn graph, below both branches
COMPLETED = "#2b8a3e"  # runstate.js' colour of a completed node, on the canvas and the timeline alike


@pytest.fixture(scope="module")
def run_system(tmp_path_factory):
    for started in start_embedded(tmp_path_factory.mktemp("graph-runs-state")):
        system = GraphSystem(started)
        push_and_approve(system, tmp_path_factory.mktemp("graphnode"), NODE, NODE_URI, NODE_RECORD)
        system.reviewer = user_session(system, "demo-reviewer")
        system.deploy_nodes((*NODES, JOIN))
        yield system


def node_states(page, selector) -> dict:
    return json.loads(page.get_attribute(selector, "data-node-states") or "{}")


def timeline(page) -> dict[str, dict]:
    """The Gantt chart's bars by node: [start, end] in ms from the run's start, and the bar's colour."""
    return page.evaluate("""() => {
        const data = window.policygridRun.chart.data;
        return Object.fromEntries(data.labels.map((node, i) => [node,
            {bar: data.datasets[0].data[i], colour: data.datasets[0].backgroundColor[i]}]));
    }""")


def test_a_graph_drawn_by_drag_and_drop_is_reviewed_run_and_completes(browser, run_system):
    system, passwords = run_system, logins(run_system)
    root, left, right = NODES
    diamond = ((root, left), (root, right), (left, JOIN), (right, JOIN))

    # The author draws it: four functions dragged from the palette, four edges dragged between them; a draft.
    context, page = sign_in(browser, system.base, "demo-author", passwords["demo-author"])
    page.goto(f"{system.base}/portal/graphs/editor/")
    drop_functions(page, {root: (0.15, 0.5), left: (0.45, 0.25), right: (0.45, 0.75), JOIN: (0.8, 0.5)})
    draw_edges(page, diamond)
    expect(page.locator("[data-testid=validation]")).to_contain_text("Valid: 4 nodes, 4 edges")
    shot(page, "graph-drawn-for-a-run")
    page.fill("[data-testid=graph-name]", "drawn-diamond")
    page.fill("[data-testid=graph-version]", "1.0")
    page.click("[data-testid=save]")
    uri = "drawn-diamond:1.0-beta"
    page.wait_for_url(f"**/portal/graph/{uri}/", timeout=60_000)
    expect(page.locator("[data-testid=status]")).to_have_text("Draft")
    saved = system.get(f"/graphs/{uri}").json()["data"]
    assert sorted(saved["graph_function_ids"]) == sorted((*NODES, JOIN))
    assert {(s, t) for s, targets in saved["graph_connection_data"].items() for t in targets} == set(diamond)
    page.fill("#submit-comment", "Drawn in the editor, to run")
    page.click("[data-testid=submit]")
    expect(page.locator(".messages")).to_contain_text(f"{uri} submitted for review", timeout=30_000)
    assert not page.problems, page.problems
    context.close()

    # A reviewer, not its author, approves it from its page.
    context, page = sign_in(browser, system.base, "demo-reviewer", passwords["demo-reviewer"])
    page.goto(f"{system.base}/portal/graph/{uri}/")
    page.fill("#comment", "A diamond: both branches join.")
    page.click("[data-testid=approve]")
    expect(page.locator(".messages")).to_contain_text(f"{uri} approved.", timeout=30_000)
    expect(page.locator("[data-testid=status]")).to_have_text("Approved")
    assert not page.problems, page.problems
    context.close()

    # An operator runs it from the version's page; the run's page follows it until every node has completed.
    context, page = sign_in(browser, system.base, "demo-operator", passwords["demo-operator"])
    page.goto(f"{system.base}/portal/graph/{uri}/")
    # A branch sleeps a while: the page opens on a run under way and has to follow it.
    page.fill("[data-testid=run-input-field]", json.dumps({"control": {"sleep": {right: 1.0}, "tag": "drawn"}}))
    page.click("[data-testid=run]")
    page.wait_for_url("**/portal/graphs/runs/*/", timeout=60_000)
    run_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    expect(page.locator("#run-status")).to_have_text("completed", timeout=120_000)
    expect(page.locator("[data-testid=node-row][data-status=completed]")).to_have_count(4)
    expect(page.locator("#run-gantt")).to_have_attribute("data-bars", "4")
    assert node_states(page, "#run-dag") == {node: "completed" for node in (*NODES, JOIN)}
    bars = timeline(page)
    assert set(bars) == {*NODES, JOIN} and {bar["colour"] for bar in bars.values()} == {COMPLETED}, bars
    # The timeline keeps the graph's order: the join starts once both branches have ended.
    assert bars[JOIN]["bar"][0] >= max(bars[left]["bar"][1], bars[right]["bar"][1]) - 1, bars
    assert bars[root]["bar"][1] <= min(bars[left]["bar"][0], bars[right]["bar"][0]) + 1, bars
    output = page.inner_text("#run-output")
    assert f'"node": "{JOIN}"' in output and '"tag": "drawn"' in output
    shot(page, "graph-drawn-run-completed")
    api = system.run(run_id)
    assert api["status"] == "completed" and api["actor"] == "demo-operator"
    assert {n["node_id"]: n["status"] for n in api["nodes"]} == {node: "completed" for node in (*NODES, JOIN)}
    # The version's audit history: its author drew and submitted it, another person approved it, a third ran it.
    history = [(entry["action"].rsplit(".", 1)[-1], entry["actor"])
               for entry in system.get(f"/graphs/{uri}/history").json()["data"]]
    assert history == [("create", "demo-author"), ("submit", "demo-author"), ("approve", "demo-reviewer"),
                       ("run_start", "demo-operator"), ("run_finish", "demo-operator")], history
    assert not page.problems, page.problems
    context.close()


def test_a_run_started_from_the_portal_is_drawn_live_until_completed(browser, run_system):
    system = run_system
    root, left, right = NODES
    uri = system.register(NODES, {root: [left, right]})
    context, page = sign_in(browser, system.base, "demo-operator", logins(system)["demo-operator"])

    # The Run form of the version's page: an asynchronous run, then its page.
    page.goto(f"{system.base}/portal/graph/{uri}/")
    # The right node sleeps a while: the page opens on a run still under way and has to follow it.
    page.fill("[data-testid=run-input-field]", json.dumps({"control": {"sleep": {right: 3}}}))
    page.click("[data-testid=run]")
    page.wait_for_url("**/portal/graphs/runs/*/")
    run_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert page.locator("[data-testid=cancel]").count() == 1  # under way: it can be cancelled

    expect(page.locator("#run-status")).to_have_text("completed", timeout=90_000)
    expect(page.locator("#live-note")).to_have_text("finished")  # it was followed live, not just loaded
    assert node_states(page, "#run-dag") == {node: "completed" for node in NODES}
    expect(page.locator("[data-testid=node-row][data-status=completed]")).to_have_count(3)
    assert page.get_attribute("#run-gantt", "data-ready") == "true"
    assert page.get_attribute("#run-gantt", "data-bars") == "3"
    assert page.locator("[data-testid=cancel]").count() == 0 and not page.is_visible("[data-testid=retry]")
    assert '"node": "run-left"' in page.inner_text("#run-output")
    api = system.run(run_id)
    assert api["status"] == "completed" and {n["status"] for n in api["nodes"]} == {"completed"}

    # A node's details: click it on the canvas.
    position = page.evaluate(f"window.policygridRun.cy.getElementById('{right}').renderedPosition()")
    box = page.locator("#run-dag").bounding_box()
    page.mouse.click(box["x"] + position["x"], box["y"] + position["y"])
    expect(page.locator("[data-testid=node-detail] h3")).to_have_text(f"{right} · completed")
    assert f'"node": "{right}"' in page.inner_text("[data-testid=node-output]")
    assert '"node": "run-root"' in page.inner_text("[data-testid=node-input]")  # its parent's output
    shot(page, "graph-run")

    # The same run's trace on the editor canvas.
    page.click("[data-testid=open-trace]")
    page.wait_for_url(f"**/portal/graphs/editor/{uri}/?run={run_id}")
    page.wait_for_selector("#canvas[data-node-states]")
    assert node_states(page, "#canvas") == {node: "completed" for node in NODES}
    assert page.locator("[data-testid=save]").count() == 0  # read-only
    shot(page, "graph-run-trace")

    # The runs list has it.
    page.goto(f"{system.base}/portal/graphs/runs/?graph_uri={uri}")
    assert run_id in page.inner_text("[data-testid=run-list]")
    assert not page.problems, page.problems
    context.close()

    # A viewer reads the run page without any button.
    viewer_context, viewer = sign_in(browser, system.base, "demo-viewer", logins(system)["demo-viewer"])
    viewer.goto(f"{system.base}/portal/graphs/runs/{run_id}/")
    viewer.wait_for_selector("#run-gantt[data-ready=true]")
    assert node_states(viewer, "#run-dag") == {node: "completed" for node in NODES}
    assert viewer.locator("[data-testid=cancel], [data-testid=retry], [data-testid=run-form]").count() == 0
    assert not viewer.problems, viewer.problems
    viewer_context.close()


def test_a_failed_run_offers_retry_live_and_retrying_completes_it(browser, run_system):
    system = run_system
    root, left, _ = NODES
    uri = system.register((root, left), {root: [left]})
    # The left node's next call fails (its calls are counted by its instance), the one after succeeds; the root
    # sleeps so that the page opens while the run is still under way.
    # Signed in first, and a root that sleeps long enough for a loaded machine to open the page in time.
    context, page = sign_in(browser, system.base, "demo-operator", logins(system)["demo-operator"])
    control = {"sleep": {root: 5}, "fail_first": {left: system.count(left) + 1}}
    started = system.execute(uri, {"control": control}, **{"async": True})
    assert started.status_code == 202, started.json()
    run_id = started.json()["run_id"]
    page.goto(f"{system.base}/portal/graphs/runs/{run_id}/")
    assert not page.is_visible("[data-testid=retry]")

    expect(page.locator("#run-status")).to_have_text("failed", timeout=90_000)
    expect(page.locator("[data-testid=retry]")).to_be_visible()  # shown live, once the run has failed
    assert page.locator("[data-testid=cancel]").count() == 0
    assert page.inner_text("#run-failed-node") == left
    assert node_states(page, "#run-dag") == {root: "completed", left: "failed"}
    assert "fails its call" in page.inner_text("#run-error")
    shot(page, "graph-run-failed")

    page.click("[data-testid=retry]")
    page.wait_for_url(f"**/portal/graphs/runs/{run_id}/")
    assert "Attempt 2 started" in page.inner_text(".messages")
    expect(page.locator("#run-status")).to_have_text("completed", timeout=90_000)
    assert node_states(page, "#run-dag") == {root: "completed", left: "completed"}
    assert page.inner_text("#run-attempt") == "2"
    assert system.run(run_id)["attempt"] == 2
    assert not page.problems, page.problems
    context.close()
