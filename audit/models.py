"""The append-only, hash-chained audit trail (docs/governance.md §3)."""
from datetime import UTC, datetime

from django.conf import settings
from django.db import models


def utc_text(ts: datetime) -> str:
    """How hashed and signed content writes a time: UTC, microseconds, ``Z``."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditEntryQuerySet(models.QuerySet):
    """Bulk writes would bypass the models' refusals (entries, checkpoints), so the queryset refuses them too."""

    def update(self, **kwargs):
        raise PermissionError(f"{self.model._meta.verbose_name_plural} are append-only: they can't be updated")

    def delete(self):
        raise PermissionError(f"{self.model._meta.verbose_name_plural} are append-only: they can't be deleted")

    def _raw_delete(self, using=None):
        raise PermissionError(f"{self.model._meta.verbose_name_plural} are append-only: they can't be deleted")


class AppendOnly(models.Model):
    """A row that, once written, is never updated or deleted through Django (entries, checkpoints)."""

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError(f"{self._meta.verbose_name_plural} are append-only: they can't be updated")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError(f"{self._meta.verbose_name_plural} are append-only: they can't be deleted")


class AuditEntry(AppendOnly):
    """One change, action, token event or execution, written only by ``audit.services.write_audit``.

    ``entry_hash`` is the SHA-256 of the entry's canonical content (``audit.services.canonical_content``),
    which includes ``prev_hash``, the hash of the entry before it: altering, removing or inserting a row
    breaks the chain, and ``manage.py verify_audit`` names where. ``seq`` orders the chain; it is not part
    of the hashed content, so renumbering rows can't hide an insertion.

    ``actor_id`` is a plain column (no foreign-key constraint, nothing done on user deletion) because
    nulling it when a user is deleted would alter hashed content; ``actor_username`` freezes the name.
    """

    seq = models.BigIntegerField(unique=True, editable=False)
    timestamp = models.DateTimeField(editable=False, db_index=True)
    # Every execution appends an entry, and each index is one more page written per commit: only the
    # lookups the API makes are indexed. Nothing filters on actor_id (the API's `actor` is the frozen
    # username), and target_type is the first column of the (target_type, target_key, seq) index.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    actor_username = models.CharField(max_length=150, blank=True, default="", editable=False)
    action = models.CharField(max_length=64, editable=False, db_index=True)
    target_type = models.CharField(max_length=64, editable=False)
    target_key = models.CharField(max_length=512, blank=True, default="", editable=False, db_index=True)
    request_id = models.CharField(max_length=64, blank=True, default="", editable=False)
    data = models.JSONField(default=dict, blank=True, editable=False)
    prev_hash = models.CharField(max_length=64, editable=False)
    entry_hash = models.CharField(max_length=64, editable=False, unique=True)

    class Meta:
        ordering = ["seq"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["target_type", "target_key", "seq"], name="audit_auditentry_target")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.target_type} {self.target_key}"


class AuditChainHead(models.Model):
    """The single row that records the chain's last entry.

    Appends lock it (``select_for_update``) so concurrent writers chain one after the other instead of
    forking; it also lets ``verify_audit`` notice entries removed from, or appended to, the end of the log.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="")

    class Meta:
        verbose_name = "audit chain head"


class AuditCheckpoint(AppendOnly):
    """A signed statement that the chain's entry ``seq`` had the hash ``entry_hash`` at ``at``.

    The chain alone proves nothing to someone who can rewrite the table: every hash can be recomputed. A
    checkpoint is signed with the key store's active key (whose private half is not in the database), and
    each is also appended to a file outside the database (``settings.AUDIT_CHECKPOINT_FILE``); a rewrite of
    history before a checkpoint then fails ``verify_audit`` (``audit.checkpoints``). Append-only, like entries.
    """

    seq = models.BigIntegerField(unique=True, editable=False)
    entry_hash = models.CharField(max_length=64, editable=False)
    at = models.DateTimeField(editable=False)
    key_id = models.CharField(max_length=64, editable=False)
    signature = models.CharField(max_length=200, editable=False)

    class Meta:
        ordering = ["seq"]
        verbose_name = "audit checkpoint"

    def __str__(self) -> str:
        return f"checkpoint #{self.seq} ({self.key_id})"
