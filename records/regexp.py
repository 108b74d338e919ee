"""RE2 as SQLite's REGEXP function: ``$regex`` runs in linear time on SQLite (docs/api.md §2).

Django's SQLite backend registers a REGEXP function that runs Python's backtracking ``re``: ``(a+)+$``
against a 40-character value held a web worker for 30 s. On every new SQLite connection (the
``connection_created`` signal) the function is registered again, with RE2 (``google-re2``), whose matching
time is linear in the value's length. The query compiler (``records.query``) only emits patterns RE2 takes,
and checks them with ``compile_pattern`` first, so a pattern the engine can't take is a 400, not an error
raised inside SQLite. PostgreSQL's ARE engine is bounded by the query's time budget instead
(``records.budget``).
"""
import functools

import re2
from django.db.backends.signals import connection_created

# RE2 refuses programs above max_mem (e.g. {255}{255} repetitions): a 400 at compile time, not a slow match.
MAX_MEMORY = 8 << 20


class PatternError(ValueError):
    """RE2 can't take the pattern; the message is RE2's reason."""


def options():
    opts = re2.Options()
    opts.log_errors = False  # a refused pattern is an answer to the client, not a line on stderr
    opts.max_mem = MAX_MEMORY
    return opts


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str):
    """The compiled RE2 program of ``pattern``; raises PatternError naming RE2's reason."""
    if any("\ud800" <= c <= "\udfff" for c in pattern):
        raise PatternError("the pattern holds a lone surrogate, which is not a character")
    try:
        return re2.compile(pattern, options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else str(exc)
        raise PatternError(reason.decode() if isinstance(reason, bytes) else str(reason)) from None


def regexp(pattern, value) -> bool | None:
    """SQLite's ``value REGEXP pattern``: NULL if either is NULL, as Django's own function answers."""
    if pattern is None or value is None:
        return None
    value = value if isinstance(value, str) else str(value)
    try:
        return compile_pattern(pattern).search(value) is not None
    except UnicodeEncodeError:
        # A lone surrogate can't be UTF-8 for RE2. The API refuses such text (records.api.parsers), so only a row
        # written some other way holds one: it is matched with the surrogate escaped, rather than failing the query.
        return compile_pattern(pattern).search(value.encode("utf-8", "backslashreplace").decode()) is not None


def use_re2_for_regexp(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function("REGEXP", 2, regexp, deterministic=True)


connection_created.connect(use_re2_for_regexp, dispatch_uid="records-re2-regexp")
