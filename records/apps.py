"""App config of the record framework: the base every registry uses, and the query language's search index."""
from django.apps import AppConfig


class RecordsConfig(AppConfig):
    name = "records"
    verbose_name = "Records and search"

    def ready(self):
        from records import regexp, signals  # noqa: F401  (RE2 as SQLite's REGEXP; the search-index maintenance)
        from records.api import schema  # noqa: F401  (registers the token scheme with drf-spectacular)
