"""The graph run pages without a browser: the runs list and a run's page for each role, 404 for unknown runs, the
Cancel and Retry buttons only for whom the services allow (a viewer's POST is 403 and changes nothing), cancel
and retry from the page change the run, the Run form of a version's page (a draft's dry run for its author) and
its refusal of malformed JSON, and the editor's run trace. Runs started here stay queued: nothing runs them."""
import json
import uuid

import pytest

from governance import lifecycle
from graphs.models import Graph, GraphRun
from tests.pages.conftest import make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved_graph(world, users):
    graph = world["graph"]
    lifecycle.submit(graph, users["author"], "ready")
    return lifecycle.approve(Graph.objects.get(pk=graph.pk), users["reviewer"], "fine")


def start_form(client, graph, input_data, **extra):
    return client.post(f"/portal/graphs/run/{graph.graph_uri}/", {"input_data": input_data, **extra})


def test_the_runs_list_and_a_runs_page_answer_each_role(approved_graph, page_client, users):
    older = make_run(approved_graph, users["operator"], "completed", {n: "completed" for n in approved_graph.graph_function_ids})
    newer = make_run(approved_graph, users["operator"], "failed", {"fetch-ip": "completed", "score-ip": "failed"},
                     failed_node="score-ip", error="boom", error_type="node_failed")
    for role in ("viewer", "author", "reviewer", "operator", "admin"):
        client = page_client(role)
        listed = client.get("/portal/graphs/runs/")
        assert listed.status_code == 200, role
        text = listed.content.decode()
        assert text.index(str(newer.run_id)) < text.index(str(older.run_id)), "newest first"
        assert client.get(f"/portal/graphs/runs/{newer.run_id}/").status_code == 200, role
    assert page_client("norole").get("/portal/graphs/runs/").status_code == 403
    assert page_client("norole").get(f"/portal/graphs/runs/{newer.run_id}/").status_code == 403
    failed_only = page_client("viewer").get("/portal/graphs/runs/?status=failed").content.decode()
    assert str(newer.run_id) in failed_only and str(older.run_id) not in failed_only
    by_graph = page_client("viewer").get("/portal/graphs/runs/?graph_uri=nope:1.0-x").content.decode()
    assert str(newer.run_id) not in by_graph and 'data-testid="empty"' in by_graph
    assert 'href="/portal/graphs/runs/"' in page_client("viewer").get("/portal/graphs/").content.decode()


def test_a_runs_page_shows_its_graph_nodes_and_failure(approved_graph, page_client, users):
    run = make_run(approved_graph, users["operator"], "failed", {"fetch-ip": "completed", "score-ip": "failed",
                                                                 "geo-ip": "completed", "decide": "skipped"},
                   failed_node="score-ip", error="score-ip was told to fail", error_type="node_failed")
    response = page_client("viewer").get(f"/portal/graphs/runs/{run.run_id}/")
    text = response.content.decode()
    assert f'href="/portal/graph/{approved_graph.graph_uri}/"' in text
    assert "score-ip was told to fail" in text and 'data-testid="failed-node">score-ip<' in text
    assert 'data-node="decide" data-status="skipped"' in text and 'data-node="fetch-ip" data-status="completed"' in text
    data = response.context["data"]
    assert data["api"] == f"/graph/runs/{run.run_id}" and data["active"] is False
    assert data["parents"]["decide"] == ["score-ip", "geo-ip"]
    assert {n["node_id"]: n["status"] for n in data["run"]["nodes"]}["score-ip"] == "failed"
    assert f'/portal/graphs/editor/{approved_graph.graph_uri}/?run={run.run_id}' in text
    assert "<script>" not in text  # the data goes by json_script: the CSP allows no inline script


def test_unknown_runs_answer_404(world, page_client):
    client = page_client("operator")
    for key in (str(uuid.UUID(int=0)), "not-a-uuid"):
        assert client.get(f"/portal/graphs/runs/{key}/").status_code == 404, key
        assert client.post(f"/portal/graphs/runs/{key}/cancel/").status_code == 404, key
        assert client.post(f"/portal/graphs/runs/{key}/retry/").status_code == 404, key
    assert client.get(f"/portal/graphs/editor/{world['graph'].graph_uri}/?run={uuid.UUID(int=0)}").status_code == 404


def test_cancel_and_retry_are_shown_only_to_whom_may_and_a_viewers_post_is_403(approved_graph, page_client, users):
    active = make_run(approved_graph, users["operator"], "running", {"fetch-ip": "running"})
    failed = make_run(approved_graph, users["operator"], "failed", {"fetch-ip": "failed"}, failed_node="fetch-ip")
    viewer = page_client("viewer")
    for run in (active, failed):
        text = viewer.get(f"/portal/graphs/runs/{run.run_id}/").content.decode()
        assert 'data-testid="cancel"' not in text and 'data-testid="retry"' not in text
    assert viewer.post(f"/portal/graphs/runs/{active.run_id}/cancel/").status_code == 403
    assert viewer.post(f"/portal/graphs/runs/{failed.run_id}/retry/").status_code == 403
    active.refresh_from_db()
    failed.refresh_from_db()
    assert (active.status, failed.status, failed.attempt) == ("running", "failed", 1)
    operator = page_client("operator")
    text = operator.get(f"/portal/graphs/runs/{active.run_id}/").content.decode()
    assert 'data-testid="cancel"' in text
    assert 'id="retry-form" hidden' in text  # there for when it fails, not before
    text = operator.get(f"/portal/graphs/runs/{failed.run_id}/").content.decode()
    assert 'data-testid="retry"' in text and 'id="retry-form" hidden' not in text and 'data-testid="cancel"' not in text


def test_an_operator_starts_cancels_and_retries_a_run_from_the_pages(approved_graph, page_client, users):
    client = page_client("operator")
    version_page = client.get(f"/portal/graph/{approved_graph.graph_uri}/").content.decode()
    assert 'data-testid="run-form"' in version_page and 'data-testid="run-dry"' in version_page
    response = start_form(client, approved_graph, '{"ip": "10.0.0.1"}')
    run = GraphRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/portal/graphs/runs/{run.run_id}/"
    assert (run.status, run.input_data, run.dry_run, run.created_by) == ("pending", {"ip": "10.0.0.1"}, False, users["operator"])
    panel = client.get(f"/portal/graph/{approved_graph.graph_uri}/").content.decode()
    assert f'href="/portal/graphs/runs/{run.run_id}/"' in panel

    response = client.post(f"/portal/graphs/runs/{run.run_id}/cancel/", follow=True)
    run.refresh_from_db()
    assert run.status == "cancelled" and "Run cancelled" in response.content.decode()
    again = client.post(f"/portal/graphs/runs/{run.run_id}/cancel/", follow=True)  # ended: the reason, no 500
    assert again.status_code == 200 and "already cancelled" in again.content.decode()

    response = client.post(f"/portal/graphs/runs/{run.run_id}/retry/", follow=True)
    run.refresh_from_db()
    assert (run.status, run.attempt) == ("running", 2)
    assert "Attempt 2 started" in response.content.decode()
    refused = client.post(f"/portal/graphs/runs/{run.run_id}/retry/", follow=True)
    assert "only a failed or cancelled run can be retried" in refused.content.decode()
    run.refresh_from_db()
    assert run.attempt == 2


def test_malformed_input_json_is_refused_beside_the_field_and_starts_no_run(approved_graph, page_client):
    client = page_client("operator")
    response = start_form(client, approved_graph, '{"ip": ')
    assert response.status_code == 400
    text = response.content.decode()
    assert "The input is not JSON" in text and 'data-testid="run-form-error"' in text
    assert "{&quot;ip&quot;:</textarea>" in text  # what was typed, kept to correct it
    assert not GraphRun.objects.exists()


def test_an_input_the_graph_schema_refuses_is_said_and_starts_no_run(world, users, page_client):
    graph = world["graph"]
    Graph.objects.filter(pk=graph.pk).update(graph_input_schema={"type": "object", "required": ["ip"]})
    graph.refresh_from_db()
    lifecycle.submit(graph, users["author"], "ready")
    lifecycle.approve(Graph.objects.get(pk=graph.pk), users["reviewer"], "fine")
    response = start_form(page_client("operator"), graph, json.dumps({"host": "x"}))
    assert response.status_code == 400 and "ip" in response.context["form"].errors[0]
    assert not GraphRun.objects.exists()


def test_the_run_form_follows_the_api_gate(world, page_client, users):
    draft = world["graph"]  # a draft by the author: only its author and reviewers may dry-run it
    for role in ("viewer", "operator"):
        text = page_client(role).get(f"/portal/graph/{draft.graph_uri}/").content.decode()
        assert 'data-testid="run-form"' not in text, role
        assert start_form(page_client(role), draft, "{}").status_code == 403, role
    assert not GraphRun.objects.exists()
    author = page_client("author")
    text = author.get(f"/portal/graph/{draft.graph_uri}/").content.decode()
    assert 'data-testid="run-form"' in text and "Dry-run" in text and 'data-testid="run-dry"' not in text
    response = start_form(author, draft, "{}")
    run = GraphRun.objects.get()
    assert response.status_code == 302 and run.dry_run and run.created_by == users["author"]


def test_the_editor_shows_a_runs_trace_read_only(approved_graph, world, page_client, users):
    run = make_run(approved_graph, users["operator"], "failed", {"fetch-ip": "completed", "score-ip": "failed"})
    response = page_client("viewer").get(f"/portal/graphs/editor/{approved_graph.graph_uri}/?run={run.run_id}")
    assert response.status_code == 200
    editor = response.context["editor"]
    assert editor["mode"] == "read" and editor["run"]["nodes"]["score-ip"] == "failed"
    assert editor["run"]["nodes"]["fetch-ip"] == "completed" and 'data-testid="run-trace"' in response.content.decode()
    other = Graph(graph_name="other", graph_version="1.0", graph_release_tag="beta", graph_function_ids=["decide"],
                  graph_connection_data={}, created_by=users["author"])
    other.save()
    assert page_client("viewer").get(f"/portal/graphs/editor/{other.graph_uri}/?run={run.run_id}").status_code == 404


@pytest.mark.parametrize("size", [1024 * 1024 + 64, 3 * 1024 * 1024])
def test_an_oversized_input_is_refused_with_its_size_and_starts_no_run(approved_graph, page_client, size):
    """Past the API's body limit (1 MiB): refused by the run form as by the API; past Django's form limit
    (2 MiB here): refused before the view, with a 400 that names the limit."""
    response = start_form(page_client("operator"), approved_graph, json.dumps({"ip": "x" * size}))
    assert response.status_code in (400, 413), response.status_code
    text = response.content.decode()
    assert "too large" in text.lower() or "exceeds" in text.lower() or "bytes" in text.lower(), text[:500]
    assert not GraphRun.objects.exists()


@pytest.mark.parametrize("typed, said", [("[" * 5000 + "]" * 5000, "nested more than"),
                                         ('{"ip": "a\\u0000b"}', "NUL"), ('{"n": 1e999}', "out of range")])
def test_input_the_api_would_refuse_is_refused_by_the_form_too(approved_graph, page_client, typed, said):
    response = start_form(page_client("operator"), approved_graph, typed)
    assert response.status_code == 400 and said in response.content.decode()
    assert not GraphRun.objects.exists()
