"""Fill the new foreign keys of existing jobs from the keys they hold (a dangling key stays NULL)."""
from django.db import migrations


def fill(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    PolicyRule = apps.get_model("policies", "PolicyRule")
    PolicyExecutor = apps.get_model("executors", "PolicyExecutor")
    for uri, pk in PolicyRule.objects.values_list("policy_rule_uri", "pk").iterator():
        Job.objects.filter(job_policy_rule_uri=uri).update(policy_id=pk)
    for executor_id, pk in PolicyExecutor.objects.values_list("executor_id", "pk").iterator():
        Job.objects.filter(job_executor_id=executor_id).update(executor_id=pk)


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0002_job_executor_job_policy"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
