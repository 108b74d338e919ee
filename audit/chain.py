"""The audit chain's head and the writes that move it, for ``audit.services.write_audit`` (the one writer).

Appending an entry locks the head row, inserts the entry and moves the head, inside one transaction; every
audited execution waits for that lock, so these are three short statements built once per database, and on
SQLite appenders take turns on locks that hand over at once.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import threading

from django.db import IntegrityError, connections, router, transaction

from audit.models import AuditChainHead, AuditEntry

ENTRY_COLUMNS = ("seq", "timestamp", "actor_id", "actor_username", "action", "target_type", "target_key",
                  "request_id", "data", "prev_hash", "entry_hash")


# The chain's writes are the hot part of every audited execution, made while appenders wait for the head's
# lock: three short statements, built once per database from the models' own tables, columns and field
# conversions (``Field.get_db_prep_save``) rather than compiled by the ORM for each entry.
@functools.cache
def _statements(vendor: str, quote_name, lock: bool, returning: bool) -> tuple[str, str, str]:
    head, entries = AuditChainHead._meta, AuditEntry._meta
    seq, hash_, table = (quote_name(head.get_field("last_seq").column), quote_name(head.get_field("last_hash").column),
                         quote_name(head.db_table))
    where = f"WHERE {quote_name(head.pk.column)} = 1"
    columns = ", ".join(quote_name(entries.get_field(name).column) for name in ENTRY_COLUMNS)
    select = f"SELECT {seq}, {hash_} FROM {table} {where}" + (" FOR UPDATE" if lock else "")
    insert = (f"INSERT INTO {quote_name(entries.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(ENTRY_COLUMNS))})"
              + (f" RETURNING {quote_name(entries.pk.column)}" if returning else ""))
    update = f"UPDATE {table} SET {seq} = %s, {hash_} = %s {where}"
    return select, insert, update


def _sql(using: str) -> tuple[str, str, str]:
    connection = connections[using]
    return _statements(connection.vendor, connection.ops.quote_name, connection.features.has_select_for_update,
                       connection.features.can_return_columns_from_insert)


def append(entry: AuditEntry, using: str) -> None:
    """Insert ``entry`` and move the head to it (inside the caller's transaction, the head locked)."""
    connection = connections[using]
    _, insert, update = _sql(using)
    fields = [AuditEntry._meta.get_field(name) for name in ENTRY_COLUMNS]
    params = [field.get_db_prep_save(getattr(entry, field.attname), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(insert, params)
        entry.pk = cursor.fetchone()[0] if connection.features.can_return_columns_from_insert else cursor.lastrowid
        cursor.execute(update, [entry.seq, entry.entry_hash])
    entry._state.adding, entry._state.db = False, using


# SQLite lets one writer in at a time; the others wait in its busy handler, which polls with sleeps of up to
# 100 ms, so that under concurrent appends the lock often lies free while every waiter sleeps. Appenders
# therefore take turns on locks that hand over at once: the threads of a process on a thread lock, the
# processes sharing the database file on an advisory file lock beside it (fcntl.flock; the kernel wakes the
# next waiter). Not inside a caller's transaction: on SQLite that one may already hold the database's write
# lock, and waiting for a writer that waits for it would stall both.
_sqlite_appenders = threading.Lock()
_lock_files: dict[tuple[int, str], int] = {}


@contextlib.contextmanager
def _sqlite_turn(database: str):
    with _sqlite_appenders:
        key = (os.getpid(), database)  # a child process opens its own: flock belongs to the open file
        fd = _lock_files.get(key)
        if fd is None:
            fd = _lock_files[key] = os.open(f"{database}.audit-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


def writers_turn():
    connection = connections[router.db_for_write(AuditEntry)]
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        return contextlib.nullcontext()
    database = str(connection.settings_dict["NAME"])
    if connection.is_in_memory_db() or not os.path.isabs(database):
        return _sqlite_appenders  # one process's own database: its threads are all the writers
    return _sqlite_turn(database)


def locked_head(using: str) -> tuple[int, str]:
    """``(last_seq, last_hash)`` of the chain, its head row locked until the caller's transaction ends."""
    select = _sql(using)[0]
    with connections[using].cursor() as cursor:
        cursor.execute(select)
        row = cursor.fetchone()
    if row is not None:
        return row[0], row[1]
    # A fresh or flushed database: start the head from whatever chain exists (normally none).
    last = AuditEntry.objects.using(using).order_by("-seq").values("seq", "entry_hash").first()
    try:
        with transaction.atomic(using=using):
            AuditChainHead.objects.using(using).create(
                pk=1,
                last_seq=last["seq"] if last else 0,
                last_hash=last["entry_hash"] if last else "",
            )
    except IntegrityError:
        pass  # another writer created it first
    with connections[using].cursor() as cursor:
        cursor.execute(select)
        row = cursor.fetchone()
    return row[0], row[1]
