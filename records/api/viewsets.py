"""The one base viewset: envelope, pagination, filtering, ``/query``, the update language, permissions.

A resource's viewset declares its queryset, serializer and filterset; everything else is here.
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from records.api.errors import ApiError, Conflict
from records.api.pagination import stream_envelope
from records.budget import query_budget
from records.query import QueryError, filter_and_count
from records.services import delete_record, save_record
from records.sorting import sort_order
from records.update import resolve_update

logger = logging.getLogger(__name__)


def ok(data, status_code: int = status.HTTP_200_OK, **extra) -> Response:
    return Response({"success": True, "data": data, **extra}, status=status_code)


MAX_TAIL = 100_000


def tail_parameter(request) -> int | None:
    """``?tail=N`` of a logs route: None when absent, else an integer from 0 to MAX_TAIL (400 otherwise)."""
    raw = request.query_params.get("tail")
    if raw in (None, ""):
        return None
    if not raw.isdigit() or int(raw) > MAX_TAIL:
        raise ApiError(f"'tail' must be an integer from 0 to {MAX_TAIL}", 400,
                       errors={"tail": [f"an integer from 0 to {MAX_TAIL}"]})
    return int(raw)


class RecordViewSet(viewsets.ModelViewSet):
    """CRUD + query for a ``RecordModel`` at the spec's paths, answering in the envelope of docs/api.md §1."""

    lookup_value_regex = r"[^/]+"
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]
    # `query` reads, whatever its HTTP method: it needs the view permission (and passes anonymous read).
    read_actions = ("query",)
    action_permissions: dict[str, str] = {}
    # Which record types may not be created through `POST /<resource>` (they have their own routes): the
    # router (records.api.routers) leaves the route out.
    allow_create = True
    sortable_fields: tuple[str, ...] = ()
    # The columns an action reads, where it needs only a few of a wide row (the rest stay deferred).
    action_fields: dict[str, tuple[str, ...]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if getattr(cls, "queryset", None) is not None:
            # The URL key is the model's own (a URI, an id or a name), declared once on the model.
            cls.lookup_field = cls.queryset.model.lookup_field

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action in ("list", "query"):
            queryset = queryset.select_related("created_by")
        fields = self.action_fields.get(self.action)
        return queryset.only(*fields) if fields else queryset

    def filter_queryset(self, queryset):
        # List filters (django-filter, ordering) mean nothing for one record or an action on it, and building
        # a filterset costs a measurable share of a fast request such as execute_policy.
        if self.action != "list":
            return queryset
        return super().filter_queryset(queryset)

    def get_object(self):
        model = self.queryset.model
        key = self.kwargs.get(self.lookup_field)
        try:
            if "\x00" in str(key):
                raise Http404  # no key holds NUL, and PostgreSQL refuses one in a parameter (a 500)
            return super().get_object()
        except Http404:
            raise Http404(f"no {model._meta.verbose_name} with {self.lookup_field} '{key}'") from None

    # --- read -----------------------------------------------------------------------------------------
    def retrieve(self, request, *args, **kwargs):
        return ok(self.get_serializer(self.get_object()).data)

    def list(self, request, *args, **kwargs):
        # DRF's, within the query time budget (its filters are queries too); the pagination class answers in
        # the envelope.
        with query_budget(settings.QUERY_TIME_BUDGET, self.get_queryset().db):
            return super().list(request, *args, **kwargs)

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        parameters=[
            OpenApiParameter("limit", int, description="at most this many records"),
            OpenApiParameter("skip", int, description="skip this many records first"),
            OpenApiParameter("sort", str, description="comma-separated fields or dotted paths into JSON fields, "
                                                      "'-' for descending"),
            OpenApiParameter("page", int, description="paginate like a list (also page_size)"),
        ],
        description="MongoDB-style filter document (docs/api.md §2), compiled into a database query. Without "
                    "limit, page or page_size: every match, up to POLICYGRID_QUERY_MAX_RESULTS (else 400).",
    )
    @action(detail=False, methods=["post"], url_path="query")
    def query(self, request):
        if not request.body:
            raise ApiError("the filter document is required: send {} for every record", 400,
                           errors={"body": ["required"]})
        if not (request.content_type or "").startswith("application/json"):
            # DRF reads a body without a content type as no data: the filter would silently become {}.
            raise ApiError("the filter document must be sent as application/json", 415,
                           errors={"Content-Type": [f"'{request.content_type or ''}' is not application/json"]})
        document = request.data
        with query_budget(settings.QUERY_TIME_BUDGET, self.get_queryset().db):
            return self._query(request, document)

    def _query(self, request, document):
        try:
            queryset, count = filter_and_count(self.get_queryset(), document)
        except QueryError as exc:
            raise ApiError(
                f"invalid query at {exc.path}: {exc.reason}", 400, errors={exc.path: [exc.reason]}
            ) from None
        queryset = queryset.order_by(*self._sort_fields(request.query_params.get("sort")))
        skip = self._non_negative(request, "skip", 0)
        limit = self._non_negative(request, "limit", None)
        if ("skip" in request.query_params or "limit" in request.query_params) and self.paginator.page_requested(
                request):
            reason = "page through a query with skip/limit or with page/page_size, not both"
            raise ApiError(reason, 400, errors={"page": [reason]})
        if skip or limit is not None:
            queryset = queryset[skip : skip + limit if limit is not None else None]
            return ok(self.get_serializer(queryset, many=True).data)
        if not self.paginator.page_requested(request):
            return self.every_match(queryset, count)
        self.paginator.count_hint = count
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def every_match(self, queryset, count):
        """``/query`` without ``page``, ``page_size`` or ``limit``: every match, never a silent first page (the
        earlier system's clients read no ``pagination``), up to ``QUERY_MAX_RESULTS``; more answers 400 saying
        how to page. A long answer is streamed, so it never sits whole in memory."""
        total, cap = count(), settings.QUERY_MAX_RESULTS
        if total > cap:
            reason = (f"{total} records match, more than the {cap} a query answers at once: page through them "
                      f"with ?page=N&page_size=M (M at most {settings.API_MAX_PAGE_SIZE}) or ?skip=&limit=")
            raise ApiError(reason, 400, errors={"page": [reason]})
        pagination = {"count": total, "next": None, "previous": None}
        if total <= settings.API_MAX_PAGE_SIZE:
            return ok(self.get_serializer(queryset, many=True).data, pagination=pagination)
        return stream_envelope(queryset, lambda rows: self.get_serializer(rows, many=True).data,
                               {"pagination": pagination}, settings.API_MAX_PAGE_SIZE)

    def _sort_fields(self, sort: str | None) -> list:
        return sort_order(self.queryset.model, sort)

    @staticmethod
    def _non_negative(request, name, default):
        values = request.query_params.getlist(name)
        if len(values) > 1:
            raise ApiError(f"'{name}' is given {len(values)} times", 400, errors={name: ["given more than once"]})
        raw = values[0] if values else None
        if raw is None or raw == "":
            return default
        if not (raw.isascii() and raw.isdigit()):  # str.isdigit() takes '²', which int() refuses
            raise ApiError(f"'{name}' must be a non-negative integer", 400, errors={name: ["not a non-negative integer"]})
        value = int(raw)
        if value > settings.QUERY_MAX_SKIP_LIMIT:
            # SQL's LIMIT and OFFSET are 64-bit: 2**63 overflowed the driver (a 500).
            reason = f"at most {settings.QUERY_MAX_SKIP_LIMIT}"
            raise ApiError(f"'{name}' must be {reason}", 400, errors={name: [reason]})
        return value

    # --- write ----------------------------------------------------------------------------------------
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        instance = self.save_or_conflict(serializer, action="create", created_by=request.user)
        return ok(self.get_serializer(instance).data, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        if not request.body:
            raise ApiError("a request body is required: the fields to set, or an update document ($set/$unset)",
                           400, errors={"body": ["required"]})
        instance = self.get_object()
        serializer = self.get_serializer(instance)
        current = serializer.data
        writable = {name for name, field in serializer.fields.items() if not field.read_only}
        model = self.queryset.model
        new_doc = resolve_update(
            current,
            request.data,
            partial=partial,
            writable=writable,
            json_fields=model.json_field_names(),
            identity_fields=model.identity_fields,
        )
        self._fill_defaults(new_doc, writable)
        self.check_update_allowed(instance, new_doc)
        serializer = self.get_serializer(instance, data=new_doc)
        serializer.is_valid(raise_exception=True)
        instance = self.save_or_conflict(serializer, action="update", before=current)
        return ok(self.get_serializer(instance).data)

    def _fill_defaults(self, doc: dict, writable: set[str]) -> None:
        """Writable fields left out of a replacement (or $unset) go back to their defaults (docs/api.md §3)."""
        from django.db.models import NOT_PROVIDED

        for model_field in self.queryset.model._meta.concrete_fields:
            if model_field.name in writable and model_field.name not in doc and model_field.default is not NOT_PROVIDED:
                default = model_field.default
                doc[model_field.name] = default() if callable(default) else default

    def check_update_allowed(self, instance, new_doc: dict) -> None:
        """Hook for lifecycle rules (frozen fields of approved versions answer 409)."""

    def save_or_conflict(self, serializer, *, action: str, before: dict | None = None, **values):
        """Save the validated record through the one audited path; a taken unique key answers 409."""
        instance = serializer.instance if serializer.instance is not None else self.queryset.model()
        for name, value in {**serializer.validated_data, **values}.items():
            setattr(instance, name, value)
        self.prepare_save(instance)
        try:
            return save_record(instance, self.request.user, action=action, before=before, render=self.render)
        except IntegrityError as exc:
            raise Conflict(self.conflict_message(serializer, exc)) from None

    def prepare_save(self, instance) -> None:
        """Hook: work a resource does on a validated record before it is saved (a policy's registration)."""

    def render(self, instance) -> dict:
        """The record as the API shows it: what its audit entries record."""
        return self.get_serializer(instance).data

    def conflict_message(self, serializer, exc) -> str:
        model = self.queryset.model
        probe = model(**{k: v for k, v in serializer.validated_data.items() if not isinstance(v, list)})
        try:
            probe.compute_derived_fields()
            key = probe.key
        except Exception:  # noqa: BLE001 - only for the message
            key = "?"
        return f"a {model._meta.verbose_name} with {model.lookup_field} '{key}' already exists"

    def destroy(self, request, *args, **kwargs):
        # Refusals (the record's rule: 403; records that use it: 409) are answered by records.api.errors.
        return ok(delete_record(self.get_object(), request.user, render=self.render))

