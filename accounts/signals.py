"""Invalidates every user's cached permissions (``accounts.authentication.RoleBackend``) when any may change:
a user's roles or own permissions, a role's permissions, a role, a permission or a user deleted (their rows in
the join tables go without an m2m signal). Such changes are rare; one stamp for all keeps the rule simple.
Likewise every cached token (``ApiTokenAuthentication``) when a token or a user is saved or deleted."""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db.models.signals import m2m_changed, post_delete, post_save

from accounts.authentication import PERMISSIONS_STAMP, TOKENS_STAMP
from accounts.models import ApiToken
from records.cache import restamp


def forget_permissions(sender, using=None, **kwargs):
    if kwargs.get("action", "post_").startswith("post_"):
        restamp(PERMISSIONS_STAMP, using)


User = get_user_model()
for through in (User.groups.through, User.user_permissions.through, Group.permissions.through):
    m2m_changed.connect(forget_permissions, sender=through, dispatch_uid=f"permissions-m2m-{through._meta.label_lower}")
for model in (Group, Permission, User):
    post_delete.connect(forget_permissions, sender=model, dispatch_uid=f"permissions-delete-{model._meta.label_lower}")
for model in (Group, Permission):
    post_save.connect(forget_permissions, sender=model, dispatch_uid=f"permissions-save-{model._meta.label_lower}")


def forget_tokens(sender, using=None, **kwargs):
    restamp(TOKENS_STAMP, using)


for model in (ApiToken, User):  # a token issued or revoked, a user deactivated or deleted (with their tokens)
    for signal in (post_save, post_delete):
        signal.connect(forget_tokens, sender=model, dispatch_uid=f"tokens-{signal is post_save}-{model._meta.label_lower}")
