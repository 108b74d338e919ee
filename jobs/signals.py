"""How jobs follow the lifecycle of the policy versions they run."""
from django.dispatch import receiver

from governance.signals import version_retired
from jobs.choices import JobStatus
from jobs.models import Job
from policies.models import PolicyRule
from records.services import MAX_NAMED


@receiver(version_retired, sender=PolicyRule, dispatch_uid="jobs-policy-retired")
def report_unfinished_jobs(sender, version, actor, **kwargs) -> list[str]:
    """Unfinished jobs of a retired version run to their end: they are reported, not changed."""
    jobs = Job.objects.filter(policy=version, job_status__in=JobStatus.ACTIVE).order_by("created_at")
    return [f"job {job_id}" for job_id in jobs.values_list("job_id", flat=True)[:MAX_NAMED]]
