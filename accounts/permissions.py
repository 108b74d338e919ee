"""The one place where API permissions are decided: role (model permission) per action."""
from django.conf import settings
from rest_framework import exceptions, permissions

# HTTP method → model-permission action, as Django's own admin does it.
METHOD_ACTIONS = {
    "GET": "view",
    "HEAD": "view",
    "OPTIONS": "view",
    "POST": "add",
    "PUT": "change",
    "PATCH": "change",
    "DELETE": "delete",
}


def required_permission(view, request) -> str | None:
    """The permission a request needs: the view's declared one for its action, else the model's CRUD one."""
    action = getattr(view, "action", None)
    declared = getattr(view, "action_permissions", {})
    if action in declared:
        return declared[action]
    queryset = getattr(view, "queryset", None)
    if queryset is None:
        return None
    meta = queryset.model._meta
    verb = "view" if is_read(view, request) else METHOD_ACTIONS.get(request.method, "change")
    return f"{meta.app_label}.{verb}_{meta.model_name}"


def is_read(view, request) -> bool:
    return request.method in permissions.SAFE_METHODS or getattr(view, "action", None) in getattr(
        view, "read_actions", ()
    )


class RolePermission(permissions.BasePermission):
    """Authenticated users need the permission their role grants; anonymous reads only when enabled."""

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            if settings.ANONYMOUS_READ and is_read(view, request):
                return True
            raise exceptions.NotAuthenticated("authentication required: send 'Authorization: Token <key>'")
        needed = required_permission(view, request)
        if needed is None or needed == "authenticated":
            return True
        if not user.has_perm(needed):
            raise exceptions.PermissionDenied(
                f"your roles do not allow this: it needs the permission '{needed}'"
            )
        return True
