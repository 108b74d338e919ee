"""Portal pages of functions (Type 4): the list, the deploy form, and a function's page — its status and
replicas updating live, a call form, management commands, logs and Remove — all through ``functions.services``
(``functions.actions`` reads the forms)."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from policygrid.errors import PolicyGridError
from rest_framework.exceptions import APIException

from functions import actions, services
from functions.api.views import FunctionViewSet
from functions.choices import FunctionStatus
from functions.models import Function
from governance.panels import register, used_by
from records.pages import Action, Column, RecordListView, require_permission, view_permission


class FunctionListView(RecordListView):
    model = Function
    title = "Functions"
    intro = "Deployed, stateful policy instances (Type 4): the nodes graphs are built from."
    nav = "function"
    empty_hint = "Deploy one with “Deploy a function” (operator role); it then appears in the graph editor's palette."
    filter_fields = ("function_status", "function_executor_id")
    actions = (Action("Deploy a function", "portal-function-deploy", "functions.add_function"),)
    columns = (
        Column("Function", "function_id", "link", "function_id"),
        Column("Status", "function_status", "badge", "function_status"),
        Column("Policy", "function_policy_rule_uri", "mono", "function_policy_rule_uri"),
        Column("Executor", "function_executor_id", "text", "function_executor_id"),
        Column("Replicas", "replicas", "text", "replicas"),
    )
    detail_url = staticmethod(lambda obj: reverse("portal-function", args=[obj.function_id]))


PERMISSIONS = FunctionViewSet.action_permissions  # the API's: a page allows what the API route allows
LOG_TAIL = 200


def allowed(user) -> dict[str, bool]:
    """The actions this user may take on functions (a button is shown only for these)."""
    return {"deploy": user.has_perm(PERMISSIONS["create_on"]), "call": user.has_perm(PERMISSIONS["call"]),
            "manage": user.has_perm(PERMISSIONS["management"]), "remove": user.has_perm(PERMISSIONS["remove"])}


def function_or_404(request, key, permission) -> Function:
    require_permission(request.user, permission)
    return get_object_or_404(Function.objects.select_related("policy"), function_id=key)


@login_required
def function_detail(request, key):
    return function_page(request, function_or_404(request, key, view_permission(Function)))


def function_page(request, function, fields=None, listed=None, **shown):
    """The function's page; ``shown``: the outcome of a call or a management command just made."""
    can = allowed(request.user)
    graphs = list(function.graphs.only("graph_uri", "status")[:50])
    listed = actions.commands(function) if listed is None else listed
    refused = ("call_outcome" in shown and not shown["call_outcome"]) or (
        "manage_outcome" in shown and not shown["manage_outcome"])
    return render(request, "portal/function_detail.html", {
        "nav": "function", "function": function, "graphs": graphs, "can": can, "can_operate": can["manage"],
        "ready": function.function_status == FunctionStatus.READY,
        "active": function.function_status in FunctionStatus.ACTIVE, "tail": LOG_TAIL,
        "call_fields": actions.call_fields(function) if fields is None else fields, "commands": listed,
        "chosen_action": listed[0].name if listed else "", **shown,
    }, status=400 if refused else 200)


@login_required
def function_deploy(request):
    require_permission(request.user, PERMISSIONS["create_on"])
    form = actions.DeployForm()
    if request.method == "POST":
        form, function = actions.deploy(request.user, request.POST)
        if function is not None:
            messages.success(request, f"Function {function.function_id} is being deployed.")
            return redirect("portal-function", key=function.function_id)
    return render(request, "portal/function_deploy.html", {
        "nav": "function", "form": form, **actions.deploy_choices(),
    }, status=400 if form.errors or form.message else 200)


@login_required
@require_POST
def function_call(request, key):
    function = function_or_404(request, key, PERMISSIONS["call"])
    fields = actions.call_fields(function)
    outcome = actions.call(request.user, function, fields, request.POST)
    return function_page(request, function, fields=fields, call_outcome=outcome)


@login_required
@require_POST
def function_manage(request, key):
    function = function_or_404(request, key, PERMISSIONS["management"])
    listed = actions.commands(function)
    action, outcome = actions.manage(request.user, function, listed, request.POST)
    return function_page(request, function, listed=listed, chosen_action=action, manage_outcome=outcome)


@login_required
@require_POST
def function_remove(request, key):
    require_permission(request.user, PERMISSIONS["remove"])
    try:
        services.remove_function(request.user, key)
    except APIException as exc:  # 409 naming the graphs that use it, or the runtime's refusal
        messages.error(request, str(exc.detail))
        return redirect("portal-function", key=key)
    except PolicyGridError as exc:  # gone meanwhile
        messages.error(request, exc.message)
        return redirect("portal-function-list")
    messages.success(request, f"Function {key} removed.")
    return redirect("portal-function-list")


@register("policies.policyrule", column="side")
def functions_panel(request, policy):
    if not request.user.has_perm(view_permission(Function)):
        return None
    functions = list(Function.objects.filter(policy=policy).only("function_id", "function_status")[:20])
    return used_by("Functions running this version", "used-functions",
                   [(f.function_id, reverse("portal-function", args=[f.function_id]), f.function_status)
                    for f in functions], "No function runs this version.")
