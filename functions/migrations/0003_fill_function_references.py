"""Fill the new foreign keys of existing functions from the keys they hold (a dangling key stays NULL)."""
from django.db import migrations


def fill(apps, schema_editor):
    Function = apps.get_model("functions", "Function")
    PolicyRule = apps.get_model("policies", "PolicyRule")
    PolicyExecutor = apps.get_model("executors", "PolicyExecutor")
    policies = dict(PolicyRule.objects.values_list("policy_rule_uri", "pk"))
    executors = dict(PolicyExecutor.objects.values_list("executor_id", "pk"))
    for function in Function.objects.only("pk", "function_policy_rule_uri", "function_executor_id").iterator():
        Function.objects.filter(pk=function.pk).update(
            policy_id=policies.get(function.function_policy_rule_uri),
            executor_id=executors.get(function.function_executor_id),
        )


class Migration(migrations.Migration):
    dependencies = [
        ("functions", "0002_function_executor_function_policy"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
