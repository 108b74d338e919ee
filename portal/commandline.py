"""manage.py's entry point: refuses, in one line, a command aimed at a database that ./run.sh never made.

Without it, ``manage.py create_api_token`` run without the ``POLICYGRID_STATE_DIR`` that ``./run.sh`` was given
made an empty SQLite file (and an empty ``./state``) and died with a 55-line ``no such table`` traceback.
"""
import sys
from pathlib import Path

# Commands that make the database (its SQLite file's folder is made for them), or never touch it.
MAKES_DATABASE = frozenset({"migrate", "run_embedded"})
NEEDS_NO_DATABASE = MAKES_DATABASE | {
    "makemigrations", "check", "collectstatic", "findstatic", "diffsettings", "help", "version", "startapp",
    "sqlmigrate", "showmigrations", "test",
}


def database_problem(command: str) -> str | None:
    """Why ``command`` can't run against the configured database, in one line; None when it can."""
    from django.conf import settings
    from django.db import DatabaseError, connection

    if command in NEEDS_NO_DATABASE or command.startswith("-"):
        return None
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3") and not Path(database["NAME"]).exists():
        return f"no PolicyGrid database at {database['NAME']}"
    try:
        tables = connection.introspection.table_names()
    except DatabaseError as exc:
        return f"cannot open the database: {str(exc).splitlines()[0]}"
    if "auth_user" not in tables:
        return f"the database at {database['NAME']} has no PolicyGrid tables"
    return None


def main(argv: list[str]) -> int:
    import django
    from django.conf import settings
    from django.core.management import execute_from_command_line

    django.setup()
    database = settings.DATABASES["default"]
    if len(argv) > 1 and argv[1] in MAKES_DATABASE and database["ENGINE"].endswith("sqlite3"):
        Path(database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    problem = database_problem(argv[1]) if len(argv) > 1 else None
    if problem:
        sys.stderr.write(
            f"error: {problem}. Run the command with the POLICYGRID_STATE_DIR (or DATABASE_URL) that ./run.sh was "
            f"started with (state folder here: {settings.STATE_DIR}), or start ./run.sh first.\n")
        return 2
    execute_from_command_line(argv)
    return 0
