"""The data migrations fill the new foreign keys of rows that existed before them, from their key strings."""
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("executors", "0001_initial"), ("policies", "0003_policyrule_code_asset"), ("functions", "0002_function_executor_function_policy"),
          ("jobs", "0002_job_executor_job_policy"), ("graphs", "0002_graphnode_graph_functions_and_more")]
AFTER = [("policies", "0004_fill_policyrule_code_asset"), ("functions", "0003_fill_function_references"),
         ("jobs", "0003_fill_job_references"), ("graphs", "0003_fill_graph_nodes")]


@pytest.mark.django_db(transaction=True)
def test_existing_rows_get_their_foreign_keys():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    Asset, PolicyRule = apps.get_model("policies", "Asset"), apps.get_model("policies", "PolicyRule")
    PolicyExecutor = apps.get_model("executors", "PolicyExecutor")
    Function, Job, Graph = apps.get_model("functions", "Function"), apps.get_model("jobs", "Job"), apps.get_model("graphs", "Graph")
    asset = Asset.objects.create(asset_name="a", asset_uri="a:1-b", asset_version={"version": "1", "tag": "b"},
                                 public_url="http://127.0.0.1/asset-object/1")
    policy = PolicyRule.objects.create(name="p", version="1", release_tag="b", policy_rule_uri="p:1-b", code=asset.public_url)
    host = PolicyExecutor.objects.create(executor_id="e")
    Function.objects.create(function_id="f", function_executor_id="e", function_policy_rule_uri="p:1-b")
    Function.objects.create(function_id="dangling", function_executor_id="gone", function_policy_rule_uri="gone:1-b")
    Job.objects.create(job_name="j", job_executor_id="e", job_policy_rule_uri="p:1-b")
    Graph.objects.create(graph_name="g", graph_version="1", graph_release_tag="b", graph_uri="g:1-b",
                         graph_function_ids=["f", "dangling", "unknown"], graph_connection_data={})

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    apps = executor.loader.project_state(AFTER).apps
    PolicyRule, Function = apps.get_model("policies", "PolicyRule"), apps.get_model("functions", "Function")
    Job, GraphNode = apps.get_model("jobs", "Job"), apps.get_model("graphs", "GraphNode")
    assert PolicyRule.objects.get(pk=policy.pk).code_asset_id == asset.pk
    assert Function.objects.filter(function_id="f", policy_id=policy.pk, executor_id=host.pk).exists()
    assert Function.objects.filter(function_id="dangling", policy_id=None, executor_id=None).exists()
    assert Job.objects.filter(policy_id=policy.pk, executor_id=host.pk).count() == 1
    assert sorted(GraphNode.objects.values_list("function__function_id", flat=True)) == ["dangling", "f"]
    # Back to the latest state for the tests that follow (transaction=True flushes the rows).
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
