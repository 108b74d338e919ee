"""Every page reachable from the navigation: 200 for each role that may see it, 403 for a user without a role,
the login page for an anonymous visitor; a bounded number of database queries whatever the data's size; the
actions a role can't take are not shown."""
import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db

ROLES = ("viewer", "author", "reviewer", "operator", "admin")
NAV_PAGES = ("/portal/dashboard/", "/portal/review/", "/portal/policies/", "/portal/graphs/", "/portal/functions/",
             "/portal/executors/", "/portal/jobs/", "/portal/assets/", "/portal/audit/")
# Lists not in the navigation (linked from a page that is), bounded as the navigation's are.
LIST_PAGES = (*NAV_PAGES, "/portal/graphs/runs/", "/portal/graphs/runs/?status=failed&sort=graph_uri")
# Pages with a database query per row would grow with the data: none may pass this bound.
MAX_QUERIES = 30


def record_pages(world) -> list[str]:
    return [
        f"/portal/policy/{world['approved'].key}/", f"/portal/graph/{world['graph'].key}/",
        "/portal/executors/edge-1/", f"/portal/jobs/{world['job'].job_id}/", "/portal/functions/decide/",
        f"/portal/graphs/editor/{world['graph'].key}/",
        f"/portal/policy/compare/?a={world['approved'].key}&b={world['draft'].key}",
    ]


@pytest.mark.parametrize("role", ROLES)
def test_every_navigation_page_answers_each_role(world, page_client, role):
    client = page_client(role)
    for url in (*NAV_PAGES, *record_pages(world)):
        response = client.get(url)
        assert response.status_code == 200, (role, url, response.status_code)


def test_a_user_without_a_role_is_refused_and_an_anonymous_one_sent_to_login(world, page_client):
    client = page_client("norole")
    for url in (*NAV_PAGES[2:], *record_pages(world)):
        assert client.get(url).status_code == 403, url
    for url in (*NAV_PAGES, *record_pages(world)):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/portal/login/"), url


def test_the_navigation_shows_only_the_pages_a_role_may_read(world, page_client):
    text = page_client("norole").get("/portal/dashboard/").content.decode()
    assert 'href="/portal/jobs/"' not in text and 'href="/portal/audit/"' not in text
    text = page_client("viewer").get("/portal/dashboard/").content.decode()
    for url in NAV_PAGES:
        assert f'href="{url}"' in text, url


def add_runs(world, users, count: int) -> list:
    """Runs of the world's graph in each end state (and one under way), with a node run per node."""
    from tests.pages.conftest import make_run

    states = ("completed", "failed", "running", "cancelled")
    return [make_run(world["graph"], users["operator"], states[n % 4],
                     {node: states[n % 4] for node in world["graph"].graph_function_ids}, failed_node="decide")
            for n in range(count)]


@pytest.mark.parametrize("url", LIST_PAGES)
def test_each_list_makes_a_bounded_number_of_queries(world, users, page_client, django_assert_max_num_queries, url):
    runs = add_runs(world, users, 4)
    client = page_client("admin")
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(url)
    assert response.status_code == 200
    if url.startswith("/portal/graphs/runs/"):  # counted with rows shown, the failed one in either list
        assert str(runs[1].run_id) in response.content.decode()


def test_record_pages_make_a_bounded_number_of_queries(world, users, page_client, django_assert_max_num_queries):
    run = add_runs(world, users, 1)[0]
    client = page_client("admin")
    for url in (*record_pages(world), f"/portal/graphs/runs/{run.run_id}/"):
        with django_assert_max_num_queries(MAX_QUERIES):
            assert client.get(url).status_code == 200, url


def test_the_lists_make_no_query_per_row(world, page_client, new_policy, users):
    from jobs.models import Job

    client = page_client("admin")
    add_runs(world, users, 2)  # each runs list (the failed ones too) shows rows from the start: an empty page reads none

    def counts():
        found = {}
        for url in (*LIST_PAGES, f"/portal/graph/{world['graph'].key}/"):
            with CaptureQueriesContext(connection) as queries:
                client.get(url)
            found[url] = len(queries)
        return found

    counts()  # caches filled (content types, permissions) on the first visit
    before = counts()
    for n in range(12):
        new_policy(version=f"3.{n}")
        job = Job(job_name=f"job-{n}", job_policy_rule_uri=world["approved"].key, job_executor_id="edge-1")
        job.resolve_references()
        job.save()
    add_runs(world, users, 12)
    counts()
    assert counts() == before


def test_unknown_records_answer_404(world, page_client):
    client = page_client("admin")
    for url in ("/portal/jobs/not-a-uuid/", "/portal/jobs/00000000-0000-0000-0000-000000000000/",
                "/portal/executors/nope/", "/portal/functions/nope/", "/portal/assets/nope:1-x/",
                "/portal/playground/nope:1-x/", "/portal/graphs/editor/nope:1-x/", "/portal/policy/nope:1-x/",
                "/portal/policy/compare/?a=nope:1-x&b=nope:2-x"):
        assert client.get(url).status_code == 404, url
    assert client.post("/portal/jobs/not-a-uuid/cancel/").status_code == 404


def test_a_viewer_sees_no_action_it_cannot_take(world, page_client):
    client = page_client("viewer")
    pages = {
        "/portal/graphs/": ['data-testid="action"'],
        f"/portal/policy/{world['draft'].key}/": ['data-testid="submit"', 'data-testid="open-playground"'],
        f"/portal/policy/{world['approved'].key}/": ['data-testid="open-playground"', "Deprecate", "Retire"],
        f"/portal/graph/{world['graph'].key}/": ['data-testid="new-version"', 'data-testid="submit"'],
        "/portal/executors/edge-1/": ['data-testid="probe"'],
        f"/portal/graphs/editor/{world['graph'].key}/": ['data-testid="save"', 'data-testid="palette"'],
    }
    for url, absent in pages.items():
        text = client.get(url).content.decode()
        for needle in absent:
            assert needle not in text, (url, needle)
    # The same pages show them to the roles that may act.
    assert 'data-testid="action"' in page_client("author").get("/portal/graphs/").content.decode()
    assert 'data-testid="probe"' in page_client("operator").get("/portal/executors/edge-1/").content.decode()
    assert 'data-testid="open-playground"' in page_client("operator").get(
        f"/portal/policy/{world['approved'].key}/").content.decode()
    assert page_client("viewer").get(f"/portal/playground/{world['approved'].key}/").status_code == 403
    assert page_client("viewer").get("/portal/graphs/editor/").status_code == 403
    assert page_client("viewer").post("/portal/executors/edge-1/probe/").status_code == 403


def test_the_query_box_uses_the_api_query_language(world, page_client):
    client = page_client("viewer")
    text = client.get("/portal/policies/", {"filter": '{"version": {"$in": ["1.1"]}}'}).content.decode()
    assert "ip_allowlist:1.1-beta" in text and "ip_allowlist:1.0-beta" not in text
    text = client.get("/portal/policies/", {"filter": '{"$where": "1"}'}).content.decode()
    assert 'data-testid="query-error"' in text and "$where" in text
    text = client.get("/portal/policies/", {"filter": "{not json"}).content.decode()
    assert "not JSON" in text
    text = client.get("/portal/jobs/", {"filter": '{"inputs.ip": "10.0.0.1"}'}).content.decode()
    assert "nightly-check" in text


def test_lists_filter_sort_and_page(world, page_client, new_policy):
    for n in range(30):
        new_policy(version=f"2.{n:02d}")
    client = page_client("viewer")
    text = client.get("/portal/policies/", {"status": "approved"}).content.decode()
    assert "ip_allowlist:1.0-beta" in text and "ip_allowlist:1.1-beta" not in text
    assert '<option value="">Any</option>' in text
    first = client.get("/portal/policies/", {"sort": "-version"}).content.decode()
    assert first.index("ip_allowlist:2.29-beta") < first.index("ip_allowlist:2.28-beta")
    assert "ip_allowlist:1.0-beta" not in first and 'data-testid="next-page"' in first
    second = client.get("/portal/policies/", {"sort": "-version", "page": 2}).content.decode()
    assert "ip_allowlist:1.0-beta" in second
    text = client.get("/portal/policies/", {"sort": "no_such_field"}).content.decode()
    assert "not a field of this resource" in text
    text = client.get("/portal/audit/", {"q": "policy.approve"}).content.decode()
    assert "policy.approve" in text and "policy.create" not in text


def test_the_policy_page_shows_schemas_versions_and_where_it_is_used(world, page_client):
    text = page_client("viewer").get(f"/portal/policy/{world['approved'].key}/").content.decode()
    assert 'data-testid="schemas"' in text and "IP address of the incoming request" in text
    assert world["approved"].code_digest in text
    assert "ip_allowlist:1.1-beta" in text  # the other version, side by side
    assert "decide" in text and "ip-pipeline:1.0-beta" in text and "nightly-check" in text
    text = page_client("viewer").get(
        f"/portal/policy/compare/?a={world['approved'].key}&b={world['draft'].key}").content.decode()
    assert "Stricter." in text and "Blocks unknown addresses." in text


def test_the_probe_history_is_kept_and_bounded(world, page_client, settings):
    from executors.models import ExecutorProbe
    from executors.services import record_probe

    executor = world["executor"]
    ExecutorProbe.PROBES_KEPT, kept = 5, ExecutorProbe.PROBES_KEPT
    try:
        for n in range(8):
            record_probe(executor, {"status": "healthy", "latency_ms": float(n), "health": {}})
    finally:
        ExecutorProbe.PROBES_KEPT = kept
    latencies = list(ExecutorProbe.objects.filter(executor=executor).order_by("probed_at")
                     .values_list("latency_ms", flat=True))
    assert latencies == [3.0, 4.0, 5.0, 6.0, 7.0]
    text = page_client("viewer").get("/portal/executors/edge-1/").content.decode()
    assert 'id="health-data"' in text and "7.0 ms" in text


def test_the_pages_forbid_inline_scripts(world, page_client):
    response = page_client("viewer").get("/portal/policies/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "<script>" not in response.content.decode()


def test_json_answers_carry_the_fixed_strict_policy(world, page_client, client):
    from portal.csp import JSON_POLICY

    assert client.get("/health")["Content-Security-Policy"] == JSON_POLICY
    assert client.get("/policy")["Content-Security-Policy"] == JSON_POLICY  # the API's 401 envelope
    assert page_client("viewer").get("/portal/policies/")["Content-Security-Policy"] != JSON_POLICY


def test_an_operator_cancels_a_running_job_from_its_page(world, page_client):
    from jobs.models import Job

    job = Job(job_name="to-cancel", job_policy_rule_uri=world["approved"].key, job_executor_id="edge-1",
              job_status="running")
    job.resolve_references()
    job.save()
    assert page_client("viewer").post(f"/portal/jobs/{job.job_id}/cancel/").status_code == 403
    assert 'data-testid="cancel"' not in page_client("viewer").get(f"/portal/jobs/{job.job_id}/").content.decode()
    client = page_client("operator")
    assert 'data-testid="cancel"' in client.get(f"/portal/jobs/{job.job_id}/").content.decode()
    response = client.post(f"/portal/jobs/{job.job_id}/cancel/", follow=True)
    job.refresh_from_db()
    assert job.job_status == "cancelled"
    assert "cancelled" in response.content.decode()
    response = client.post(f"/portal/jobs/{job.job_id}/cancel/", follow=True)  # once ended: the reason, no 500
    assert "already cancelled" in response.content.decode()


def test_a_drafts_author_gets_a_dry_run_playground(world, page_client):
    url = f"/portal/playground/{world['draft'].key}/"
    text = page_client("author").get(url).content.decode()
    assert 'name="dry_run" checked disabled' in text and "runs only as a dry run" in text
    assert 'data-testid="open-playground"' in page_client("author").get(
        f"/portal/policy/{world['draft'].key}/").content.decode()
    assert page_client("viewer").get(url).status_code == 403


def test_the_playground_keeps_field_errors_beside_their_fields(world, page_client):
    response = page_client("operator").post(f"/portal/playground/{world['approved'].key}/", {
        "input.ip": "", "parameters": "[1]", "settings": "{bad", "executor_id": "edge-1"})
    text = response.content.decode()
    assert response.status_code == 200
    assert "required" in text and "must be a JSON object" in text and "not JSON" in text
    assert 'data-testid="outcome"' not in text  # nothing was sent


def test_the_dashboard_lists_recent_failures_of_jobs_runs_and_calls(world, page_client, users):
    from audit.services import audit_object
    from functions.models import Function
    from tests.pages.conftest import make_run

    run = make_run(world["graph"], users["operator"], "failed", {"fetch-ip": "completed", "score-ip": "failed"},
                   failed_node="score-ip", error="score-ip was told to fail", error_type="node_failed")
    function = Function.objects.get(function_id="fetch-ip")
    audit_object(users["operator"], "function.call", function,
                 {"executor_id": "edge-1", "success": False, "error_type": "policy_error", "duration_ms": 3.0})
    text = page_client("operator").get("/portal/dashboard/").content.decode()
    assert f'href="/portal/graphs/runs/{run.run_id}/"' in text and "at score-ip" in text
    assert "nightly-check" in text  # the failed job
    calls = text.split('data-testid="failed-calls"')[1].split("</ul>")[0]
    assert "fetch-ip" in calls and "policy_error" in calls
    assert 'href="/portal/graphs/runs/"' in text  # the runs tile
    # A role that may not read graphs or the audit sees neither.
    assert "failed-runs" not in page_client("norole").get("/portal/dashboard/").content.decode()


def test_what_django_refuses_before_any_view_is_said_as_a_page_or_the_envelope(rf):
    from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent

    from portal.views import bad_request

    page = bad_request(rf.post("/portal/graphs/run/x/"), RequestDataTooBig())
    assert page.status_code == 400 and "bytes a form may send" in page.content.decode()
    answer = bad_request(rf.post("/policy"), TooManyFieldsSent())
    assert answer.status_code == 400
    assert json.loads(answer.content) == {"success": False,
                                          "message": "the request sends more fields or files than a form may"}
