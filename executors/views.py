"""Portal pages of executors: the list, an executor's health history (plotted), probing it now, and the
policy playground (``executors.playground``), which runs through the API route's own service."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from executors import playground as play
from executors import services
from executors.models import ExecutorProbe, PolicyExecutor
from governance.panels import register
from policies.models import PolicyRule
from records.pages import Column, RecordListView, require_permission, view_permission

HISTORY_POINTS = 200


class ExecutorListView(RecordListView):
    model = PolicyExecutor
    title = "Executors"
    intro = "Executor services that run policies (Type 2), with their last health probe."
    nav = "executor"
    empty_hint = "Register one with POST /executor {\"executor_id\": …, \"executor_host_uri\": \"http://host:8900\"}."
    filter_fields = ("executor_status", "executor_runtime")
    columns = (
        Column("Executor", "executor_id", "link", "executor_id"),
        Column("Health", "executor_status", "badge", "executor_status"),
        Column("Address", "executor_host_uri", "mono"),
        Column("Latency (ms)", "latency_ms", "text", "latency_ms"),
        Column("Last seen", "last_seen", "time", "last_seen"),
    )
    detail_url = staticmethod(lambda obj: reverse("portal-executor", args=[obj.executor_id]))


def may_operate(user) -> bool:
    return user.has_perm("executors.change_policyexecutor")


@login_required
def executor_detail(request, key):
    require_permission(request.user, view_permission(PolicyExecutor))
    executor = get_object_or_404(PolicyExecutor, executor_id=key)
    probes = list(ExecutorProbe.objects.filter(executor=executor).order_by("-probed_at")[:HISTORY_POINTS])
    history = [{"at": p.probed_at.isoformat(), "latency_ms": p.latency_ms, "status": p.status} for p in reversed(probes)]
    return render(request, "portal/executor_detail.html", {
        "nav": "executor", "executor": executor, "report": services.health_report(executor),
        "probes": probes[:20], "history": history, "can_probe": may_operate(request.user),
        "function_count": executor.functions.count(), "job_count": executor.jobs.count(),
    })


@login_required
@require_POST
def executor_probe(request, key):
    require_permission(request.user, "executors.change_policyexecutor")
    executor = get_object_or_404(PolicyExecutor, executor_id=key)
    executor = services.probe_executor(executor, request.user)
    messages.success(request, f"Probed {executor.executor_id}: {executor.get_executor_status_display().lower()}.")
    return redirect("portal-executor", key=key)


def may_try(user, policy) -> bool:
    """Who the playground is for: operators run, a draft's author and reviewers dry-run (the service decides)."""
    return (user.has_perm("policies.execute_policyrule") or user.pk == policy.created_by_id
            or user.has_perm("policies.review_policyrule"))


@login_required
def playground(request, key):
    require_permission(request.user, view_permission(PolicyRule))
    policy = get_object_or_404(PolicyRule, policy_rule_uri=key)
    if not may_try(request.user, policy):
        require_permission(request.user, "policies.execute_policyrule")
    executors = list(PolicyExecutor.objects.exclude(executor_host_uri="").only("executor_id", "executor_status"))
    chosen = executors[0] if executors else None
    if request.method == "POST":
        state, chosen = play.run(request.user, policy, request.POST)
    else:
        state = play.empty_playground(policy)
    base = request.build_absolute_uri("/").rstrip("/")
    return render(request, "portal/playground.html", {
        "nav": "policy", "policy": policy, "executors": executors, "chosen": chosen, "state": state,
        "must_dry_run": policy.status not in ("approved", "deprecated"),
        "snippets": play.snippets(base, chosen.executor_id, state.body) if state.body and chosen else None,
    })


@register("policies.policyrule", column="side")
def playground_panel(request, policy):
    if not may_try(request.user, policy) or policy.status == "retired":
        return None
    return {"template": "portal/panels/playground_link.html", "url": reverse("portal-playground", args=[policy.key])}
