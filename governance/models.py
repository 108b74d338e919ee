"""The governed lifecycle's models: the GovernedModel mixin, review rounds, decisions, releases, signing keys.

Reviews and releases are generic (keyed by content type) rather than one set per app: policies and graphs
follow the same lifecycle through the same service functions (``governance.lifecycle``), so they share one
set of tables, and governance imports no resource app.
"""
from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.db import models

from accounts.roles import is_admin
from governance.choices import LifecycleStatus


class SubmissionOutcome(models.TextChoices):
    OPEN = "open", "Open"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class Verdict(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


class Submission(models.Model):
    """One round of review: opened by ``submit``, closed by enough approvals or by one rejection.

    The submitter is recorded here because no one, admins included, may approve their own submission.
    """

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("content_type", "object_id")
    object_key = models.CharField(max_length=255, help_text="the version's URI when it was submitted")
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_by_username = models.CharField(max_length=150, blank=True, default="")
    submitted_at = models.DateTimeField(auto_now_add=True)
    comment = models.TextField(blank=True, default="")
    outcome = models.CharField(
        max_length=10, choices=SubmissionOutcome.choices, default=SubmissionOutcome.OPEN, db_index=True
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-submitted_at", "-pk"]
        indexes = [models.Index(fields=["content_type", "object_id"], name="governance_submission_target")]

    def __str__(self) -> str:
        return f"{self.object_key} submitted by {self.submitted_by_username} ({self.outcome})"


class Review(models.Model):
    """A reviewer's decision in a submission, with their comment. One approval per reviewer per round."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewer_username = models.CharField(max_length=150)
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    comment = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["submission", "reviewer"],
                condition=models.Q(verdict="approve"),
                name="%(app_label)s_%(class)s_one_approval_per_reviewer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.verdict} by {self.reviewer_username}"


class Release(models.Model):
    """The approval of one version, its signed release statement, and what happened to it later.

    ``statement`` is exactly what was signed (``policygrid.signing.canonical_statement``); ``signature`` is
    the base64 Ed25519 signature by key ``key_id`` (both empty when signing is off).
    """

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("content_type", "object_id")
    object_key = models.CharField(max_length=255)
    approved_at = models.DateTimeField(auto_now_add=True)
    approvers = models.JSONField(default=list, blank=True, help_text="usernames of the approving reviewers")
    statement = models.JSONField(default=dict, blank=True)
    signature = models.CharField(max_length=200, blank=True, default="")
    key_id = models.CharField(max_length=64, blank=True, default="")
    deprecated_at = models.DateTimeField(null=True, blank=True)
    replacement_uri = models.CharField(max_length=255, blank=True, default="")
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-approved_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["content_type", "object_id"], name="%(app_label)s_%(class)s_one_per_version"),
        ]

    def __str__(self) -> str:
        return f"release of {self.object_key}"


class BehaviourChange(models.Model):
    """Who changed which behaviour fields (``frozen_fields``) of a version: none of them may approve it.

    Written by ``GovernedModel.audited_save``, in the transaction of the audited save (API, admin, pages).
    """

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("content_type", "object_id")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_by_username = models.CharField(max_length=150, blank=True, default="")
    fields = models.JSONField(default=list, blank=True, help_text="the behaviour fields this change changed")
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["changed_at", "pk"]
        indexes = [models.Index(fields=["content_type", "object_id"], name="governance_change_target")]

    def __str__(self) -> str:
        return f"{', '.join(self.fields)} changed by {self.changed_by_username}"


class KeyStatus(models.TextChoices):
    """``active`` signs new approvals; ``retired`` only verifies old ones; ``revoked`` verifies nothing."""

    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"
    REVOKED = "revoked", "Revoked"


class SigningKey(models.Model):
    """The public half of a release-signing key; the private half stays in the key store folder."""

    key_id = models.CharField(max_length=64, unique=True, editable=False)
    algorithm = models.CharField(max_length=20, default="ed25519", editable=False)
    public_key = models.CharField(max_length=100, editable=False, help_text="raw public key, base64")
    status = models.CharField(max_length=10, choices=KeyStatus.choices, default=KeyStatus.ACTIVE, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # At most one key signs at a time.
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="active"), name="%(app_label)s_%(class)s_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key_id} ({self.status})"


class GovernedModel(models.Model):
    """A versioned record that is reviewed before it may run.

    ``status`` moves only through the lifecycle service functions (submit, approve, reject, deprecate,
    retire); the API's update routes treat it as read-only. ``frozen_fields`` are those that change
    behaviour: once approved they can't change (409), while descriptive fields stay editable.
    """

    frozen_fields: tuple[str, ...] = ()

    status = models.CharField(
        max_length=20, choices=LifecycleStatus.choices, default=LifecycleStatus.DRAFT, db_index=True
    )
    # Review rounds and the release (governance.models): generic so that every governed model shares
    # them; declared here so that they are deleted with the version and can be prefetched for listings.
    submissions = GenericRelation("governance.Submission")
    releases = GenericRelation("governance.Release")
    behaviour_changes = GenericRelation("governance.BehaviourChange")

    class Meta:
        abstract = True

    @property
    def is_frozen(self) -> bool:
        return self.status != LifecycleStatus.DRAFT

    def package_files(self) -> dict[str, bytes]:
        """The files of the version's package (path → bytes), for review pages and diffs; none by default."""
        return {}

    def edit_refusal(self, actor) -> str | None:
        """Why ``actor`` may not change or delete this version, or None: an author edits only their own
        versions (else one author could swap the code of another's draft under their name); admins any.

        A version with no owner (made outside the API, or its creator deleted) stays editable by authors: its
        behaviour changes are recorded all the same (``audited_save``), and their authors can't approve it."""
        if self.created_by_id is None or self.created_by_id == getattr(actor, "pk", None) or is_admin(actor):
            return None
        return (f"{self._meta.verbose_name} {self.key} belongs to {self.created_by.get_username()}: an author "
                "edits only their own drafts (an admin may edit any)")

    def delete_refusal(self, actor) -> str | None:
        # A version past draft may have run or been relied on: only an admin deletes it (a forced delete,
        # the same in the API, the admin and the pages); others retire it.
        if self.is_frozen and not is_admin(actor):
            return (f"{self._meta.verbose_name} {self.key} is {self.status}: only drafts can be deleted, "
                    "except by an admin (forced delete); retire it instead")
        return self.edit_refusal(actor)

    def audited_save(self, actor, data: dict) -> None:
        changed = sorted(set(data.get("changed", ())) & set(self.frozen_fields))
        if changed:
            BehaviourChange.objects.create(
                target=self, changed_by=actor if getattr(actor, "pk", None) else None,
                changed_by_username=actor.get_username() if getattr(actor, "pk", None) else "", fields=changed,
            )

    def delete_audit_data(self, actor) -> dict:
        return {"status": self.status, "forced": self.is_frozen}
