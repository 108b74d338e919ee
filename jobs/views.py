"""Portal pages of jobs: the list, a job's page (status and logs updated live from the API while it runs),
and cancelling it through ``jobs.services.cancel_job``."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from policygrid.errors import PolicyGridError
from rest_framework.exceptions import APIException

from governance.panels import register, used_by
from jobs import services
from jobs.choices import JobStatus
from jobs.models import Job
from records.pages import Column, RecordListView, require_permission, view_permission

LOG_TAIL = 200


class JobListView(RecordListView):
    model = Job
    title = "Jobs"
    intro = "One-shot runs of a policy on an executor's runtime (Type 3), newest first."
    nav = "job"
    empty_hint = "Submit one with POST /jobs/submit {\"policy_rule_uri\": …, \"inputs\": {…}} (operator role)."
    filter_fields = ("job_status", "job_executor_id")
    columns = (
        Column("Job", "job_name", "link", "job_name"),
        Column("Status", "job_status", "badge", "job_status"),
        Column("Policy", "job_policy_rule_uri", "mono", "job_policy_rule_uri"),
        Column("Executor", "job_executor_id", "text", "job_executor_id"),
        Column("Created", "created_at", "time", "created_at"),
    )
    default_sort = "-created_at"
    detail_url = staticmethod(lambda obj: reverse("portal-job", args=[obj.job_id]))
    live = ("job_status", JobStatus.ACTIVE)


def job_or_404(key: str) -> Job:
    if not services.is_uuid(key):  # a job_id is a UUID: anything else names no job (not a 500)
        raise Http404(f"no job {key}")
    return get_object_or_404(Job, job_id=key)


def may_cancel(user, job) -> bool:
    return job.job_status in JobStatus.ACTIVE and user.has_perm("jobs.change_job")


@login_required
def job_detail(request, key):
    require_permission(request.user, view_permission(Job))
    job = job_or_404(key)
    try:
        logs = services.job_logs(job, LOG_TAIL)
    except PolicyGridError as exc:
        logs = f"(the logs can't be read now: {exc.message})"
    return render(request, "portal/job_detail.html", {
        "nav": "job", "job": job, "logs": logs, "can_cancel": may_cancel(request.user, job),
        "active": job.job_status in JobStatus.ACTIVE, "tail": LOG_TAIL,
    })


@login_required
@require_POST
def job_cancel(request, key):
    require_permission(request.user, "jobs.change_job")
    job = job_or_404(key)
    try:
        services.cancel_job(request.user, job)
    except APIException as exc:
        messages.error(request, str(exc.detail))
    else:
        messages.success(request, f"Job {job.job_name} cancelled.")
    return redirect("portal-job", key=key)


@register("policies.policyrule", column="side")
def jobs_panel(request, policy):
    if not request.user.has_perm(view_permission(Job)):
        return None
    jobs = list(Job.objects.filter(policy=policy).only("job_id", "job_name", "job_status", "created_at")[:10])
    return used_by("Recent jobs of this version", "used-jobs",
                   [(j.job_name, reverse("portal-job", args=[j.job_id]), j.job_status) for j in jobs],
                   "No job has run this version.", reverse("portal-job-list") + f"?job_policy_rule_uri={policy.key}")
