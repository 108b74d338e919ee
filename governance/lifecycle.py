"""The governed lifecycle's service functions, shared by policies and graphs (docs/governance.md §2).

    draft ──submit──▶ in_review ──approve (enough distinct reviewers)──▶ approved ──deprecate──▶ deprecated
      ▲                  │                                                  │                         │
      └────reject────────┘                                                  └──────retire──▶ retired ◀┘

Each transition takes the acting user explicitly, runs in one transaction with the version's row locked,
writes exactly one audit entry, and is what the API, the portal pages, the admin actions and the commands
call. A refused transition changes nothing and writes only a ``<action>.refused`` audit entry; it raises
``TransitionRefused`` with the HTTP status the API answers (403 not allowed, 409 wrong state, 400 invalid).
"""
from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_object, model_label
from governance.choices import LifecycleStatus
from governance.contributors import contribution_of
from governance.models import Release, Review, Submission, SubmissionOutcome, Verdict
from governance.signals import checking_version, version_retired

S = LifecycleStatus


class TransitionRefused(Exception):
    """A transition that may not happen; ``status`` is the HTTP status (403, 409 or 400)."""

    status = 409

    def __init__(self, message: str, *, status: int | None = None, errors: dict | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.errors = errors or {}


class Forbidden(TransitionRefused):
    status = 403


class WrongState(TransitionRefused):
    status = 409


class Invalid(TransitionRefused):
    status = 400


# --- permissions -----------------------------------------------------------------------------------------


def permission(obj_or_model, verb: str) -> str:
    meta = obj_or_model._meta
    return f"{meta.app_label}.{verb}_{meta.model_name}"


def may_edit(user, obj) -> bool:
    return bool(user and user.is_authenticated and user.has_perm(permission(obj, "change")))


def may_review(user, obj) -> bool:
    return bool(user and user.is_authenticated and user.has_perm(permission(obj, "review")))


def may_create(user, obj) -> bool:
    return bool(user and user.is_authenticated and user.has_perm(permission(obj, "add")))


def approvals_required() -> int:
    return max(1, int(settings.APPROVALS_REQUIRED))


# --- queries ---------------------------------------------------------------------------------------------


def _content_type(obj) -> ContentType:
    return ContentType.objects.get_for_model(type(obj))


def open_submission(obj) -> Submission | None:
    return (
        Submission.objects.filter(content_type=_content_type(obj), object_id=obj.pk, outcome=SubmissionOutcome.OPEN)
        .order_by("-submitted_at", "-pk")
        .first()
    )


def latest_submission(obj) -> Submission | None:
    return Submission.objects.filter(content_type=_content_type(obj), object_id=obj.pk).order_by("-pk").first()


def release_of(obj) -> Release | None:
    return Release.objects.filter(content_type=_content_type(obj), object_id=obj.pk).first()


def history(obj):
    """The audit entries of this version, oldest first."""
    from audit.models import AuditEntry

    return AuditEntry.objects.filter(target_type=model_label(obj), target_key=obj.key).order_by("seq")


def label(obj) -> str:
    return f"{obj._meta.verbose_name} {obj.key}"


# --- the transition machinery ------------------------------------------------------------------------------


def _transition(action: str, obj, actor, comment: str, work: Callable, extra: dict | None = None):
    """Run ``work(locked_obj)`` in a transaction; on refusal write the refusal entry and re-raise.

    ``work`` returns ``(result, audit_data)``; the audit entry is written inside the same transaction.
    """
    try:
        with transaction.atomic():
            locked = type(obj).objects.select_for_update().get(pk=obj.pk)
            result, data = work(locked)
            audit_object(actor, action, data.pop("_target", locked), {"comment": comment, **(extra or {}), **data})
    except TransitionRefused as exc:
        # (values_list, not refresh_from_db(fields=…): PolicyRule.from_db reads every field.)
        current = type(obj).objects.filter(pk=obj.pk).values_list("status", flat=True).first()
        obj.status = current or obj.status
        audit_object(
            actor,
            f"{action}.refused",
            obj,
            {"comment": comment, **(extra or {}), "reason": exc.message, "status": obj.status, "http_status": exc.status},
        )
        raise
    return result  # the locked, updated row (or what the transition created)


def _require_state(obj, action: str, allowed: tuple[str, ...]) -> None:
    if obj.status not in allowed:
        wanted = " or ".join(allowed)
        raise WrongState(f"{label(obj)} is {obj.status}: {action} needs a version that is {wanted}")


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise Forbidden(message)


def _set_status(obj, status: str) -> None:
    obj.status = status
    obj.save(update_fields=["status", "updated_at"])


# --- transitions ---------------------------------------------------------------------------------------


def submit(obj, actor, comment: str = ""):
    """draft → in_review. Authors (and admins); the record must pass the registration checks again."""

    def work(locked):
        _require(may_edit(actor, locked), f"submitting needs the permission '{permission(locked, 'change')}' (author role)")
        _require_state(locked, "submit", (S.DRAFT,))
        try:
            locked.full_clean(validate_unique=False, validate_constraints=False)
            checking_version.send(sender=type(locked), version=locked, copied_from=None)
        except ValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
            reasons = "; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in errors.items())
            raise Invalid(f"{label(locked)} fails the registration checks: {reasons}", errors=errors) from None
        submission = Submission.objects.create(
            content_type=_content_type(locked),
            object_id=locked.pk,
            object_key=locked.key,
            submitted_by=actor,
            submitted_by_username=actor.get_username(),
            comment=comment,
        )
        _set_status(locked, S.IN_REVIEW)
        return locked, {"from": S.DRAFT, "to": S.IN_REVIEW, "submission": submission.pk}

    return _transition("submit", obj, actor, comment, work)


def approve(obj, actor, comment: str = ""):
    """One reviewer's approval; the version becomes approved (and signed) at the configured count."""

    def work(locked):
        _require(may_review(actor, locked), f"approving needs the permission '{permission(locked, 'review')}' (reviewer role)")
        _require_state(locked, "approve", (S.IN_REVIEW,))
        submission = open_submission(locked)
        if submission is None:
            raise WrongState(f"{label(locked)} is in_review but has no open submission: reject it and submit again")
        did = contribution_of(locked, actor)
        if did is not None:
            raise Forbidden(f"{actor.get_username()} {did} {locked.key} and can't approve it: no one, admins "
                            "included, approves their own submission or a version they created or changed")
        if submission.reviews.filter(verdict=Verdict.APPROVE, reviewer=actor).exists():
            raise WrongState(f"{actor.get_username()} has already approved {locked.key}: each reviewer approves once")
        try:
            with transaction.atomic():
                Review.objects.create(
                    submission=submission, reviewer=actor, reviewer_username=actor.get_username(),
                    verdict=Verdict.APPROVE, comment=comment,
                )
        except IntegrityError:
            raise WrongState(f"{actor.get_username()} has already approved {locked.key}") from None
        approvers = list(
            submission.reviews.filter(verdict=Verdict.APPROVE).values_list("reviewer_username", flat=True)
        )
        required = approvals_required()
        data = {"approvals": len(approvers), "required": required, "from": S.IN_REVIEW, "to": S.IN_REVIEW}
        if len(approvers) >= required:
            data.update(_release(locked, submission, approvers, actor))
            data["to"] = S.APPROVED
        return locked, data

    return _transition("approve", obj, actor, comment, work)


def _release(obj, submission: Submission, approvers: list[str], actor) -> dict:
    from governance import signing

    now = timezone.now()
    submission.outcome = SubmissionOutcome.APPROVED
    submission.closed_at = now
    submission.save(update_fields=["outcome", "closed_at"])
    _set_status(obj, S.APPROVED)
    statement = signing.statement_for(obj)
    key_id = signature = ""
    if settings.SIGNING_ENABLED:
        key_id, signature = signing.sign_statement(statement, actor)
    Release.objects.update_or_create(
        content_type=_content_type(obj),
        object_id=obj.pk,
        defaults={"object_key": obj.key, "approvers": approvers, "statement": statement,
                  "signature": signature, "key_id": key_id, "deprecated_at": None, "replacement_uri": "",
                  "retired_at": None},
    )
    return {"key_id": key_id, "signed": bool(signature), "approvers": approvers}


def reject(obj, actor, comment: str = ""):
    """in_review → draft, with the reviewer's comment."""

    def work(locked):
        _require(may_review(actor, locked), f"rejecting needs the permission '{permission(locked, 'review')}' (reviewer role)")
        _require_state(locked, "reject", (S.IN_REVIEW,))
        if not (comment or "").strip():
            # The author gets the version back as a draft: the comment is the only place the reason is said.
            raise TransitionRefused("a rejection needs a comment telling the author what to change", status=400,
                                    errors={"comment": ["required when rejecting"]})
        submission = open_submission(locked)
        if submission is not None:
            Review.objects.create(
                submission=submission, reviewer=actor, reviewer_username=actor.get_username(),
                verdict=Verdict.REJECT, comment=comment,
            )
            submission.outcome = SubmissionOutcome.REJECTED
            submission.closed_at = timezone.now()
            submission.save(update_fields=["outcome", "closed_at"])
        _set_status(locked, S.DRAFT)
        return locked, {"from": S.IN_REVIEW, "to": S.DRAFT}

    return _transition("reject", obj, actor, comment, work)


def deprecate(obj, actor, comment: str = "", replacement_uri: str | None = None):
    """approved → deprecated: still executable, flagged in listings and response headers."""

    def work(locked):
        _require(may_review(actor, locked), f"deprecating needs the permission '{permission(locked, 'review')}' (reviewer role)")
        _require_state(locked, "deprecate", (S.APPROVED,))
        if replacement_uri:
            model = type(locked)
            if replacement_uri == locked.key or not model.objects.filter(**{model.lookup_field: replacement_uri}).exists():
                raise Invalid(
                    f"replacement_uri '{replacement_uri}' is not another registered {locked._meta.verbose_name}",
                    errors={"replacement_uri": ["not another registered version"]},
                )
        _set_status(locked, S.DEPRECATED)
        Release.objects.filter(content_type=_content_type(locked), object_id=locked.pk).update(
            deprecated_at=timezone.now(), replacement_uri=replacement_uri or ""
        )
        return locked, {"from": S.APPROVED, "to": S.DEPRECATED}

    return _transition("deprecate", obj, actor, comment, work, {"replacement_uri": replacement_uri or ""})


def retire(obj, actor, comment: str = "") -> tuple[object, list[str]]:
    """approved/deprecated → retired: no longer executable or deployable. Returns the version and its users.

    The apps whose records use the version flag them and describe them (``signals.version_retired``).
    """
    found: list[str] = []

    def work(locked):
        _require(may_review(actor, locked), f"retiring needs the permission '{permission(locked, 'review')}' (reviewer role)")
        _require_state(locked, "retire", (S.APPROVED, S.DEPRECATED))
        previous = locked.status
        _set_status(locked, S.RETIRED)
        for _receiver, described in version_retired.send(sender=type(locked), version=locked, actor=actor):
            found.extend(described or ())
        Release.objects.filter(content_type=_content_type(locked), object_id=locked.pk).update(retired_at=timezone.now())
        return locked, {"from": previous, "to": S.RETIRED, "affected": found}

    return _transition("retire", obj, actor, comment, work), found


def version_fields(model) -> tuple[str, str]:
    """The (version, release tag) identity fields of a governed model."""
    names = [f.name for f in model._meta.concrete_fields]
    version = next(n for n in model.identity_fields if n.endswith("version") and n in names)
    tag = next(n for n in model.identity_fields if n.endswith("release_tag") and n in names)
    return version, tag


def new_version(obj, actor, version: str, release_tag: str | None = None):
    """Copy ``obj`` into a new draft ``version``/``release_tag`` (default: the same tag)."""
    model = type(obj)
    version_field, tag_field = version_fields(model)

    def work(locked):
        _require(may_create(actor, locked), f"new versions need the permission '{permission(locked, 'add')}' (author role)")
        if not version or not isinstance(version, str):
            raise Invalid("new-version needs a 'version'", errors={"version": ["required"]})
        skip = {"id", model.lookup_field, "status", "created_at", "updated_at", "created_by"}
        values = {f.name: getattr(locked, f.name) for f in model._meta.concrete_fields if f.name not in skip}
        values[version_field] = version
        values[tag_field] = release_tag or getattr(locked, tag_field)
        copy = model(**values, created_by=actor, status=S.DRAFT)
        copy.compute_derived_fields()
        try:
            copy.full_clean(validate_unique=False, validate_constraints=False)
            checking_version.send(sender=model, version=copy, copied_from=locked)
        except ValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
            reasons = "; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in errors.items())
            raise Invalid(f"the new version is invalid: {reasons}", errors=errors) from None
        try:
            with transaction.atomic():
                copy.save()
        except IntegrityError:
            raise WrongState(f"a {model._meta.verbose_name} with {model.lookup_field} '{copy.key}' already exists") from None
        return copy, {"_target": copy, "copied_from": locked.key, "from_status": locked.status}

    return _transition("new_version", obj, actor, "", work)


# --- record changes (create / update / delete), for the API and the admin ------------------------------------


def check_frozen(obj, changes: dict) -> None:
    """Refuse (409, naming the field) a change to a behaviour-relevant field of a version that isn't a draft."""
    if not obj.is_frozen:
        return
    for name in obj.frozen_fields:
        if name in changes:
            raise WrongState(
                f"{label(obj)} is {obj.status}: '{name}' can't change once a version leaves draft; "
                "create a new version (POST …/new-version) to change it",
                errors={name: [f"frozen while {obj.status}"]},
            )
