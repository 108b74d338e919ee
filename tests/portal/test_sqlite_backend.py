"""portal.sqlite: write transactions on a database file queue on a file lock, released on every way out."""
import threading
import time

import pytest
from django.db.utils import ConnectionHandler


@pytest.fixture(autouse=True)
def _own_databases(django_db_blocker):
    """These tests open their own database files, outside the test database pytest-django guards."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def handler(tmp_path):
    handler = ConnectionHandler({"default": {
        "ENGINE": "portal.sqlite", "NAME": str(tmp_path / "db.sqlite3"),
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20,
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
    }})
    with handler["default"].cursor() as cursor:
        cursor.execute("CREATE TABLE t (n INTEGER)")
    yield handler
    handler.close_all()


def in_thread(handler, body):
    """Run ``body(connection)`` on a thread of its own (its own connection); return the thread and its errors."""
    errors = []

    def run():
        connection = handler["default"]
        connection.ensure_connection()
        try:
            body(connection)
        except Exception as exc:  # reported to the test
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_a_second_writer_waits_for_the_first_to_commit(handler):
    # What transaction.atomic() does on SQLite: BEGIN under autocommit, then commit.
    first_in, release_first, second_in = threading.Event(), threading.Event(), threading.Event()
    order = []

    def first(connection):
        connection._start_transaction_under_autocommit()
        first_in.set()
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO t VALUES (1)")
        release_first.wait(5)
        order.append("first commits")
        connection.commit()

    def second(connection):
        connection._start_transaction_under_autocommit()
        second_in.set()
        order.append("second writes")
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO t VALUES (2)")
        connection.commit()

    t1, e1 = in_thread(handler, first)
    assert first_in.wait(5)
    t2, e2 = in_thread(handler, second)
    assert not second_in.wait(0.5), "the second writer got in while the first held the lock"
    release_first.set()
    t1.join(5)
    t2.join(5)
    assert not e1 and not e2, (e1, e2)
    assert order == ["first commits", "second writes"]
    with handler["default"].cursor() as cursor:
        cursor.execute("SELECT n FROM t ORDER BY n")
        assert cursor.fetchall() == [(1,), (2,)]


def test_a_waiting_writer_gets_in_as_soon_as_the_first_commits(handler):
    """SQLite's own busy handler would sleep up to 100 ms between retries; the file lock wakes the waiter."""
    delays = []
    for _ in range(3):
        holding, entered = threading.Event(), threading.Event()
        committed_at = []

        def first(connection, holding=holding, committed_at=committed_at):
            connection._start_transaction_under_autocommit()
            holding.set()
            time.sleep(0.4)  # long enough for SQLite's busy handler to reach its 50–100 ms sleeps
            connection.commit()
            committed_at.append(time.monotonic())

        def second(connection, entered=entered):
            connection._start_transaction_under_autocommit()
            entered.set()
            connection.commit()

        t1, e1 = in_thread(handler, first)
        holding.wait(5)
        t2, e2 = in_thread(handler, second)
        assert entered.wait(5) and not e1 and not e2
        entered_at = time.monotonic()
        t1.join(5)
        t2.join(5)
        delays.append(entered_at - committed_at[0])
    assert min(delays) < 0.02, f"the waiting writer got in {min(delays) * 1000:.0f} ms after the commit"


def test_the_lock_is_released_on_commit_rollback_and_close(handler):
    connection = handler["default"]
    connection.ensure_connection()
    lock_fd = connection._lock_fd
    assert lock_fd is not None
    connection._start_transaction_under_autocommit()
    assert connection._lock_held
    connection.commit()
    assert not connection._lock_held

    connection._start_transaction_under_autocommit()
    connection.rollback()
    assert not connection._lock_held

    connection._start_transaction_under_autocommit()
    connection.close()
    assert not connection._lock_held and connection._lock_fd is None

    # Another connection can take the lock at once: nothing was left held.
    other = ConnectionHandler({"default": dict(handler.settings["default"])})["default"]
    other.ensure_connection()
    started = time.monotonic()
    other._start_transaction_under_autocommit()
    assert time.monotonic() - started < 1
    other.rollback()
    other.close()


def test_in_memory_databases_take_no_lock():
    memory = ConnectionHandler({"default": {"ENGINE": "portal.sqlite", "NAME": ":memory:"}})["default"]
    memory.ensure_connection()
    assert memory._lock_fd is None
    memory.close()
