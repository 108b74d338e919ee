"""Row lookups on the hot path, their SQL compiled once.

Django compiles a queryset to SQL each time it is evaluated. For a one-row lookup on a wide model that is
0.5–1 ms of CPU on this project's 2-core machines, twenty times the cost of running the SQL, and a request such
as ``POST /executor/<id>/execute_policy`` makes several of them. A ``PreparedLookup`` lets the ORM compile a
queryset of fixed shape once per database alias, then runs that SQL with new parameter values and builds
instances with ``Model.from_db`` and the compiler's converters, exactly as the queryset's iterator does.

Only plain single-model querysets qualify (no ``select_related``, annotations or ``values()``), filtered on
fields whose parameter is passed through unchanged (text and integer columns): ``_compile`` checks both.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, QuerySet

# Stand for the looked-up value while compiling, and are found again among the compiled parameters. The int
# fits every positive integer field (Django drops comparisons out of a field's range while compiling).
_PLACEHOLDERS: dict[type, Any] = {str: "\x00prepared-lookup-value\x00", int: 32_749}


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]
    slots: tuple[tuple[int, type], ...]  # which parameters are the looked-up value, and their adapted type
    model: type[Model]
    field_names: tuple[str, ...]  # attnames, in column order
    converters: tuple[tuple[int, tuple[Callable, ...], Any], ...]  # (column, converters, expression)


class PreparedLookup:
    """``build(value)`` is a queryset of one model filtered on ``value``; ``first(value)`` runs it for a row.

    ``value_type`` is the Python type of the values looked up (``str`` or ``int``).

    >>> by_uri = PreparedLookup(lambda uri: PolicyRule.objects.filter(policy_rule_uri=uri))
    >>> by_uri.first("ip_allowlist:1.0-beta")
    """

    def __init__(self, build: Callable[[Any], QuerySet], value_type: type = str):
        self._build = build
        self._placeholder = _PLACEHOLDERS[value_type]
        self._compiled: dict[str, _Compiled] = {}

    def first(self, value: Any, using: str = DEFAULT_DB_ALIAS) -> Model | None:
        if type(value) is not type(self._placeholder):
            raise TypeError(f"this lookup takes a {type(self._placeholder).__name__}, not {type(value).__name__}")
        compiled = self._compiled.get(using) or self._compile(using)
        params = list(compiled.params)
        for slot, adapted in compiled.slots:
            params[slot] = adapted(value)  # psycopg's Int2/Int4/Int8 wrappers on PostgreSQL; str, int elsewhere
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        if compiled.converters:
            row = list(row)
            for column, converters, expression in compiled.converters:
                for converter in converters:
                    row[column] = converter(row[column], expression, connection)
        return compiled.model.from_db(using, compiled.field_names, row)

    def _compile(self, using: str) -> _Compiled:
        placeholder = self._placeholder
        queryset = self._build(placeholder)[:1]
        query = queryset.query
        if query.select_related or query.annotations or query.values_select or queryset._prefetch_related_lookups:
            raise ValueError("a prepared lookup takes a plain queryset of one model")
        compiler = query.get_compiler(using)
        sql, params = compiler.as_sql()
        slots = tuple((i, type(param)) for i, param in enumerate(params)
                      if isinstance(param, type(placeholder)) and param == placeholder)
        if not slots:
            raise ValueError("the looked-up value does not reach the SQL unchanged: prepare a text or integer field")
        if compiler.klass_info is None or compiler.klass_info.get("related_klass_infos"):
            raise ValueError("a prepared lookup takes a plain queryset of one model")
        start, end = compiler.klass_info["select_fields"][0], compiler.klass_info["select_fields"][-1] + 1
        if start != 0 or end != compiler.col_count:
            raise ValueError("a prepared lookup selects the model's own columns only")
        columns = [expression for expression, _, _ in compiler.select[start:end]]
        converters = tuple(
            (column, tuple(found), expression)
            for column, (found, expression) in sorted(compiler.get_converters(columns).items())
        )
        compiled = _Compiled(
            sql=sql,
            params=tuple(params),
            slots=slots,
            model=queryset.model,
            field_names=tuple(expression.target.attname for expression in columns),
            converters=converters,
        )
        self._compiled[using] = compiled
        return compiled


class PreparedWrite:
    """An INSERT of one row, or an UPDATE of one row by primary key, of fixed columns: SQL built once.

    Values go through each field's ``get_db_prep_save`` (JSON, datetimes, …) as ``Model.save`` does; what is
    skipped is the save machinery around it (signals, ``pre_save``, model ``save()`` overrides), so use this
    only for a model that has none to run, such as the audit trail's rows.
    """

    def __init__(self, model: type[Model], field_names: tuple[str, ...], *, update: bool = False):
        self.model = model
        self.names = field_names  # field names or attnames (``actor_id``), as the values are keyed
        self.fields = tuple(model._meta.get_field(name) for name in field_names)
        self._pairs = tuple(zip(self.names, self.fields, strict=True))
        self.update = update
        self._sql: dict[str, str] = {}

    def run(self, values: dict[str, Any], pk: Any = None, using: str = DEFAULT_DB_ALIAS) -> Any:
        """Write the row; an INSERT returns the new primary key, an UPDATE the number of rows changed."""
        connection = connections[using]
        sql = self._sql.get(using) or self._build(using)
        params = [field.get_db_prep_save(values[name], connection) for name, field in self._pairs]
        with connection.cursor() as cursor:
            if self.update:
                cursor.execute(sql, [*params, self.model._meta.pk.get_db_prep_save(pk, connection)])
                return cursor.rowcount
            cursor.execute(sql, params)
            if connection.features.can_return_columns_from_insert:
                return cursor.fetchone()[0]
            return connection.ops.last_insert_id(cursor, self.model._meta.db_table, self.model._meta.pk.column)

    def _build(self, using: str) -> str:
        connection = connections[using]
        quote = connection.ops.quote_name
        meta = self.model._meta
        if self.update:
            assignments = ", ".join(f"{quote(field.column)} = %s" for field in self.fields)
            sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"
        else:
            columns = ", ".join(quote(field.column) for field in self.fields)
            placeholders = ", ".join(["%s"] * len(self.fields))
            sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})"
            if connection.features.can_return_columns_from_insert:
                sql += f" RETURNING {quote(meta.pk.column)}"
        self._sql[using] = sql
        return sql
