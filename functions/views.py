"""Portal pages of functions (Type 4): the list and a function's page. Calling a function and its management
commands need the live function runtime (being built): the page keeps their place, marked."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from functions.models import Function
from governance.panels import register, used_by
from records.pages import Column, RecordListView, require_permission, view_permission


class FunctionListView(RecordListView):
    model = Function
    title = "Functions"
    intro = "Deployed, stateful policy instances (Type 4): the nodes graphs are built from."
    nav = "function"
    empty_hint = "Deploy one with POST /executor/<id>/deploy_function (operator role); it then appears in the graph editor's palette."
    filter_fields = ("function_status", "function_executor_id")
    columns = (
        Column("Function", "function_id", "link", "function_id"),
        Column("Status", "function_status", "badge", "function_status"),
        Column("Policy", "function_policy_rule_uri", "mono", "function_policy_rule_uri"),
        Column("Executor", "function_executor_id", "text", "function_executor_id"),
        Column("Replicas", "replicas", "text", "replicas"),
    )
    detail_url = staticmethod(lambda obj: reverse("portal-function", args=[obj.function_id]))


@login_required
def function_detail(request, key):
    require_permission(request.user, view_permission(Function))
    function = get_object_or_404(Function.objects.select_related("policy"), function_id=key)
    graphs = list(function.graphs.only("graph_uri", "status")[:50])
    return render(request, "portal/function_detail.html", {
        "nav": "function", "function": function, "graphs": graphs,
        "commands": function.policy.management_commands_schema if function.policy else [],
        "can_operate": request.user.has_perm("functions.change_function"),
    })


@register("policies.policyrule", column="side")
def functions_panel(request, policy):
    if not request.user.has_perm(view_permission(Function)):
        return None
    functions = list(Function.objects.filter(policy=policy).only("function_id", "function_status")[:20])
    return used_by("Functions running this version", "used-functions",
                   [(f.function_id, reverse("portal-function", args=[f.function_id]), f.function_status)
                    for f in functions], "No function runs this version.")
