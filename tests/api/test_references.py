"""The foreign keys behind the API's key strings: kept by save(), checked by clean(), never shown."""
import pytest
from django.core.exceptions import ValidationError

from records.documents import search_document

pytestmark = pytest.mark.django_db


@pytest.fixture
def records(sample_package, policy_payload):
    from executors.models import PolicyExecutor
    from functions.models import Function
    from graphs.models import Graph
    from jobs.models import Job
    from policies.models import PolicyRule

    policy = PolicyRule.objects.create(name="p", version="1.0", release_tag="beta", code=sample_package[0])
    executor = PolicyExecutor.objects.create(executor_id="exec-r", executor_host_uri="http://127.0.0.1:9")
    function = Function.objects.create(function_id="fn-r", function_executor_id="exec-r",
                                       function_policy_rule_uri=policy.policy_rule_uri)
    job = Job.objects.create(job_name="job-r", job_policy_rule_uri=policy.policy_rule_uri, job_executor_id="exec-r")
    graph = Graph.objects.create(graph_name="g", graph_version="1", graph_release_tag="x",
                                 graph_function_ids=["fn-r"], graph_connection_data={})
    return {"policy": policy, "executor": executor, "function": function, "job": job, "graph": graph}


def test_save_points_the_foreign_keys_at_the_records_the_keys_name(records):
    function, job, graph = records["function"], records["job"], records["graph"]
    assert function.policy == records["policy"] and function.executor == records["executor"]
    assert job.policy == records["policy"] and job.executor == records["executor"]
    assert list(graph.functions.all()) == [function]
    graph.graph_function_ids = []
    graph.save()
    assert not graph.functions.exists()


def test_clean_names_the_api_field_of_an_unknown_reference(records):
    from functions.models import Function
    from jobs.models import Job

    function = Function(function_id="fn-x", function_executor_id="nowhere", function_policy_rule_uri="no:1-x")
    with pytest.raises(ValidationError) as caught:
        function.full_clean()
    assert set(caught.value.message_dict) == {"function_executor_id", "function_policy_rule_uri"}
    job = Job(job_name="j", job_policy_rule_uri=records["policy"].policy_rule_uri, job_executor_id="nowhere")
    with pytest.raises(ValidationError) as caught:
        job.full_clean()
    assert caught.value.message_dict == {"job_executor_id": ["no policy executor with executor_id 'nowhere'"]}


def test_the_api_shows_the_keys_and_not_the_foreign_keys(records, api):
    shown = {
        "policy": api.get(f"/policy/{records['policy'].policy_rule_uri}").json()["data"],
        "function": api.get("/function/fn-r").json()["data"],
        "job": api.get(f"/jobs/{records['job'].job_id}").json()["data"],
        "graph": api.get(f"/graphs/{records['graph'].graph_uri}").json()["data"],
    }
    assert "code_asset" not in shown["policy"]
    assert {"policy", "executor"}.isdisjoint(shown["function"]) and shown["function"]["function_executor_id"] == "exec-r"
    assert {"policy", "executor"}.isdisjoint(shown["job"]) and shown["job"]["job_executor_id"] == "exec-r"
    assert "functions" not in shown["graph"] and shown["graph"]["graph_function_ids"] == ["fn-r"]
    assert set(search_document(records["function"])) == set(shown["function"])
    assert api.post("/jobs/query?sort=executor", {}, format="json").status_code == 400


def test_deleting_a_used_executor_or_function_names_every_user(records, api):
    body = api.delete("/executor/exec-r").json()
    assert body["message"].startswith("policy executor exec-r is used by ")
    assert "function fn-r" in body["message"] and f"job {records['job'].job_id}" in body["message"]
    body = api.delete("/function/fn-r").json()
    assert body["message"] == "function fn-r is used by graph g:1-x; delete or change those first"


def test_clean_of_a_policy_does_no_network_io(monkeypatch, sample_package):
    import policies.registration
    from policies.models import PolicyRule

    def refuse(*args, **kwargs):
        raise AssertionError("clean() fetched the package")

    monkeypatch.setattr(policies.registration, "fetch_bytes", refuse)
    policy = PolicyRule(name="p", version="2.0", release_tag="beta", code="http://127.0.0.1:9/nothing.zip")
    policy.full_clean(validate_unique=False, validate_constraints=False)
    assert policy.code_digest == ""
