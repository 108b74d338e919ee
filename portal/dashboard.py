"""The portal's landing page: counts of every resource, executor health and recent failures. It wires the
apps' models together (as the URL map does) and holds no logic of its own beyond counting."""
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.shortcuts import render

from audit.models import AuditEntry
from executors.models import PolicyExecutor
from functions.models import Function
from governance.choices import LifecycleStatus
from graphs.choices import RunStatus
from graphs.models import Graph, GraphRun
from jobs.choices import JobStatus
from jobs.models import Job
from policies.models import Asset, PolicyRule
from records.pages import view_permission

RECENT = 8


def counts_by(model, field: str) -> dict[str, int]:
    return dict(model.objects.order_by().values_list(field).annotate(n=Count("pk")).values_list(field, "n"))


@login_required
def dashboard(request):
    user = request.user
    allowed = {model: user.has_perm(view_permission(model))
               for model in (PolicyRule, Graph, PolicyExecutor, Function, Job, Asset, AuditEntry)}
    tiles = []
    for model, field, url_name, label in (
            (PolicyRule, "status", "portal-policy-list", "Policies"), (Graph, "status", "portal-graph-list", "Graphs"),
            (PolicyExecutor, "executor_status", "portal-executor-list", "Executors"),
            (Function, "function_status", "portal-function-list", "Functions"),
            (Job, "job_status", "portal-job-list", "Jobs"), (GraphRun, "status", "portal-graph-runs", "Graph runs")):
        if allowed[model if model is not GraphRun else Graph]:  # runs are read by who reads graphs (as the API)
            by = counts_by(model, field)
            tiles.append({"label": label, "url_name": url_name, "total": sum(by.values()),
                          "by": sorted(by.items()), "field": field})
    in_review = sum(model.objects.filter(status=LifecycleStatus.IN_REVIEW).count()
                    for model in (PolicyRule, Graph) if allowed[model])
    context = {
        "nav": "dashboard", "tiles": tiles, "in_review": in_review,
        "executors": list(PolicyExecutor.objects.only("executor_id", "executor_status", "latency_ms", "last_seen")
                          .order_by("executor_status", "executor_id")[:12]) if allowed[PolicyExecutor] else None,
        "failed_jobs": list(Job.objects.filter(job_status__in=[JobStatus.FAILED, JobStatus.LOST])
                            .only("job_id", "job_name", "job_status", "job_error", "created_at")
                            .order_by("-created_at")[:RECENT]) if allowed[Job] else None,
        "failed_runs": list(GraphRun.objects.filter(status=RunStatus.FAILED)
                            .only("run_id", "graph_uri", "status", "failed_node", "error", "created_at")
                            .order_by("-created_at")[:RECENT]) if allowed[Graph] else None,
        # Executions of Types 2 and 4 (a job's and a run's failures are above), from their audit entries.
        "failed_calls": list(AuditEntry.objects.filter(action__in=("policy.execute", "function.call"),
                                                       data__success=False)
                             .order_by("-seq")[:RECENT]) if allowed[AuditEntry] else None,
    }
    return render(request, "portal/dashboard.html", context)
