"""Side effects of the portal's own objects (tokens), each taking its actor explicitly."""
from django.db import transaction

from accounts.models import ApiToken
from audit.services import write_audit


def issue_token(user, *, name: str = "", actor=None) -> tuple[ApiToken, str]:
    """Create an API token for ``user``; returns the row and the key, which is never shown again."""
    with transaction.atomic():
        token, key = ApiToken.issue(user, name=name)
        write_audit(actor if actor is not None else user, "token.create", "portal.apitoken", str(token.pk),
                    {"user": user.get_username(), "name": name, "prefix": token.prefix})
        return token, key


def revoke_token(token: ApiToken, *, actor=None) -> None:
    with transaction.atomic():
        token.revoke()
        write_audit(actor, "token.revoke", "portal.apitoken", str(token.pk),
                    {"user": token.user.get_username(), "name": token.name, "prefix": token.prefix})
