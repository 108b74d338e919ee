"""The lifecycle routes of docs/governance.md §2 as one viewset mixin.

``LifecycleViewSetMixin`` adds ``submit``, ``approve``, ``reject``, ``deprecate``, ``retire``,
``new-version``, ``history`` and ``diff`` to a governed resource's viewset, refuses changes to frozen fields
(409 naming the field) and flags deprecated versions in response headers. The views only translate HTTP to
the service functions of ``governance.lifecycle``, which check the roles and write the audit entries.
"""
from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound

from audit.api.serializers import AuditEntrySerializer
from governance import diff as version_diff
from governance import lifecycle
from governance.choices import LifecycleStatus
from governance.models import Submission
from records.api.errors import ApiError
from records.api.viewsets import ok


def _text(request, name: str, required: bool = False) -> str:
    data = request.data if isinstance(request.data, dict) else None
    if data is None:
        raise ApiError("the body must be a JSON object", 400, errors={"non_field_errors": ["expected a JSON object"]})
    value = data.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ApiError(f"'{name}' must be a string", 400, errors={name: ["must be a string"]})
    if required and not value:
        raise ApiError(f"'{name}' is required", 400, errors={name: ["required"]})
    return value


COMMENT_BODY = inline_serializer("LifecycleComment", {"comment": serializers.CharField(required=False, allow_blank=True)})


class LifecycleViewSetMixin:
    """Mix into a ``RecordViewSet`` of a ``GovernedModel``."""

    # The services check the roles themselves so that a forbidden attempt is audited as a refusal.
    lifecycle_actions = ("submit", "approve", "reject", "deprecate", "retire", "new_version")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.action_permissions = {**getattr(cls, "action_permissions", {}),
                                  **{name: "authenticated" for name in cls.lifecycle_actions}}

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action in self.lifecycle_actions:
            return queryset  # the service locks and re-reads the row itself
        return self.with_governance(queryset)

    @staticmethod
    def with_governance(queryset):
        """Prefetch what the governance fields read (releases, rounds, reviews): three queries per page."""
        # to_attr keeps plain lists on each record: reading a prefetched GenericRelation through its manager
        # builds a new queryset for every record of the page.
        return queryset.prefetch_related(
            Prefetch("releases", to_attr="prefetched_releases"),
            Prefetch("submissions", queryset=Submission.objects.prefetch_related(
                Prefetch("reviews", to_attr="prefetched_reviews")), to_attr="prefetched_submissions"),
        )

    # --- frozen fields -----------------------------------------------------------------------------------
    def check_update_allowed(self, instance, new_doc: dict) -> None:
        super().check_update_allowed(instance, new_doc)
        refusal = instance.edit_refusal(self.request.user)
        if refusal is not None:
            lifecycle.audit_object(self.request.user, "update.refused", instance,
                                   {"reason": refusal, "status": instance.status, "http_status": 403})
            raise ApiError(refusal, 403)
        if not instance.is_frozen:
            return
        current = self.get_serializer(instance).data
        recomputed = set(getattr(instance, "pinned_fields", ()))
        changes = {
            name: new_doc[name]
            for name in instance.frozen_fields
            if name in new_doc and new_doc[name] != current.get(name)
            and not (name in recomputed and new_doc[name] in ("", None))
        }
        try:
            lifecycle.check_frozen(instance, changes)
        except lifecycle.TransitionRefused as exc:
            lifecycle.audit_object(self.request.user, "update.refused", instance,
                                   {"reason": exc.message, "status": instance.status, "fields": sorted(changes)})
            raise ApiError(exc.message, exc.status, errors=exc.errors) from None

    # --- deprecation flag ------------------------------------------------------------------------------
    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        data = getattr(response, "data", None)
        record = data.get("data") if isinstance(data, dict) else None
        if isinstance(record, dict) and record.get("status") == LifecycleStatus.DEPRECATED:
            response["Deprecation"] = "true"
            response["X-PolicyGrid-Deprecated"] = "true"
            if record.get("replacement_uri"):
                response["X-PolicyGrid-Replacement"] = record["replacement_uri"]
        elif isinstance(record, list) and any(
            isinstance(item, dict) and item.get("status") == LifecycleStatus.DEPRECATED for item in record
        ):
            response["X-PolicyGrid-Deprecated"] = ", ".join(
                str(item.get(self.lookup_field)) for item in record
                if isinstance(item, dict) and item.get("status") == LifecycleStatus.DEPRECATED
            )
        return response

    # --- transitions ------------------------------------------------------------------------------------
    def _run(self, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except lifecycle.TransitionRefused as exc:
            extra = {"errors": exc.errors} if exc.errors else {}
            raise ApiError(exc.message, exc.status, **extra) from None

    def _answer(self, obj, status_code=status.HTTP_200_OK, **extra):
        obj = self.with_governance(type(obj).objects.filter(pk=obj.pk)).get()  # with releases and approvals
        return ok(self.get_serializer(obj).data, status_code, **extra)

    @extend_schema(request=COMMENT_BODY, description="draft → in_review (author). docs/governance.md §2.")
    @action(detail=True, methods=["post"])
    def submit(self, request, **kwargs):
        obj = self.get_object()
        return self._answer(self._run(lifecycle.submit, obj, request.user, _text(request, "comment")))

    @extend_schema(request=COMMENT_BODY, description="A reviewer's approval (never the submitter's own).")
    @action(detail=True, methods=["post"])
    def approve(self, request, **kwargs):
        obj = self.get_object()
        return self._answer(self._run(lifecycle.approve, obj, request.user, _text(request, "comment")))

    @extend_schema(request=COMMENT_BODY, description="in_review → draft, with the reviewer's comment.")
    @action(detail=True, methods=["post"])
    def reject(self, request, **kwargs):
        obj = self.get_object()
        return self._answer(self._run(lifecycle.reject, obj, request.user, _text(request, "comment")))

    @extend_schema(
        request=inline_serializer("Deprecate", {"comment": serializers.CharField(required=False),
                                                "replacement_uri": serializers.CharField(required=False)}),
        description="approved → deprecated: still executable, flagged.",
    )
    @action(detail=True, methods=["post"])
    def deprecate(self, request, **kwargs):
        obj = self.get_object()
        return self._answer(self._run(lifecycle.deprecate, obj, request.user, _text(request, "comment"),
                                      _text(request, "replacement_uri") or None))

    @extend_schema(request=COMMENT_BODY, description="approved/deprecated → retired; lists what still uses it.")
    @action(detail=True, methods=["post"])
    def retire(self, request, **kwargs):
        obj = self.get_object()
        obj, affected = self._run(lifecycle.retire, obj, request.user, _text(request, "comment"))
        obj = self.with_governance(type(obj).objects.filter(pk=obj.pk)).get()
        record = {**self.get_serializer(obj).data, "affected": affected}
        return ok(record, affected=affected)

    @extend_schema(
        request=inline_serializer("NewVersion", {"version": serializers.CharField(),
                                                 "release_tag": serializers.CharField(required=False)}),
        description="Copy this version into a new draft.",
    )
    @action(detail=True, methods=["post"], url_path="new-version")
    def new_version(self, request, **kwargs):
        obj = self.get_object()
        version_field, tag_field = lifecycle.version_fields(type(obj))
        version = _text(request, "version") or _text(request, version_field)
        tag = _text(request, "release_tag") or _text(request, tag_field) or None
        if not version:
            raise ApiError("'version' is required", 400, errors={"version": ["required"]})
        copy = self._run(lifecycle.new_version, obj, request.user, version, tag)
        return self._answer(copy, status.HTTP_201_CREATED)

    @extend_schema(responses=AuditEntrySerializer(many=True), description="The audit entries of this version.")
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def history(self, request, **kwargs):
        obj = self.get_object()
        return ok(AuditEntrySerializer(lifecycle.history(obj), many=True).data)

    @extend_schema(
        parameters=[OpenApiParameter("against", str, description="URI to compare with; default: the previous approved version")],
        responses=OpenApiTypes.OBJECT,
        description="Field-by-field differences, including the package's files.",
    )
    @action(detail=True, methods=["get"])
    def diff(self, request, **kwargs):
        obj = self.get_object()
        against_key = request.query_params.get("against")
        model = type(obj)
        if against_key:
            against = model.objects.filter(**{model.lookup_field: against_key}).first()
            if against is None:
                raise NotFound(f"no {model._meta.verbose_name} with {model.lookup_field} '{against_key}'")
        else:
            against = version_diff.previous_approved(obj)
            if against is None:
                raise NotFound(f"{lifecycle.label(obj)} has no previous approved version: pass ?against=<uri>")
        return ok(version_diff.diff(obj, against))
