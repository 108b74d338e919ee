"""A graph run in the portal, in Debian's chromium (Playwright) against the embedded system started for real (portal,
worker, beat and the local executor service) with three functions of the graph tests' node policy: an operator
starts a run of a 3-node graph from its version's page, its page follows it live until every node is coloured
``completed`` on the Cytoscape canvas and the Gantt timeline has a bar per node; a node's details on click; the
trace on the editor canvas. Screenshots in test-artifacts/portal/; no console error, no CSP violation."""
import json

import pytest
from playwright.sync_api import expect

from tests.functions.conftest import push_and_approve, user_session
from tests.graphs.conftest import NODE, NODE_RECORD, NODE_URI, GraphSystem
from tests.pages.test_browser_functions import logins, sign_in
from tests.pages.test_browser_portal import shot
from tests.portal.test_embedded import start_embedded

pytestmark = [pytest.mark.browser, pytest.mark.slow]
NODES = ("run-root", "run-left", "run-right")


@pytest.fixture(scope="module")
def run_system(tmp_path_factory):
    for started in start_embedded(tmp_path_factory.mktemp("graph-runs-state")):
        system = GraphSystem(started)
        push_and_approve(system, tmp_path_factory.mktemp("graphnode"), NODE, NODE_URI, NODE_RECORD)
        system.reviewer = user_session(system, "demo-reviewer")
        system.deploy_nodes(NODES)
        yield system


def node_states(page, selector) -> dict:
    return json.loads(page.get_attribute(selector, "data-node-states") or "{}")


def test_a_run_started_from_the_portal_is_drawn_live_until_completed(browser, run_system):
    system = run_system
    root, left, right = NODES
    uri = system.register(NODES, {root: [left, right]})
    context, page = sign_in(browser, system.base, "demo-operator", logins(system)["demo-operator"])

    # The Run form of the version's page: an asynchronous run, then its page.
    page.goto(f"{system.base}/portal/graph/{uri}/")
    # The right node sleeps a while: the page opens on a run still under way and has to follow it.
    page.fill("[data-testid=run-input-field]", json.dumps({"control": {"sleep": {right: 1.5}}}))
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
    control = {"sleep": {root: 1.5}, "fail_first": {left: system.count(left) + 1}}
    started = system.execute(uri, {"control": control}, **{"async": True})
    assert started.status_code == 202, started.json()
    run_id = started.json()["run_id"]
    context, page = sign_in(browser, system.base, "demo-operator", logins(system)["demo-operator"])
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
