"""A covering index for listing policies in their default order (name, version, release_tag) by key.

PostgreSQL only (INCLUDE is not SQLite syntax): it lets the paginator select a deep page's keys with an
index-only scan instead of visiting every skipped row.
"""
from django.db import migrations

INDEX = "policies_policyrule_list_order"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS {INDEX} ON policies_policyrule (name, version, release_tag) INCLUDE (id)'
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("policies", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
