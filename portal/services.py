"""Side effects of the portal's own objects (tokens), each taking its actor explicitly."""
from django.db import transaction

from portal.models import ApiToken


def issue_token(user, *, name: str = "", actor=None) -> tuple[ApiToken, str]:
    """Create an API token for ``user``; returns the row and the key, which is never shown again."""
    with transaction.atomic():
        return ApiToken.issue(user, name=name)


def revoke_token(token: ApiToken, *, actor=None) -> None:
    with transaction.atomic():
        token.revoke()
