"""PostgreSQL statistics on the search index: a path determines its kinds, which the planner can't guess.

Without them the planner multiplies the selectivities of ``path = …`` and ``kind = …`` as if independent,
under-estimates a range on one path by two orders of magnitude, and sorts every match of a query instead
of walking the page's order (58 ms instead of 3 ms for a 50-record page over 100,000 policies).
"""
from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE STATISTICS IF NOT EXISTS records_search_path_kind (dependencies, mcv) "
            "ON content_type_id, path, kind FROM records_searchentry"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP STATISTICS IF EXISTS records_search_path_kind")


class Migration(migrations.Migration):
    dependencies = [("records", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
