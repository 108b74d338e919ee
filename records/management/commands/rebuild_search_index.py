"""``manage.py rebuild_search_index [app_label.Model …]``: rebuilds the query language's search index."""
from django.apps import apps
from django.core.management.base import BaseCommand, CommandError

from records.search import reindex, searchable_models


class Command(BaseCommand):
    help = ("Rebuild the search index of the query language (docs/api.md §2) for the given record models, or all. "
            "Needed after writing records without save() (bulk_create, QuerySet.update, raw SQL).")

    def add_arguments(self, parser):
        parser.add_argument("models", nargs="*", metavar="app_label.Model")

    def handle(self, *args, **options):
        labels = options["models"]
        models = searchable_models()
        if labels:
            try:
                chosen = [apps.get_model(label) for label in labels]
            except (LookupError, ValueError) as exc:
                raise CommandError(str(exc)) from None
            unsearchable = [m._meta.label for m in chosen if m not in models]
            if unsearchable:
                raise CommandError(f"not a searchable record model: {', '.join(unsearchable)}")
            models = chosen
        for model in models:
            rows = reindex(model)
            count = model._default_manager.count()
            self.stdout.write(f"{model._meta.label}: {count} records, {rows} index rows")
