"""A few columns of a record, by its key, from Django's cache framework: for hot routes (``execute_policy``).

Every process that serves the same database must share the cache (``CACHES`` in ``portal/settings.py``: a file
cache in the state folder, or Redis when ``POLICYGRID_CACHE_URL`` names one), because an entry is invalidated by
whichever process writes the record, and must then be missed by every process.

How an entry stays correct without a lock: each record has a *stamp*, a random token under a key of its own,
replaced after every save and delete of the record (``forget_record``, connected to ``post_save`` and
``post_delete`` of every ``RecordModel`` by ``records.signals``: at once, and again after the commit). An
entry holds the stamp that was current *before* its values were read from the database, and is served only
while that stamp is still current. A write committed after a reader's query replaces the stamp after the
reader took it, so the reader's entry is never served; a write committed before the query is in the values.
Writers that bypass ``save()`` (``QuerySet.update``, ``bulk_create``, raw SQL) send no signal: they must call
``forget_record`` (or ``forget_key``) themselves, as they call ``records.search.reindex``; otherwise their
change is seen once the entry expires (``RECORD_CACHE_SECONDS``). A record's key never changes: its
lookup field is one of its identity fields, which neither the API nor the admin lets change.

Each process keeps a copy of the entries it used (``cached_value``), checked against the shared stamp on every
read: a hit costs one read of the shared cache, not two, and is exactly as fresh.

``cached_value`` is the same protocol for other values: ``accounts.authentication.RoleBackend`` keeps each
user's permissions under one stamp that every change of roles or memberships replaces.
"""
from __future__ import annotations

import hashlib
import pickle
import secrets
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.db import router, transaction

_MISSING = object()


def _cache():
    return caches[settings.RECORD_CACHE]


def _keys(model, key: str) -> tuple[str, str]:
    # Hashed: a record's key may hold characters and lengths memcached-style key checks warn about.
    digest = hashlib.sha256(str(key).encode()).hexdigest()[:40]
    base = f"record:{model._meta.label_lower}:{digest}"
    return f"{base}:stamp", f"{base}:entry"


def cached_record(model, key: str, fields: tuple[str, ...]):
    """The record of ``model`` whose ``lookup_field`` is ``key``, with only ``fields`` (attnames) loaded, or
    ``None``. Other fields are deferred: reading one queries the database, as with ``.only()``."""
    if "\x00" in str(key):
        return None  # no key holds NUL, and PostgreSQL refuses one in a parameter
    # Model.from_db takes the loaded values in the order of the model's concrete fields.
    fields = tuple(f.attname for f in model._meta.concrete_fields if f.attname in fields)
    stamp_key, entry_key = _keys(model, key)
    # Absent records are not cached (None): their creation needs no invalidation to be seen.
    values = cached_value(stamp_key, entry_key, fields, lambda: (
        model._default_manager.filter(**{model.lookup_field: key}).values_list(*fields).first()))
    if values is None:
        return None
    return model.from_db(router.db_for_read(model), fields, values)


def cached_value(stamp_key: str, entry_key: str, shape: Any, load: Callable[[], Any]) -> Any:
    """``load()``, from the cache while the stamp under ``stamp_key`` is the one its entry was filed under (the
    protocol above; ``restamp(stamp_key)`` invalidates). ``shape`` names what ``load`` returns (the fields): an
    entry of another shape, left by an earlier version of the code, is not served. ``None`` is not cached.

    The process also keeps its own copy of each entry it read or filed (pickled: every caller gets a fresh
    value, as from the shared cache), so that a hit reads one key of the shared cache, the stamp, not two. The
    copy is served under the same rule: its stamp is the current one, and the entry has not expired."""
    cache = _cache()
    copy = _copies.get(entry_key)
    if copy is not None:
        stamp = cache.get(stamp_key)
        entry = pickle.loads(copy)
        if _current(entry, stamp, shape):
            return entry[2]
        entry = cache.get(entry_key)
    else:
        found = cache.get_many([stamp_key, entry_key])
        stamp, entry = found.get(stamp_key), found.get(entry_key)
    if _current(entry, stamp, shape):
        _keep(entry_key, entry)
        return entry[2]
    if stamp is None:
        # Before the query: a writer's stamp set between our miss and our add either makes the add fail
        # (nothing is cached) or is overwritten by a stamp taken before the query (still correct).
        stamp = secrets.token_hex(12)
        if not cache.add(stamp_key, stamp, timeout=None):
            stamp = None
    value = load()
    if value is not None and stamp is not None:
        entry = (stamp, shape, value, time.time() + settings.RECORD_CACHE_SECONDS)
        cache.set(entry_key, entry, timeout=settings.RECORD_CACHE_SECONDS)
        _keep(entry_key, entry)
    return value


# This process's copies of entries: entry key -> pickled (stamp, shape, value, expires_at). Bounded: emptied
# when full (a copy is only a shortcut past one read of the shared cache).
_copies: dict[str, bytes] = {}
_MAX_COPIES = 2048


def _current(entry: Any, stamp: Any, shape: Any) -> bool:
    return (stamp is not None and isinstance(entry, tuple) and len(entry) == 4 and entry[0] == stamp
            and entry[1] == shape and entry[3] > time.time())


def _keep(entry_key: str, entry: tuple) -> None:
    if len(_copies) >= _MAX_COPIES:
        _copies.clear()
    _copies[entry_key] = pickle.dumps(entry, pickle.HIGHEST_PROTOCOL)


def forget_key(model, key: str, using: str | None = None) -> None:
    """Invalidate the cached entry of ``model``'s record ``key`` in every process."""
    restamp(_keys(model, key)[0], using or router.db_for_write(model))


def restamp(stamp_key: str, using: str | None = None) -> None:
    """Invalidate every entry filed under ``stamp_key``'s stamp, in every process: now, and after the commit."""
    _restamp(stamp_key)
    transaction.on_commit(partial(_restamp, stamp_key), using=using)


def _restamp(stamp_key: str) -> None:
    _cache().set(stamp_key, secrets.token_hex(12), timeout=None)


def forget_record(sender, instance, using=None, **kwargs) -> None:
    """``post_save``/``post_delete`` receiver: invalidate ``instance``'s entry (by its lookup value)."""
    key = getattr(instance, sender.lookup_field, _MISSING)
    if key is _MISSING or key is None:
        return
    forget_key(sender, key, using)
