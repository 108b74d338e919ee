"""Portal pages of graphs: the list, the visual DAG editor (with a run's trace), and the graph panels of a
version's page (the runs panel is in graphs.run_views).

The editor saves through the API (``POST /graphs``, or ``PUT /graphs/<uri>`` for the draft it opened) with the
session and its CSRF token, so a saved graph is validated by the one validator (``Graph.clean``: cycles,
unknown functions) and recorded by the one audited save; every save is a draft that goes through review."""
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from functions.models import Function
from governance.choices import LifecycleStatus
from governance.panels import register, used_by
from graphs import actions, run_views
from graphs.choices import MergeMode, NodeStatus
from graphs.models import Graph
from records.pages import Action, Column, RecordListView, require_permission, view_permission

PALETTE_SIZE = 1000


def version_url(obj) -> str:
    return reverse("portal-version", args=["graph", obj.graph_uri])


class GraphListView(RecordListView):
    model = Graph
    title = "Graphs"
    intro = "Versioned DAGs of functions: each save in the editor is a draft that goes through review."
    nav = "graph"
    noun = "version"
    testid = "version-list"
    empty_hint = "Open the graph editor, drag functions onto the canvas, connect them and save a draft."
    filter_fields = ("status", "graph_merge_mode")
    columns = (
        Column("Version", "graph_uri", "link", "graph_uri"),
        Column("Status", "status", "badge", "status"),
        Column("Merge", "graph_merge_mode"),
        Column("Created by", "created_by"),
        Column("Updated", "updated_at", "time", "updated_at"),
    )
    # By key: the versions of a name side by side, read through the key's unique index.
    default_sort = "graph_uri"
    detail_url = staticmethod(version_url)
    actions = (Action("New graph", "portal-graph-editor", "graphs.add_graph"),)
    links = (("Runs of the graphs", "portal-graph-runs"),)


def graph_document(graph: Graph) -> dict:
    return {
        "graph_uri": graph.graph_uri, "graph_name": graph.graph_name, "graph_version": graph.graph_version,
        "graph_release_tag": graph.graph_release_tag, "graph_description": graph.graph_description,
        "graph_function_ids": graph.graph_function_ids, "graph_connection_data": graph.graph_connection_data,
        "graph_input_schema": graph.graph_input_schema, "graph_output_schema": graph.graph_output_schema,
        "graph_merge_mode": graph.graph_merge_mode, "graph_metadata": graph.graph_metadata,
        "status": graph.status,
    }


@login_required
def graph_editor(request, key=None):
    """A new graph (no key; ``?from=<uri>`` starts from a version's content), or a version: a draft its
    editors may change in place, anything else read-only with a "new version" button. ``?run=<run_id>`` (a run
    of this version) opens it read-only with the nodes coloured by that run's node states."""
    require_permission(request.user, view_permission(Graph))
    graph = get_object_or_404(Graph, graph_uri=key) if key else None
    run = run_views.run_or_404(request.GET["run"]) if graph and request.GET.get("run") else None
    if run is not None and run.graph_id != graph.pk:
        raise Http404(f"run {run.run_id} is a run of {run.graph_uri}, not of {graph.graph_uri}")
    source = graph or (Graph.objects.filter(graph_uri=request.GET.get("from", "")).first())
    may_add = request.user.has_perm("graphs.add_graph")
    may_change = request.user.has_perm("graphs.change_graph")
    if graph is None and not may_add:
        require_permission(request.user, "graphs.add_graph")
    editable = may_change and graph.status == LifecycleStatus.DRAFT and run is None if graph else may_add
    document = graph_document(source) if source else None
    if document and not graph:  # a new version of ``source``: same name and tag, a version to choose
        document.update(graph_version="", graph_uri="", status="")
    functions = Function.objects.only("function_id", "function_status", "function_policy_rule_uri")
    return render(request, "portal/graph_editor.html", {
        "nav": "graph", "graph": graph, "source": source,
        "editor": {
            "mode": "update" if graph and editable else "create" if editable else "read",
            "graph": document,
            "functions": [{"id": f.function_id, "status": f.function_status, "policy": f.function_policy_rule_uri}
                          for f in functions[:PALETTE_SIZE]],
            "merge_modes": MergeMode.choices,
            "page_url": reverse("portal-version", args=["graph", "__uri__"]),
            "run": actions.trace(run) if run else None,
        },
        "editable": editable, "may_add": may_add, "run": run, "legend": NodeStatus.values,
    })


@register("graphs.graph", column="side")
def editor_panel(request, graph):
    return {"template": "portal/panels/graph_editor_link.html",
            "url": reverse("portal-graph-editor-version", args=[graph.graph_uri]),
            "new_url": reverse("portal-graph-editor") + f"?from={graph.graph_uri}",
            "may_add": request.user.has_perm("graphs.add_graph"),
            "nodes": len(graph.graph_function_ids or [])}


@register("policies.policyrule", column="side")
def graphs_panel(request, policy):
    if not request.user.has_perm(view_permission(Graph)):
        return None
    graphs = list(Graph.objects.filter(functions__policy=policy).distinct().only("graph_uri", "status")[:20])
    return used_by("Graphs using this version", "used-graphs",
                   [(g.graph_uri, version_url(g), g.status) for g in graphs],
                   "No graph uses this version (through its functions).")
