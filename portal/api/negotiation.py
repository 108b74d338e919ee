"""Content negotiation that answers the common case without parsing: one renderer, and a client that takes it.

DRF's ``DefaultContentNegotiation`` parses the Accept header into media types and matches them against each
renderer on every request, 3–4 % of the CPU of a warm ``execute_policy`` call. The API renders JSON only: a
request that sends no Accept header, ``*/*`` or ``application/json`` gets it at once; anything else (a browser's
list, ``text/html`` alone, a format suffix) goes through DRF's negotiation, which answers 406 where it would.
"""
from rest_framework.negotiation import DefaultContentNegotiation

# Accept headers DRF would answer with the JSON renderer, compared to the letter (tests/portal/test_platform.py
# holds the shortcut to DRF's choice for these and others).
_TAKES_JSON = frozenset({"*/*", "application/json", "application/json, */*"})


class JsonFirstNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        if (len(renderers) == 1 and format_suffix is None and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
                and request.META.get("HTTP_ACCEPT", "*/*") in _TAKES_JSON):
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)
