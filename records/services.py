"""The one audited path for record changes: the API, the admin and the pages save and delete records here.

Each change runs in one transaction with its audit entry (docs/governance.md §3) and under the same rules
wherever it comes from: the record's own delete rule (``RecordModel.delete_refusal``: a governed version past
draft is deleted only by an admin, a *forced* delete), the database's PROTECT/RESTRICT foreign keys (a record
others use answers 409 naming them), and the cleanup apps hang on ``post_delete`` (an asset's stored file).
"""
from collections.abc import Callable

from django.db import transaction
from django.db.models import ProtectedError, RestrictedError

from audit.services import audit_object
from records.documents import search_document

#: At most this many dependents are named in a refusal.
MAX_NAMED = 20


class RecordInUse(Exception):
    """Deleting the record would leave others pointing at nothing: answered with 409."""

    def __init__(self, instance, dependents: list[str]):
        shown = dependents[:MAX_NAMED] + ([f"{len(dependents) - MAX_NAMED} more"] if len(dependents) > MAX_NAMED else [])
        what = describe(instance) if instance is not None else "the record"
        super().__init__(f"{what} is used by {', '.join(shown)}; delete or change those first")
        self.message = str(self)
        self.dependents = dependents


class DeleteRefused(Exception):
    """The record's own rule refuses this actor's delete: answered with 403."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def describe(obj) -> str:
    """``policy x:1-y``, ``job 3f…``: a record by its kind and key; other rows (graph nodes) by ``str()``."""
    key = getattr(obj, "key", None)
    return f"{obj._meta.verbose_name} {key}" if key is not None else str(obj)


def in_use(instance, exc: ProtectedError | RestrictedError) -> RecordInUse:
    objects = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
    return RecordInUse(instance, list(dict.fromkeys(describe(obj) for obj in objects)))


def change_data(before: dict | None, after: dict) -> dict:
    """An audit entry's data: the new record, or the fields an update changed with their old and new values."""
    if before is None:
        return {"after": after}
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k) and k != "updated_at")
    return {"changed": changed, "before": {k: before.get(k) for k in changed}, "after": {k: after.get(k) for k in changed}}


def save_record(instance, actor, *, action: str, before: dict | None = None,
                render: Callable[[object], dict] = search_document, extra: dict | None = None):
    """Save ``instance`` and audit it as ``action`` by ``actor``: ``before`` is its rendering before the change
    (None for a create), ``render`` renders it (the API passes its serializer's, the default is the search
    document). Raises ``IntegrityError`` when a unique key is taken; nothing is saved then."""
    with transaction.atomic():
        instance.save()
        data = {**change_data(before, dict(render(instance))), **(extra or {})}
        audit_object(actor, action, instance, data)
        instance.audited_save(actor, data)
    return instance


def delete_record(instance, actor, *, render: Callable[[object], dict] = search_document,
                  extra: dict | None = None) -> dict:
    """Delete ``instance`` for ``actor`` and audit it; returns its rendering from before the delete.

    Raises ``DeleteRefused`` (audited as ``delete.refused``) when the record's rule refuses the actor, and
    ``RecordInUse`` when other records still point at it; nothing is deleted then.
    """
    facts = {**instance.delete_audit_data(actor), **(extra or {})}
    refusal = instance.delete_refusal(actor)
    if refusal is not None:
        audit_object(actor, "delete.refused", instance, {"reason": refusal, **facts})
        raise DeleteRefused(refusal)
    before = dict(render(instance))
    key = instance.key
    data = {"before": before, **facts}
    try:
        with transaction.atomic():
            instance.delete()
            audit_object(actor, "delete", instance, data, target_key=key)
    except (ProtectedError, RestrictedError) as exc:
        raise in_use(instance, exc) from None
    return before
