"""How jobs follow the lifecycle of the policy versions they run, and the removal of their executor's cluster."""
from django.dispatch import receiver

from executors.models import PolicyExecutor
from executors.signals import infra_removed
from governance.signals import version_retired
from jobs.choices import JobStatus
from jobs.models import Job
from jobs.services import finish_job
from policies.models import PolicyRule
from records.services import MAX_NAMED


@receiver(version_retired, sender=PolicyRule, dispatch_uid="jobs-policy-retired")
def report_unfinished_jobs(sender, version, actor, **kwargs) -> list[str]:
    """Unfinished jobs of a retired version run to their end: they are reported, not changed."""
    jobs = Job.objects.filter(policy=version, job_status__in=JobStatus.ACTIVE).order_by("created_at")
    return [f"job {job_id}" for job_id in jobs.values_list("job_id", flat=True)[:MAX_NAMED]]


@receiver(infra_removed, sender=PolicyExecutor, dispatch_uid="jobs-infra-removed")
def cancel_jobs_of_removed_infra(sender, executor, actor, **kwargs) -> None:
    """remove-infra (with cascade) deleted the Kubernetes Jobs of the executor's unfinished jobs: they are
    ``cancelled``, saying why, rather than left to become ``lost`` at their deadline."""
    for job in Job.objects.filter(executor=executor, job_status__in=JobStatus.ACTIVE):
        finish_job(job, JobStatus.CANCELLED, actor=actor, action="job.cancel",
                   error=f"executor {executor.executor_id}'s infrastructure was removed (remove-infra, cascade)")
