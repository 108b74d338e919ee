"""Token authentication for programs (``Authorization: Token <key>`` or ``Bearer <key>``), and the permission
backend that reads a user's role permissions in one query."""
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.core.cache import caches
from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts.models import ApiToken, hash_token
from records.cache import cached_value

# The stamp of every user's cached permissions (RoleBackend): replaced by any change of them.
PERMISSIONS_STAMP = "accounts:permissions:stamp"
# The stamp of every cached token and its user (ApiTokenAuthentication): replaced by any save or delete of a
# token (issue, revocation) or a user (deactivation, a password or role flag changed), in every process.
TOKENS_STAMP = "accounts:tokens:stamp"
# Recording every use would turn each read into a write; a minute's precision is enough for "last used".
LAST_USED_PRECISION = timedelta(minutes=1)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("token", "bearer")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode(errors="replace").lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("the Authorization header must be 'Token <key>' or 'Bearer <key>'")
        try:
            key = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("the token contains invalid characters") from None
        # The token with its user: one query, or none while the cached pair is current (records.cache: every
        # save or delete of a token or a user replaces TOKENS_STAMP, so a revocation is seen by the next request).
        key_hash = hash_token(key)
        token = cached_value(TOKENS_STAMP, f"accounts:token:{key_hash}", "ApiToken+user",
                             lambda: ApiToken.objects.active().select_related("user").filter(key_hash=key_hash).first())
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("invalid or revoked token")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
            # A cached token's last_used_at is as old as its entry: of the requests that see it stale, the one
            # that files the marker records the use, once per LAST_USED_PRECISION.
            if caches[settings.RECORD_CACHE].add(f"accounts:token-used:{token.pk}", 1,
                                                 LAST_USED_PRECISION.total_seconds()):
                ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request):
        return "Token"


class RoleBackend(ModelBackend):
    """Django's ModelBackend, reading a user's permissions (their roles' and their own) in one query, not two,
    kept in Django's cache between requests.

    Every API request of a non-superuser checks one permission; ModelBackend answers from two queries (the
    user's own permissions, then their groups'), each compiled anew, a measurable share of a fast request.
    Same answers, same per-user caches: only ``get_all_permissions`` changes.
    """

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if user_obj.is_superuser:
            return super().get_all_permissions(user_obj, obj)
        if not hasattr(user_obj, "_perm_cache"):
            # Across requests too, from Django's cache (records.cache): every change of roles, memberships or a
            # user's own permissions replaces PERMISSIONS_STAMP (accounts.signals), and with it every entry.
            names = cached_value(PERMISSIONS_STAMP, f"accounts:permissions:{user_obj.pk}", "app_label.codename",
                                 lambda: frozenset(self._read_permissions(user_obj)))
            user_obj._perm_cache = set(names)
        return user_obj._perm_cache

    @staticmethod
    def _read_permissions(user_obj) -> set[str]:
        own = Permission.objects.filter(user=user_obj)
        roles = Permission.objects.filter(group__user=user_obj)
        pairs = own.values_list("content_type__app_label", "codename").order_by().union(
            roles.values_list("content_type__app_label", "codename").order_by()
        )
        return {f"{app_label}.{codename}" for app_label, codename in pairs}
