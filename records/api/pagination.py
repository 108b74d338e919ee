"""Page-number pagination that answers in the envelope: {"success", "data", "pagination"}, and the streamed
envelope of an answer too long for one page."""
from itertools import islice

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response


class DeferredJoinPaginator(Paginator):
    """Deep pages by primary key first, then only the page's rows.

    ``OFFSET`` over full rows makes the database visit every skipped record; selecting the page's keys alone
    can be answered from an index (with the key included), and the wide rows are read for 50 records only.
    Shallow pages are read directly: with a filter, the keys-only query tempts PostgreSQL into hashing every
    match and sorting (``{"metadata.priority": {"$gte": 90}}``) where walking the ordering index and stopping
    after one page is far cheaper.
    """

    deferred_from_offset = 1000

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        queryset = self.object_list
        if not isinstance(queryset, QuerySet) or bottom < self.deferred_from_offset:
            return super().page(number)
        keys = list(queryset.values_list("pk", flat=True)[bottom : bottom + self.per_page])
        rows = {row.pk: row for row in queryset.filter(pk__in=keys)}
        return self._get_page([rows[key] for key in keys if key in rows], number, self)


class EnvelopePagination(PageNumberPagination):
    page_size_query_param = "page_size"
    # A view that knows a cheaper way to count its queryset than COUNT(*) over it sets this callable.
    count_hint = None

    def django_paginator_class(self, queryset, per_page):
        paginator = DeferredJoinPaginator(queryset, per_page)
        if self.count_hint is not None:
            paginator.count = self.count_hint()  # Paginator.count is a cached property: this is its value
        return paginator

    def page_requested(self, request) -> bool:
        return self.page_query_param in request.query_params or self.page_size_query_param in request.query_params

    @property
    def max_page_size(self):
        return settings.API_MAX_PAGE_SIZE

    def get_page_number(self, request, paginator):
        # DRF reads an empty or repeated ?page= as some page; say what is wrong instead.
        values = request.query_params.getlist(self.page_query_param)
        if values and (len(values) > 1 or not (values[0].isascii() and values[0].isdigit())):
            raise ValidationError({self.page_query_param: ["must be a positive integer, given once"]})
        return super().get_page_number(request, paginator)

    def get_page_size(self, request):
        # DRF falls back to the default size for a page_size it can't read; say so instead (a 400 naming it).
        values = request.query_params.getlist(self.page_size_query_param)
        raw = values[-1] if values else None
        if len(values) > 1 or raw is not None and not (raw.isascii() and raw.isdigit() and int(raw) > 0):
            raise ValidationError({self.page_size_query_param: [
                f"must be a positive integer (at most {self.max_page_size} are returned)"]})
        return super().get_page_size(request)

    def get_paginated_response(self, data):
        return Response(
            {
                "success": True,
                "data": data,
                "pagination": {
                    "count": self.page.paginator.count,
                    "next": self.get_next_link(),
                    "previous": self.get_previous_link(),
                },
            }
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["success", "data", "pagination"],
            "properties": {
                "success": {"type": "boolean", "example": True},
                "data": schema,
                "pagination": {
                    "type": "object",
                    "properties": {
                        "count": {"type": "integer"},
                        # OpenAPI 3.1 (SPECTACULAR_SETTINGS): null is a type, "nullable" means nothing.
                        "next": {"type": ["string", "null"], "format": "uri"},
                        "previous": {"type": ["string", "null"], "format": "uri"},
                    },
                },
            },
        }


def stream_envelope(queryset, serialize, extra: dict, batch: int) -> StreamingHttpResponse:
    """``{"success": true, "data": [...], **extra}`` written ``batch`` records at a time, as DRF renders them."""
    renderer = JSONRenderer()

    def chunks():
        yield b'{"success":true,"data":['
        rows, separator = queryset.iterator(chunk_size=batch), b""
        while page := list(islice(rows, batch)):
            yield separator + renderer.render(serialize(page))[1:-1]
            separator = b","
        yield b"]," + renderer.render(extra)[1:]

    return StreamingHttpResponse(chunks(), content_type="application/json")
