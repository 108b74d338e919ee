"""The portal's one list page: a resource's records with the API list's filters and free-text search
(``records.api.filtersets``), sorting (``records.sorting``, as ``?sort=`` of ``/query``), pagination, and a
box taking a MongoDB-style filter document compiled by the API's own query compiler (``records.query``).

A resource's page is declarative: it names its model, columns and the actions it offers; a user without the
model's view permission gets 403, and an action is shown only to users whose role allows it.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.urls import reverse
from django.views.generic import TemplateView

from records.api.errors import ApiError
from records.api.filtersets import filterset_for
from records.budget import QueryTimeout, query_budget
from records.models import RecordModel
from records.query import QueryError, filter_by_document
from records.sorting import sort_order

PAGE_SIZES = (25, 50, 100)


def require_permission(user, permission: str) -> None:
    """403 unless the user's role grants ``permission`` (``app.codename``): the pages' one role check."""
    if not user.has_perm(permission):
        raise PermissionDenied(f"your roles do not allow this: it needs the permission '{permission}'")


def view_permission(model) -> str:
    return f"{model._meta.app_label}.view_{model._meta.model_name}"


@dataclass(frozen=True)
class Column:
    """A column: its title, the attribute it shows (dotted for a related object), how it is shown (``text``,
    ``link`` to the record's page, ``badge`` for a status, ``time``, ``mono``) and the field it sorts by."""

    title: str
    attr: str
    show: str = "text"
    sort: str | None = None

    def value(self, obj) -> Any:
        value = obj
        for part in self.attr.split("."):
            value = getattr(value, part, None)
            if value is None:
                return None
        return value() if callable(value) else value


@dataclass(frozen=True)
class Action:
    """A button above the list (``url_name`` reversed without arguments), shown with ``permission`` only."""

    label: str
    url_name: str
    permission: str
    primary: bool = True


@dataclass
class ListState:
    """What the request asked for, and what was wrong with it (shown beside the field)."""

    errors: dict[str, str] = field(default_factory=dict)
    sort: str = ""
    document: str = ""


class RecordListView(LoginRequiredMixin, TemplateView):
    template_name = "portal/resource_list.html"
    model: type = None
    columns: tuple[Column, ...] = ()
    title = ""
    intro = ""
    nav = ""
    empty_hint = ""
    actions: tuple[Action, ...] = ()
    # (label, url_name): pages related to the list (reversed without arguments), for whoever reads it.
    links: tuple[tuple[str, str], ...] = ()
    filter_fields: tuple[str, ...] = ()
    filterset_class = None
    related: tuple[str, ...] = ("created_by",)
    # Where a row links to: a function of the record (its detail page).
    detail_url: Callable[[Any], str] | None = None
    default_sort = ""
    noun = "record"
    testid = "record-list"
    # (field, values): while a row shown has one of these values, the page refreshes its rows every few seconds.
    live: tuple[str, frozenset] | None = None
    # Who may read the list when it is not the model's own view permission (what the API's list route needs).
    permission = ""

    def filterset(self):
        return self.filterset_class or filterset_for(self.model)

    def get_context_data(self, **kwargs):
        require_permission(self.request.user, self.permission or view_permission(self.model))
        params = self.request.GET
        state = ListState(sort=params.get("sort", ""), document=params.get("filter", ""))
        queryset = self.model.objects.select_related(*self.related) if self.related else self.model.objects.all()
        filterset = self.filterset()(params, queryset=queryset)
        if filterset.is_valid():
            queryset = filterset.qs
        else:
            state.errors.update({name: "; ".join(errs) for name, errs in filterset.errors.items()})
        queryset = self.apply_document(queryset, state)
        queryset = self.apply_sort(queryset, state).only(*self.shown_fields())
        page = self.page_of(queryset, state)
        return {
            **super().get_context_data(**kwargs),
            "view": self,
            "nav": self.nav,
            "filter_form": filterset.form,
            "filter_fields": self.filter_inputs(filterset.form),
            "query": params.get("q", ""),
            "state": state,
            "page": page,
            "rows": [self.row(obj) for obj in page.object_list] if page else [],
            "columns": [self.column_head(column, state) for column in self.columns],
            "actions": [action for action in self.actions if self.request.user.has_perm(action.permission)],
            "links": [(label, reverse(url_name)) for label, url_name in self.links],
            "page_sizes": PAGE_SIZES,
            "has_query_box": issubclass(self.model, RecordModel),
            "filtered": any(params.get(name) for name in params if name not in ("page", "page_size", "sort")),
            "keep": self.kept_params(),
            "live": bool(page and self.live and any(getattr(obj, self.live[0]) in self.live[1]
                                                     for obj in page.object_list)),
        }

    def shown_fields(self) -> set[str]:
        """The columns a row reads: records have wide JSON columns, and sorting whole rows to reach a page is
        what made a list of 10,000 policies slow."""
        concrete = {f.name for f in self.model._meta.concrete_fields}
        wanted = {self.model._meta.pk.name, getattr(self.model, "lookup_field", "pk"), *self.related}
        wanted |= {column.attr.split(".")[0] for column in self.columns}
        if self.live:
            wanted.add(self.live[0])
        return wanted & concrete

    def filter_inputs(self, form) -> list:
        """The declared filters' inputs; a choice's empty option reads "Any"."""
        for name in self.filter_fields:
            field = form.fields.get(name)
            if getattr(field, "empty_label", None) is not None:  # django-filter's choice fields
                field.empty_label = "Any"
                field.widget.choices = field.choices
        return [form[name] for name in self.filter_fields if name in form.fields]

    def apply_document(self, queryset, state: ListState):
        if not state.document.strip():
            return queryset
        try:
            document = json.loads(state.document)
        except ValueError as exc:
            state.errors["filter"] = f"not JSON: {exc}"
            return queryset.none()
        try:
            return filter_by_document(queryset, document)
        except QueryError as exc:
            state.errors["filter"] = f"invalid query at {exc.path}: {exc.reason}"
            return queryset.none()

    def apply_sort(self, queryset, state: ListState):
        if not issubclass(self.model, RecordModel):
            allowed = {c.sort for c in self.columns if c.sort}
            sort = state.sort or self.default_sort
            if sort.lstrip("-") in allowed:
                return queryset.order_by(sort, "-pk")
            return queryset
        try:
            return queryset.order_by(*sort_order(self.model, state.sort or self.default_sort or None))
        except ApiError as exc:
            state.errors["sort"] = str(exc.detail)
            state.sort = ""
            return queryset.order_by(*sort_order(self.model, None))

    def page_of(self, queryset, state: ListState):
        size = self.request.GET.get("page_size", "")
        size = int(size) if size.isdigit() and int(size) in PAGE_SIZES else PAGE_SIZES[0]
        paginator = Paginator(queryset, size)
        try:
            with query_budget(settings.QUERY_TIME_BUDGET, queryset.db):
                page = paginator.page(self.request.GET.get("page") or 1)
                page.object_list = list(page.object_list)
        except (EmptyPage, PageNotAnInteger):
            page = paginator.page(1)
            page.object_list = list(page.object_list)
        except QueryTimeout as exc:
            state.errors["filter"] = str(exc)
            return None
        return page

    def row(self, obj) -> dict:
        url = self.detail_url(obj) if self.detail_url else ""
        return {"url": url, "cells": [{"show": c.show, "value": c.value(obj)} for c in self.columns]}

    def column_head(self, column: Column, state: ListState) -> dict:
        if not column.sort:
            return {"title": column.title}
        current = state.sort or self.default_sort
        ascending = current == column.sort
        descending = current == f"-{column.sort}"
        following = f"-{column.sort}" if ascending else column.sort
        return {"title": column.title, "sort": following, "arrow": "▲" if ascending else "▼" if descending else ""}

    def kept_params(self) -> str:
        """The query string without ``page`` and ``sort``: the links that change one keep the others."""
        params = self.request.GET.copy()
        for name in ("page", "sort"):
            params.pop(name, None)
        return params.urlencode()


def detail(url_name: str, key_attr: str) -> Callable[[Any], str]:
    """``detail_url`` of a list: the page ``url_name`` of the record's ``key_attr``."""
    return lambda obj: reverse(url_name, args=[str(getattr(obj, key_attr))])
