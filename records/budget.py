"""The time budget of a query (docs/api.md §2): past it, the database stops and the client gets a 504.

A hostile filter (a slow regex on PostgreSQL, a scan of a large table) must not hold a web worker until the
server kills it. Inside ``query_budget(seconds)``:

* no statement starts once the budget is spent (a ``connection.execute_wrapper``);
* on SQLite, a progress handler interrupts the running statement at the deadline (sqlite3's
  ``set_progress_handler``, called every ``PROGRESS_STEPS`` virtual-machine steps);
* on PostgreSQL, ``SET LOCAL statement_timeout`` in a transaction of its own cancels a statement that runs
  past the budget.

Either way the block raises ``QueryTimeout``, which the API answers as 504 with ``error_type: timeout``.
"""
import time
from contextlib import contextmanager

from django.db import DatabaseError, connections, transaction

PROGRESS_STEPS = 1000


class QueryTimeout(Exception):
    """The query ran past its time budget."""

    def __init__(self, seconds: float):
        super().__init__(f"the query ran past its time budget of {seconds:g} s: narrow the filter, or page "
                         "with limit and skip")
        self.seconds = seconds


@contextmanager
def query_budget(seconds: float, using: str = "default"):
    connection = connections[using]
    deadline = time.monotonic() + seconds

    def spent() -> bool:
        return time.monotonic() >= deadline

    def refuse_when_spent(execute, sql, params, many, context):
        if spent():
            raise QueryTimeout(seconds)
        return execute(sql, params, many, context)

    # The wrapper is innermost: the savepoint rollback that ends a timed-out block must still run.
    try:
        if connection.vendor == "postgresql":
            with transaction.atomic(using=using):
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL statement_timeout = %s", [max(1, int(seconds * 1000))])
                with connection.execute_wrapper(refuse_when_spent):
                    yield
        elif connection.vendor == "sqlite":
            connection.ensure_connection()
            raw = connection.connection
            raw.set_progress_handler(lambda: int(spent()), PROGRESS_STEPS)
            try:
                with connection.execute_wrapper(refuse_when_spent):
                    yield
            finally:
                raw.set_progress_handler(None, PROGRESS_STEPS)
        else:
            with connection.execute_wrapper(refuse_when_spent):
                yield
    except DatabaseError:
        # SQLite: "interrupted"; PostgreSQL: "canceling statement due to statement timeout". Any database
        # error once the budget is spent is the budget's doing.
        if spent():
            raise QueryTimeout(seconds) from None
        raise
