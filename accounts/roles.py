"""The five roles of docs/governance.md §1 as Django groups, each a set of model permissions.

Kept in code and re-applied after every migrate, so that models added later join their roles without a
hand-written migration per model.
"""
from django.apps import apps as global_apps

from accounts.choices import Role

READ_MODELS = (
    "policies.policyrule",
    "policies.asset",
    "executors.policyexecutor",
    "jobs.job",
    "functions.function",
    "graphs.graph",
)
AUTHORED_MODELS = ("policies.policyrule", "policies.asset", "graphs.graph")
OPERATED_MODELS = ("executors.policyexecutor", "jobs.job", "functions.function")


def _crud(models: tuple[str, ...], actions: tuple[str, ...]) -> set[str]:
    perms = set()
    for label in models:
        app_label, model = label.split(".")
        perms.update(f"{app_label}.{action}_{model}" for action in actions)
    return perms


def role_permissions() -> dict[str, set[str]]:
    """Role → permission names (``app_label.codename``). Admin gets every permission instead."""
    viewer = _crud(READ_MODELS, ("view",)) | {"audit.view_auditentry", "audit.view_auditcheckpoint"}
    return {
        Role.VIEWER: viewer,
        Role.AUTHOR: viewer | _crud(AUTHORED_MODELS, ("add", "change", "delete")),
        Role.REVIEWER: viewer | {"policies.review_policyrule", "graphs.review_graph"},
        Role.OPERATOR: viewer
        | _crud(OPERATED_MODELS, ("add", "change", "delete"))
        | {"policies.execute_policyrule", "graphs.execute_graph"},
    }


def sync_roles(apps=global_apps, **_ignored) -> None:
    """Create the five groups and give each its permissions (idempotent)."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    wanted = role_permissions()
    for role in Role:
        group, _ = Group.objects.get_or_create(name=role.value)
        if role == Role.ADMIN:
            group.permissions.set(Permission.objects.all())
            continue
        perms = []
        for name in wanted[role]:
            app_label, codename = name.split(".")
            perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if perm is not None:  # models of later migrations join on the next post_migrate
                perms.append(perm)
        group.permissions.set(perms)


def is_admin(user) -> bool:
    """Superusers and members of the admin role: the users who may do what only admins may (forced deletes)."""
    return bool(user and getattr(user, "is_authenticated", False)
                and (user.is_superuser or user.groups.filter(name=Role.ADMIN).exists()))
