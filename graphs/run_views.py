"""Portal pages of graph runs: the list, a run's page (its DAG coloured by node status and a timeline of its nodes,
both following GET /graph/runs/<run_id> while the run is active), cancelling and retrying it, and the runs panel
with the Run form of a version's page. Every action goes through ``graphs.services``, so a page allows exactly
what the API allows (a button is shown only to whom the service would let do it)."""
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from policygrid.errors import NotFound, PolicyGridError
from rest_framework.exceptions import APIException

from governance.panels import register
from graphs import actions, services
from graphs.api.views import GraphRunViewSet
from graphs.choices import NodeStatus, RunStatus
from graphs.filtersets import GraphRunFilterSet
from graphs.models import Graph, GraphRun
from records.pages import Column, RecordListView, detail, require_permission, view_permission

RECENT_RUNS = 10  # on a version's page; the list has the rest
RETRYABLE = frozenset({RunStatus.FAILED, RunStatus.CANCELLED})


class GraphRunListView(RecordListView):
    model = GraphRun
    title = "Graph runs"
    intro = "Executions of graph versions, newest first; a run's page shows its nodes live."
    nav = "graph"
    noun = "run"
    testid = "run-list"
    empty_hint = "Start one with the Run form on an approved graph version's page (operator role)."
    filterset_class = GraphRunFilterSet
    permission = GraphRunViewSet.action_permissions["list"]  # the API's: runs are read by who reads graphs
    filter_fields = ("graph_uri", "status")
    columns = (
        Column("Run", "run_id", "link"),
        Column("Graph", "graph_uri", "mono", "graph_uri"),
        Column("Status", "status", "badge", "status"),
        Column("Attempt", "attempt"),
        Column("Started by", "created_by"),
        Column("Created", "created_at", "time", "created_at"),
    )
    default_sort = "-created_at"
    detail_url = staticmethod(detail("portal-graph-run", "run_id"))
    live = ("status", RunStatus.ACTIVE)


def run_or_404(key: str) -> GraphRun:
    try:
        return services.find_run(key)
    except NotFound as exc:  # not a UUID, or no such run
        raise Http404(exc.message) from None


@login_required
def run_detail(request, key):
    require_permission(request.user, GraphRunViewSet.action_permissions["retrieve"])
    run = run_or_404(key)
    nodes = list(run.nodes.all())
    return render(request, "portal/graph_run.html", {
        "nav": "graph", "run": run, "nodes": nodes, "data": actions.page_data(run), "legend": NodeStatus.values,
        "active": run.status in RunStatus.ACTIVE,
        "can_cancel": run.status in RunStatus.ACTIVE and services.may_cancel(request.user, run),
        # While it runs, Retry is there hidden: the page shows it if the run fails or is cancelled.
        "can_retry": run.status != RunStatus.COMPLETED and services.may_retry(request.user, run),
        "retryable": run.status in RETRYABLE,
        "trace_url": reverse("portal-graph-editor-version", args=[run.graph_uri]) + f"?run={run.run_id}",
    })


@login_required
@require_POST
def run_cancel(request, key):
    run = run_or_404(key)
    try:
        services.cancel_run(request.user, run)  # PermissionDenied: 403, as the API answers
    except APIException as exc:  # 409: it ended meanwhile
        messages.error(request, str(exc.detail))
    else:
        messages.success(request, "Run cancelled: nodes not started will not start.")
    return redirect("portal-graph-run", key=run.run_id)


@login_required
@require_POST
def run_retry(request, key):
    run = run_or_404(key)
    try:
        retried = services.retry_run(request.user, run, {"async": True})
    except APIException as exc:  # 409: not failed or cancelled (any more)
        messages.error(request, str(exc.detail))
    except PolicyGridError as exc:  # the gate: the version was retired since
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Attempt {retried.attempt} started: the nodes that did not complete run again.")
    return redirect("portal-graph-run", key=run.run_id)


@login_required
def run_start(request, key):
    """The Run form of a version (also on its page): GET shows it, POST starts an asynchronous run and goes to
    its page, or shows the form again with what was wrong (400)."""
    require_permission(request.user, view_permission(Graph))
    graph = get_object_or_404(Graph, graph_uri=key)
    form = actions.run_form(request.user, graph)
    if form is None:
        raise PermissionDenied(f"you may not run {graph.graph_uri}: it needs the permission "
                               "'graphs.execute_graph', or a draft's dry run by its author or a reviewer")
    if request.method == "POST":
        run = actions.start(request.user, form, request.POST)
        if run is not None:
            messages.success(request, f"Run of {graph.graph_uri} started.")
            return redirect("portal-graph-run", key=run.run_id)
    return render(request, "portal/graph_run_start.html", {"nav": "graph", "graph": graph, "form": form},
                  status=400 if form.errors else 200)


@register("graphs.graph")
def runs_panel(request, graph):
    runs = list(GraphRun.objects.filter(graph=graph).only(
        "run_id", "status", "attempt", "dry_run", "created_at", "started_at", "finished_at")[:RECENT_RUNS])
    return {"template": "portal/panels/graph_runs.html", "runs": runs, "form": actions.run_form(request.user, graph),
            "all_url": reverse("portal-graph-runs") + "?" + urlencode({"graph_uri": graph.graph_uri})}
