"""The MongoDB-style query language of docs/api.md §2, compiled into one Django ORM query run by the database.

Design. ``JSONField`` lookups can't give MongoDB's semantics on both backends (SQLite has no
``contains``, no jsonpath; neither backend traverses arrays of objects the way ``{"items.b": 1}`` must), so
a filter compiles against the search index ``portal.SearchEntry`` (built by ``records.search``): every value
a path can reach in a record is a row keyed by (content type, path, kind, value). A condition on a path is
then ``EXISTS (SELECT 1 FROM entries WHERE object_id = record.id AND path = … AND kind = … AND num >= …)``,
which both backends run as an index lookup (or a semi-join of an index range scan), and the whole filter
stays a lazy queryset: ordering, counting and slicing remain SQL.

* MongoDB's rule "an array matches if the array or one of its elements matches" is the ``is_element`` rows;
  "operators on one path are independent" is one ``EXISTS`` per operator; ``$elemMatch`` is one
  ``EXISTS`` over element rows with the inner conditions correlated to that element (``node`` ranges).
* Comparisons only within a type bracket: rows carry their JSON ``kind``; a bool is not a number; strings
  compare by code point (``COLLATE "C"`` on PostgreSQL), so ``"10.0" < "9.0"``.
* ``{"x": null}`` matches null or a missing value: "missing" is an object on the way that lacks the key
  (an anti-join within that object's node range). ``$ne``, ``$nin``, ``$not``, ``$nor`` are negations.
* Top-level string, number and boolean columns (and the creator's username) compile to their own column
  (``release_tag`` equality uses its btree index): their values compare exactly as the document's do.
  A value of another bracket (a number against a string column) matches nothing.
* Regular expressions are parsed here into a subset both engines agree on (SQLite runs RE2 through
  ``records.regexp``, PostgreSQL its ARE engine) and re-emitted for each: ``\\d \\w \\s \\b`` are ASCII, as in
  MongoDB's PCRE; ``.``, ``^`` and ``$`` are rewritten so that newlines behave as in PCRE on both;
  what needs a backtracking engine (backreferences, lookahead and lookbehind, possessive quantifiers) and
  ``\\Z`` and scoped flags are refused with a QueryError, so matching is linear in the value's length
  (docs/api.md §2); PostgreSQL's engine is further bounded by the query's time budget (``records.budget``).

Limits: the filter is at most ``QUERY_MAX_DEPTH`` containers deep (the filter object itself is level 1,
every nested object or array one more) and has at most ``QUERY_MAX_NODES`` values (objects, arrays and
scalars, the filter included). The oracle of the tests is ``mongomock``; where it departs from MongoDB the
tests say so.
"""
import operator
import re

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connections
from django.db.models import Exists, F, OuterRef, Q, TextField, Value
from django.db.models.functions import Coalesce, Collate
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
    Regex,
)

from records.documents import BOOL, INDEXED, NUMBER, STRING, USER
from records.models import KEY_LENGTH, PATH_LENGTH, SearchEntry, ValueKind
from records.regexp import PatternError, compile_pattern
from records.search import (
    MAX_POSITIONS,
    digest,
    field_specs,
    is_position,
    to_number,
)

ROOT = "<root>"
LOGICAL = ("$and", "$or", "$nor")
COMPARISONS = {
    "$gt": (GreaterThan, operator.gt, "gt"),
    "$gte": (GreaterThanOrEqual, operator.ge, "gte"),
    "$lt": (LessThan, operator.lt, "lt"),
    "$lte": (LessThanOrEqual, operator.le, "lte"),
}
VALUE_OPERATORS = frozenset(
    ["$eq", "$ne", "$in", "$nin", "$exists", "$regex", "$options", "$all", "$size", "$elemMatch", "$not",
     *COMPARISONS]
)
CODE_OPERATORS = ("$where", "$expr", "$function", "$accumulator")


class QueryError(ValueError):
    """A filter document the query language refuses. ``path`` names the offending part, ``reason`` why."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"invalid query at {path}: {reason}")
        self.path = path
        self.reason = reason


def filter_by_document(queryset, document, *, max_depth: int | None = None, max_nodes: int | None = None):
    """``queryset`` filtered by the MongoDB-style filter ``document`` (still lazy). Raises QueryError."""
    return filter_and_count(queryset, document, max_depth=max_depth, max_nodes=max_nodes)[0]


def filter_and_count(queryset, document, *, max_depth: int | None = None, max_nodes: int | None = None):
    """``(filtered queryset, count)``: ``count()`` is the number of records it holds, by the cheapest query.

    When the whole document is one condition on one indexed path of the record (``{"metadata.priority":
    {"$gte": 90}}``) and ``queryset`` has no filter of its own, the matching records are the distinct
    ``object_id``s of the search-index rows that satisfy it: counted from the index alone, without visiting
    each record (bench/bench_api.py measures the difference). The index mirrors
    the table (rows are written and deleted with their record; ``rebuild_search_index`` after raw SQL writes).
    """
    check_limits(
        document,
        settings.QUERY_MAX_DEPTH if max_depth is None else max_depth,
        settings.QUERY_MAX_NODES if max_nodes is None else max_nodes,
    )
    compiler = Compiler(queryset.model, connections[queryset.db].vendor)
    condition = compiler.document(document, RecordScope(compiler.content_type_id), "")
    if condition is True:
        return queryset, queryset.count
    if condition is False:
        return queryset.none(), lambda: 0
    filtered = queryset.filter(condition)
    index_rows = compiler.index_rows_of(condition)
    if index_rows is not None and not queryset.query.where:
        return filtered, index_rows.using(queryset.db).values("object_id").distinct().count
    return filtered, filtered.count


def check_limits(document, max_depth: int, max_nodes: int) -> None:
    if not isinstance(document, dict):
        raise QueryError(ROOT, f"the filter must be a JSON object, not {json_type(document)}")
    count = 0

    def walk(value, depth: int, path: str) -> None:
        nonlocal count
        count += 1
        if count > max_nodes:
            raise QueryError(ROOT, f"the query has more than {max_nodes} values (the limit)")
        if isinstance(value, (dict, list)):
            if depth > max_depth:
                raise QueryError(path or ROOT, f"the query is nested deeper than {max_depth} levels (the limit)")
            for key, child in value.items() if isinstance(value, dict) else enumerate(value):
                walk(child, depth + 1, join(path, str(key)))

    walk(document, 1, "")


def join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part


def json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def kind_of(value) -> int:
    if value is None:
        return ValueKind.NULL
    if isinstance(value, bool):
        return ValueKind.BOOL
    if isinstance(value, (int, float)):
        return ValueKind.NUMBER
    if isinstance(value, str):
        return ValueKind.STRING
    if isinstance(value, list):
        return ValueKind.ARRAY
    return ValueKind.OBJECT


# --- a tiny boolean algebra over Q, with the constants folded away ----------------------------------------

def conj(parts):
    out = []
    for part in parts:
        if part is False:
            return False
        if part is not True:
            out.append(part)
    if not out:
        return True
    result = out[0]
    for part in out[1:]:
        result = result & part
    return result


def disj(parts):
    out = []
    for part in parts:
        if part is True:
            return True
        if part is not False:
            out.append(part)
    if not out:
        return False
    result = out[0]
    for part in out[1:]:
        result = result | part
    return result


def neg(part):
    return (not part) if isinstance(part, bool) else ~part


def any_row(queryset, condition=True):
    if condition is False:
        return False
    if condition is not True:
        queryset = queryset.filter(condition)
    return Q(Exists(queryset))


# --- where the values of a path are -------------------------------------------------------------------

class RecordScope:
    """Paths from the record itself; rows are correlated to the outer record by ``pk``."""

    def __init__(self, content_type_id: int):
        self.content_type_id = content_type_id

    def rows(self, spelling: str):
        return SearchEntry.objects.filter(content_type_id=self.content_type_id, object_id=OuterRef("pk"),
                                          path=spelling)

    def spelling(self, path: str) -> str:
        return path

    def values(self, spelling):
        return self.rows(spelling)

    def candidates(self, spelling):
        return self.rows(spelling).filter(is_element=False)

    def elements(self, spelling, err):
        return self.rows(spelling).filter(is_element=True)

    def missing(self, spelling: str):
        """The path resolves to a missing value: an object on the way (the field's value, an element…) lacks
        the next key. An intermediate scalar or an empty array gives no value at all, as in mongomock."""
        parts = spelling.split(".")
        return disj(self._lacks(".".join(parts[:i]), parts[i]) for i in range(1, len(parts)))

    def _lacks(self, prefix: str, key: str):
        holders = self.rows(prefix).filter(kind=ValueKind.OBJECT)
        if is_position(key):
            holders = holders.filter(is_element=False)  # in an array, a number is a position, not a key
        return any_row(holders, ~Q(Exists(subtree_rows(self.content_type_id, f"{prefix}.{key}"))))


class ElementScope(RecordScope):
    """Paths inside one object element of an array (document-form ``$elemMatch``); the outer row is it."""

    def __init__(self, content_type_id: int, prefix: str):
        super().__init__(content_type_id)
        self.prefix = prefix

    def rows(self, spelling: str):
        return subtree_rows(self.content_type_id, spelling)

    def spelling(self, path: str) -> str:
        return f"{self.prefix}.{path}"

    def missing(self, spelling: str):
        parts = spelling[len(self.prefix) + 1:].split(".")
        first = ~Q(Exists(self.rows(f"{self.prefix}.{parts[0]}")))
        rest = (self._lacks(".".join([self.prefix, *parts[:i]]), parts[i]) for i in range(1, len(parts)))
        return disj([first, *rest])


def subtree_rows(content_type_id: int, spelling: str):
    """Rows at ``spelling`` inside the value of the outer row (its node range)."""
    return SearchEntry.objects.filter(
        content_type_id=content_type_id, object_id=OuterRef("object_id"), path=spelling,
        node__gt=OuterRef("node"), node__lte=OuterRef("subtree_end"),
    )


class ValueScope:
    """The element itself (operator-form ``$elemMatch``): the outer row is the element; when it is an array,
    its own elements count as its values too."""

    def __init__(self, content_type_id: int):
        self.content_type_id = content_type_id

    def _rows(self):
        return SearchEntry.objects.filter(content_type_id=self.content_type_id, object_id=OuterRef("object_id"))

    def values(self, spelling):
        return self._rows().filter(Q(node=OuterRef("node")) | Q(parent=OuterRef("node"), is_element=True))

    def candidates(self, spelling):
        return self._rows().filter(node=OuterRef("node"))

    def elements(self, spelling, err):
        raise QueryError(err, "$elemMatch on the elements of an array of arrays is not supported")

    def missing(self, spelling):
        return False


# --- targets: what an operator applies to --------------------------------------------------------------

class IndexTarget:
    """A path answered by the search index."""

    def __init__(self, compiler: "Compiler", scope, spelling: str | None):
        self.compiler = compiler
        self.scope = scope
        self.spelling = spelling

    def _values(self, condition):
        compiled = any_row(self.scope.values(self.spelling), condition)
        if type(self.scope) is RecordScope and isinstance(compiled, Q) and condition is not False:
            rows = SearchEntry.objects.filter(content_type_id=self.scope.content_type_id, path=self.spelling)
            self.compiler.note_record_condition(compiled, rows if condition is True else rows.filter(condition))
        return compiled

    @staticmethod
    def _equal(value):
        kind = kind_of(value)
        if kind in (ValueKind.NUMBER, ValueKind.BOOL):
            return Q(kind=kind, num=to_number(value))
        if kind == ValueKind.STRING:
            tail = Q(text__isnull=True) if len(value) <= KEY_LENGTH else Q(text=value)
            return Q(kind=kind, key=value[:KEY_LENGTH]) & tail
        return Q(kind=kind, key=digest(value))

    def eq(self, value):
        if value is None:
            return disj([self._values(Q(kind=ValueKind.NULL)), self.scope.missing(self.spelling)])
        return self._values(self._equal(value))

    def in_(self, values):
        present = disj([self._equal(v) for v in values if v is not None])
        return disj([self._values(present) if present is not False else False,
                     self.eq(None) if None in values else False])

    def compare(self, op: str, value):
        lookup, _, name = COMPARISONS[op]
        if value is None:
            return self.eq(None) if op in ("$gte", "$lte") else False
        kind = kind_of(value)
        if kind in (ValueKind.NUMBER, ValueKind.BOOL):
            return self._values(Q(kind=kind, **{f"num__{name}": to_number(value)}))
        # The key column holds a prefix of each string: a bound on it (non-strict, as prefixes may tie)
        # lets the index narrow the rows; the full comparison decides.
        bound = "gte" if name.startswith("g") else "lte"
        return self._values(
            Q(kind=kind, **{f"key__{bound}": value[:KEY_LENGTH]}) & Q(lookup(full_text(), Value(value)))
        )

    def regex(self, pattern: str):
        return self._values(Q(kind=ValueKind.STRING) & Q(Regex(full_text(), Value(pattern))))

    def exists(self):
        return any_row(self.scope.candidates(self.spelling))

    def size(self, size: int):
        return any_row(self.scope.candidates(self.spelling), Q(kind=ValueKind.ARRAY, num=size))

    def elem_match(self, query: dict, err: str):
        elements = self.scope.elements(self.spelling, err)
        if is_value_form(query, err):
            inner = self.compiler.operators(IndexTarget(self.compiler, ValueScope(self.compiler.content_type_id),
                                                        None), query, err)
            return any_row(elements, inner)
        scope = ElementScope(self.compiler.content_type_id, self.spelling)
        inner = self.compiler.document(query, scope, err)
        return any_row(elements.filter(kind=ValueKind.OBJECT), inner)


def full_text():
    return Coalesce(F("text"), F("key"), output_field=TextField())


class ColumnTarget:
    """A top-level string, number or boolean column (or the creator's username)."""

    KINDS = {STRING: ValueKind.STRING, USER: ValueKind.STRING, NUMBER: ValueKind.NUMBER, BOOL: ValueKind.BOOL}

    def __init__(self, compiler: "Compiler", spec):
        self.compiler = compiler
        self.spec = spec
        self.kind = self.KINDS[spec.how]

    def _where(self, condition):
        """``condition`` on the column, never NULL-valued, so that negations stay two-valued."""
        if self.spec.how == USER:
            users = get_user_model()._default_manager.filter(pk=OuterRef(self.spec.column))
            return any_row(users, condition)
        if self.spec.nullable:
            return Q(**{f"{self.spec.column}__isnull": False}) & condition
        return condition

    def _field(self):
        return "username" if self.spec.how == USER else self.spec.column

    def eq(self, value):
        if value is None:
            return Q(**{f"{self.spec.column}__isnull": True}) if self.spec.nullable else False
        if kind_of(value) != self.kind:
            return False
        if self.kind == ValueKind.NUMBER:
            if float(value).is_integer() and self.spec.how == NUMBER and not isinstance(value, float):
                return self._where(Q(**{self._field(): value}))
            return self._where(Q(Exact(F(self._field()), Value(to_number(value)))))
        return self._where(Q(**{self._field(): value}))

    def in_(self, values):
        same = [v for v in values if v is not None and kind_of(v) == self.kind]
        if self.kind == ValueKind.NUMBER:
            found = disj([self.eq(v) for v in same])
        else:
            found = self._where(Q(**{f"{self._field()}__in": same})) if same else False
        return disj([found, self.eq(None) if None in values else False])

    def compare(self, op: str, value):
        lookup, python_op, _ = COMPARISONS[op]
        if value is None:
            return self.eq(None) if op in ("$gte", "$lte") else False
        if kind_of(value) != self.kind:
            return False
        if self.kind == ValueKind.BOOL:
            allowed = [b for b in (False, True) if python_op(b, value)]
            return self._where(Q(**{f"{self._field()}__in": allowed})) if allowed else False
        column = F(self._field())
        if self.kind == ValueKind.STRING:
            column = self.compiler.binary(column)
            return self._where(Q(lookup(column, Value(value))))
        return self._where(Q(lookup(column, Value(to_number(value)))))

    def regex(self, pattern: str):
        if self.kind != ValueKind.STRING:
            return False
        return self._where(Q(**{f"{self._field()}__regex": pattern}))

    def exists(self):
        return True  # every field of the record is in its document (null included)

    def size(self, size: int):
        return False

    def elem_match(self, query: dict, err: str):
        # Not an array: nothing matches, but the operand is still checked.
        if is_value_form(query, err):
            self.compiler.operators(IndexTarget(self.compiler, ValueScope(self.compiler.content_type_id), None),
                                    query, err)
        else:
            self.compiler.document(query, ElementScope(self.compiler.content_type_id, self.spec.name), err)
        return False


def is_value_form(query, err: str) -> bool:
    """``$elemMatch`` over the elements themselves (``{"$gte": 1}``) or over their fields (``{"a": 1}``)."""
    if not isinstance(query, dict):
        raise QueryError(err, f"$elemMatch needs an object, not {json_type(query)}")
    if not query:
        raise QueryError(err, "$elemMatch needs at least one condition")
    operators = [key for key in query if key.startswith("$") and key not in LOGICAL]
    if operators and len(operators) != len(query):
        raise QueryError(err, "$elemMatch mixes conditions on the element with fields or $and/$or/$nor")
    return bool(operators)


# --- the compiler --------------------------------------------------------------------------------------

class Compiler:
    def __init__(self, model, vendor: str):
        self.model = model
        self.vendor = vendor
        self.specs = field_specs(model)
        self.content_type_id = ContentType.objects.get_for_model(model).pk
        # Conditions on one path of the record itself, as compiled, with their index rows uncorrelated.
        self._record_conditions: list[tuple[Q, object]] = []

    def note_record_condition(self, compiled: Q, rows) -> None:
        self._record_conditions.append((compiled, rows))

    def index_rows_of(self, condition):
        """The search-index rows whose records ``condition`` selects, if it is exactly one positive
        record-level index condition; else None."""
        for compiled, rows in self._record_conditions:
            if compiled is condition:
                return rows
        return None

    def binary(self, expression):
        """Code-point order for a string column of the record (the index's own columns are already C)."""
        return Collate(expression, "C") if self.vendor == "postgresql" else expression

    def document(self, document, scope, err: str):
        if not isinstance(document, dict):
            raise QueryError(err or ROOT, f"a filter must be a JSON object, not {json_type(document)}")
        parts = []
        for key, value in document.items():
            here = join(err, key)
            if key in LOGICAL:
                if not isinstance(value, list) or not value:
                    raise QueryError(here, f"{key} needs a non-empty array of filter objects")
                subs = [self.document(item, scope, join(here, str(i))) for i, item in enumerate(value)]
                if key == "$and":
                    parts.append(conj(subs))
                elif key == "$or":
                    parts.append(disj(subs))
                else:
                    parts.append(conj([neg(sub) for sub in subs]))
            elif key in CODE_OPERATORS:
                raise QueryError(here, f"{key} is not allowed: a query can't run code")
            elif key.startswith("$"):
                raise QueryError(here, f"unknown top-level operator {key} (use $and, $or, $nor or a field path)")
            else:
                parts.append(self.condition(self.target(key, scope, here), value, here))
        return conj(parts)

    def target(self, path: str, scope, err: str):
        if not isinstance(scope, ElementScope):
            # Names the earlier system's documented queries use for a field we call otherwise
            # (e.g. a job's `inputs.ip` is `job_inputs.ip`), declared by the model.
            head, dot, rest = path.partition(".")
            alias = getattr(self.model, "query_aliases", {}).get(head)
            if alias is not None:
                path = alias + dot + rest
        parts = path.split(".")
        if any(part == "" for part in parts):
            raise QueryError(err, "a path can't have an empty component")
        if any(part.startswith("$") for part in parts):
            raise QueryError(err, "a path component can't start with '$'")
        if sum(is_position(part) for part in parts) > MAX_POSITIONS:
            raise QueryError(err, f"a path can use at most {MAX_POSITIONS} numeric components")
        if isinstance(scope, ElementScope):
            if is_position(parts[0]):
                raise QueryError(err, "a path inside $elemMatch can't start with an array position")
        else:
            spec = self.specs.get(parts[0])
            if spec is None:
                raise QueryError(err, f"unknown field '{parts[0]}'")
            if len(parts) > 1 and not spec.is_json:
                raise QueryError(err, f"'{parts[0]}' is not a JSON field: a dotted path can't reach into it")
            if spec.how != INDEXED:
                return ColumnTarget(self, spec)
        spelling = scope.spelling(path)
        if len(spelling) > PATH_LENGTH:
            raise QueryError(err, f"the path is longer than {PATH_LENGTH} characters")
        return IndexTarget(self, scope, spelling)

    def condition(self, target, value, err: str):
        if isinstance(value, dict) and any(key.startswith("$") for key in value):
            if not all(key.startswith("$") for key in value):
                raise QueryError(err, "an object mixes $operators and fields: use one or the other")
            return self.operators(target, value, err)
        check_literal(value, err)
        return target.eq(value)

    def operators(self, target, ops: dict, err: str):
        if "$options" in ops and "$regex" not in ops:
            raise QueryError(join(err, "$options"), "$options needs a $regex beside it")
        parts = []
        for op, arg in ops.items():
            here = join(err, op)
            if op == "$eq":
                check_literal(arg, here)
                parts.append(target.eq(arg))
            elif op == "$ne":
                check_literal(arg, here)
                parts.append(neg(target.eq(arg)))
            elif op in COMPARISONS:
                if isinstance(arg, (dict, list)):
                    raise QueryError(here, f"{op} compares with a number, a string, a boolean or null, "
                                           f"not {json_type(arg)}")
                parts.append(target.compare(op, arg))
            elif op in ("$in", "$nin"):
                if not isinstance(arg, list):
                    raise QueryError(here, f"{op} needs an array, not {json_type(arg)}")
                for i, item in enumerate(arg):
                    check_literal(item, join(here, str(i)))
                found = target.in_(arg)
                parts.append(found if op == "$in" else neg(found))
            elif op == "$exists":
                if not isinstance(arg, bool):
                    raise QueryError(here, f"$exists needs true or false, not {json_type(arg)}")
                parts.append(target.exists() if arg else neg(target.exists()))
            elif op == "$regex":
                parts.append(target.regex(self.regex(arg, ops.get("$options", ""), here)))
            elif op == "$options":
                continue
            elif op == "$size":
                if isinstance(arg, bool) or not isinstance(arg, int) or arg < 0:
                    raise QueryError(here, "$size needs a non-negative integer")
                parts.append(target.size(arg))
            elif op == "$all":
                parts.append(self.all(target, arg, here))
            elif op == "$elemMatch":
                parts.append(target.elem_match(arg, here))
            elif op == "$not":
                if not isinstance(arg, dict) or not arg:
                    raise QueryError(here, "$not needs a non-empty object of operators, e.g. {\"$gt\": 1}")
                if not all(key in VALUE_OPERATORS for key in arg):
                    bad = next(key for key in arg if key not in VALUE_OPERATORS)
                    raise QueryError(join(here, bad), f"$not applies to operators only, not to '{bad}'")
                parts.append(neg(self.operators(target, arg, here)))
            elif op in CODE_OPERATORS:
                raise QueryError(here, f"{op} is not allowed: a query can't run code")
            else:
                raise QueryError(here, f"unknown operator {op}")
        return conj(parts)

    def all(self, target, values, err: str):
        if not isinstance(values, list):
            raise QueryError(err, f"$all needs an array, not {json_type(values)}")
        matchers = [isinstance(v, dict) and "$elemMatch" in v for v in values]
        if any(matchers):
            if not all(matchers) or any(len(v) != 1 for v in values):
                raise QueryError(err, "$all takes either values or {\"$elemMatch\": …} objects only, not both")
            return conj([target.elem_match(v["$elemMatch"], join(err, f"{i}.$elemMatch"))
                         for i, v in enumerate(values)])
        for i, item in enumerate(values):
            check_literal(item, join(err, str(i)))
        # MongoDB: {"$all": []} matches nothing; otherwise it is the $and of equalities.
        return conj([target.eq(v) for v in values]) if values else False

    def regex(self, pattern, options, err: str) -> str:
        if not isinstance(pattern, str):
            raise QueryError(err, f"$regex needs a string, not {json_type(pattern)}")
        if not isinstance(options, str) or any(flag not in "imsx" for flag in options):
            raise QueryError(err.rsplit(".", 1)[0] + ".$options" if "." in err else "$options",
                             "$options is a string of the flags i, m, s and x")
        try:
            re2, postgresql = translate_regex(pattern, set(options))
        except RegexError as exc:
            raise QueryError(err, f"the regular expression is not supported: {exc}") from None
        return postgresql if self.vendor == "postgresql" else re2


def check_literal(value, err: str) -> None:
    """A value compared for equality: JSON, without operators inside."""
    if isinstance(value, dict):
        for key, child in value.items():
            if key.startswith("$"):
                raise QueryError(join(err, key), f"{key} can't appear inside a value")
            check_literal(child, join(err, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            check_literal(child, join(err, str(i)))


# --- regular expressions -------------------------------------------------------------------------------

class RegexError(ValueError):
    pass


WORD = "[A-Za-z0-9_]"
CLASS_ESCAPES = {
    "d": [("0", "9")],
    "w": [("A", "Z"), ("a", "z"), ("0", "9"), ("_", "_")],
    "s": [(c, c) for c in " \t\n\r\f\v"],
}
CHAR_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}
QUANTIFIER = re.compile(r"\{(\d+)(?:(,)(\d*))?\}")
MAX_REPEAT = 255  # PostgreSQL's largest repetition count


def translate_regex(pattern: str, flags: set[str]) -> tuple[str, str]:
    """The pattern for RE2 (SQLite) and for PostgreSQL, matching the same strings."""
    parser = RegexParser(pattern, flags)
    tree = parser.parse()
    flags = parser.flags
    re2_flags = "".join(sorted(flags & {"i", "m", "s"}))
    re2 = (f"(?{re2_flags})" if re2_flags else "") + emit(tree, "re2", flags)
    postgresql = ("(?i)" if "i" in flags else "") + emit(tree, "postgresql", flags)
    try:
        compile_pattern(re2)
    except PatternError as exc:
        raise RegexError(f"RE2 can't take it ({exc})") from None
    return re2, postgresql


class RegexParser:
    """A recursive-descent parser of the supported subset (PCRE/Python syntax)."""

    def __init__(self, pattern: str, flags: set[str]):
        self.pattern = pattern
        self.flags = set(flags)
        self.pos = 0

    def peek(self, offset: int = 0):
        index = self.pos + offset
        return self.pattern[index] if index < len(self.pattern) else None

    def parse(self):
        leading = re.compile(r"\(\?([a-zA-Z]+)\)")
        while match := leading.match(self.pattern, self.pos):
            unknown = set(match.group(1)) - set("imsx")
            if unknown:
                raise RegexError(f"the inline flag(s) {''.join(sorted(unknown))} are not supported")
            self.flags |= set(match.group(1))
            self.pos = match.end()
        tree = self.alternation()
        if self.pos < len(self.pattern):
            raise RegexError(f"unbalanced parenthesis at position {self.pos}")
        return tree

    def skip_extended(self) -> None:
        """With the x flag, whitespace and #-comments outside classes are not part of the pattern."""
        if "x" not in self.flags:
            return
        while (c := self.peek()) is not None:
            if c in " \t\n\r\f\v":
                self.pos += 1
            elif c == "#":
                while (c := self.peek()) is not None and c != "\n":
                    self.pos += 1
            else:
                return

    def alternation(self):
        branches = [self.sequence()]
        while self.peek() == "|":
            self.pos += 1
            branches.append(self.sequence())
        return ("alt", branches)

    def sequence(self):
        items = []
        while True:
            self.skip_extended()
            c = self.peek()
            if c is None or c in "|)":
                return ("seq", items)
            atom = self.atom()
            self.skip_extended()
            quantifier = self.quantifier()
            if quantifier is not None:
                if atom[0] not in ("lit", "any", "class", "group"):
                    raise RegexError(f"nothing to repeat at position {self.pos}")
                atom = ("rep", atom, *quantifier)
                self.skip_extended()
                if self.quantifier(check_only=True):
                    raise RegexError(f"multiple repeat at position {self.pos}")
            items.append(atom)

    def quantifier(self, check_only: bool = False):
        c = self.peek()
        if c in ("*", "+", "?"):
            bounds = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
            length = 1
        elif c == "{":
            match = QUANTIFIER.match(self.pattern, self.pos)
            if match is None:
                if re.match(r"\{,\d*\}", self.pattern[self.pos:]):
                    raise RegexError("write {0,n} for 'at most n' (PCRE reads {,n} as text)")
                return None
            low = int(match.group(1))
            high = low if match.group(2) is None else (int(match.group(3)) if match.group(3) else None)
            if high is not None and high < low:
                raise RegexError("min repeat greater than max repeat")
            if max(low, high or 0) > MAX_REPEAT:
                raise RegexError(f"repetition counts above {MAX_REPEAT} are not supported")
            bounds = (low, high)
            length = match.end() - self.pos
        else:
            return None
        if check_only:
            return True
        self.pos += length
        if self.peek() == "?":
            self.pos += 1  # lazy: whether a match exists doesn't depend on it
        elif self.peek() == "+":
            raise RegexError("possessive quantifiers are not supported")
        return bounds

    def atom(self):
        c = self.peek()
        self.pos += 1
        if c == "(":
            return self.group()
        if c == "[":
            return self.char_class()
        if c == ".":
            return ("any",)
        if c == "^":
            return ("bol",)
        if c == "$":
            return ("eol",)
        if c == "\\":
            return self.escape()
        if c in "*+?":
            raise RegexError(f"nothing to repeat at position {self.pos - 1}")
        if c == "{" and QUANTIFIER.match(self.pattern, self.pos - 1):
            raise RegexError(f"nothing to repeat at position {self.pos - 1}")
        return ("lit", c)

    def group(self):
        if self.peek() == "?":
            if self.pattern.startswith("?:", self.pos):
                self.pos += 2
            elif any(self.pattern.startswith(prefix, self.pos) for prefix in ("?=", "?!", "?<=", "?<!")):
                raise RegexError(f"lookahead and lookbehind (position {self.pos - 1}) need a backtracking "
                                 "engine; $regex runs in linear time (RE2 semantics)")
            else:
                raise RegexError(f"the group syntax at position {self.pos - 1} is not supported "
                                 "(named groups, scoped flags, comments, conditionals)")
        inner = self.alternation()
        if self.peek() != ")":
            raise RegexError("missing ), unterminated subpattern")
        self.pos += 1
        return ("group", inner)

    def escape(self, in_class: bool = False):
        c = self.peek()
        if c is None:
            raise RegexError("the pattern ends with a backslash")
        self.pos += 1
        if c in CLASS_ESCAPES:
            return ("class", False, CLASS_ESCAPES[c])
        if c in "DWS":
            if in_class:
                raise RegexError(f"\\{c} inside a character class is not supported")
            return ("class", True, CLASS_ESCAPES[c.lower()])
        if c in CHAR_ESCAPES:
            return ("lit", CHAR_ESCAPES[c])
        if c in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[c]
            digits = self.pattern[self.pos:self.pos + width]
            if len(digits) != width or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise RegexError(f"\\{c} needs {width} hexadecimal digits")
            self.pos += width
            code = int(digits, 16)
            if code == 0 or code > 0x10FFFF:
                raise RegexError(f"\\{c}{digits} is not a supported character")
            return ("lit", chr(code))
        if in_class and c == "b":
            return ("lit", "\b")
        if c == "b":
            return ("wordb", True)
        if c == "B":
            return ("wordb", False)
        if c == "A":
            return ("bos",)
        if c.isdigit():
            raise RegexError("backreferences and octal escapes are not supported (backreferences need a "
                             "backtracking engine)")
        if c.isascii() and c.isalnum():
            raise RegexError(f"the escape \\{c} is not supported")
        return ("lit", c)

    def char_class(self):
        negated = False
        if self.peek() == "^":
            negated = True
            self.pos += 1
        ranges = []
        first = True
        while True:
            c = self.peek()
            if c is None:
                raise RegexError("unterminated character set")
            if c == "]" and not first:
                self.pos += 1
                return ("class", negated, ranges)
            first = False
            low = self.class_item()
            if isinstance(low, list):
                ranges.extend(low)
                continue
            if self.peek() == "-" and self.peek(1) not in ("]", None):
                self.pos += 1
                high = self.class_item()
                if isinstance(high, list):
                    raise RegexError("bad character range")
                if ord(high) < ord(low):
                    raise RegexError(f"bad character range {low}-{high}")
                ranges.append((low, high))
            else:
                ranges.append((low, low))

    def class_item(self):
        c = self.peek()
        self.pos += 1
        if c != "\\":
            return c
        item = self.escape(in_class=True)
        if item[0] == "class":
            return list(item[2])
        if item[0] != "lit":
            raise RegexError("this escape is not supported inside a character class")
        return item[1]


def emit(node, target: str, flags: set[str]) -> str:
    kind = node[0]
    if kind == "alt":
        return "|".join(emit(branch, target, flags) for branch in node[1])
    if kind == "seq":
        return "".join(emit(item, target, flags) for item in node[1])
    if kind == "lit":
        return emit_char(node[1], target)
    if kind == "any":
        # PostgreSQL's '.' matches a newline; PCRE's and RE2's don't, unless the s flag is given.
        return "." if target == "re2" or "s" in flags else "[^\\n]"
    if kind == "class":
        body = "".join(emit_char(low, target) + ("" if low == high else "-" + emit_char(high, target))
                       for low, high in node[2])
        return f"[{'^' if node[1] else ''}{body}]"
    if kind == "bol":
        if target == "re2":
            return "^"
        return "(?<![^\\n])" if "m" in flags else "^"
    if kind == "eol":
        # PCRE: '$' also matches before a final newline (or before every newline with m). RE2's (?m)$ does
        # too; without m its '$' is the end of the text only, and RE2 has no lookahead: the final newline is
        # consumed instead, which is the same whenever nothing but the end follows '$' in the pattern.
        if target == "re2":
            return "$" if "m" in flags else "(?:\\n?\\z)"
        return "(?![^\\n])" if "m" in flags else "(?=\\n?$)"
    if kind == "bos":
        return "\\A" if target == "re2" else "^"
    if kind == "wordb":
        if target == "re2":
            return "\\b" if node[1] else "\\B"  # RE2's word boundary is ASCII, as this subset's \\w
        if node[1]:
            return f"(?:(?<={WORD})(?!{WORD})|(?<!{WORD})(?={WORD}))"
        return f"(?:(?<={WORD})(?={WORD})|(?<!{WORD})(?!{WORD}))"
    if kind == "group":
        return f"(?:{emit(node[1], target, flags)})"
    if kind == "rep":
        _, inner, low, high = node
        if (low, high) == (0, None):
            suffix = "*"
        elif (low, high) == (1, None):
            suffix = "+"
        elif (low, high) == (0, 1):
            suffix = "?"
        elif low == high:
            suffix = f"{{{low}}}"
        else:
            suffix = f"{{{low},{'' if high is None else high}}}"
        return emit(inner, target, flags) + suffix
    raise AssertionError(kind)


def emit_char(c: str, target: str) -> str:
    if c.isascii() and c.isalnum():
        return c
    if ord(c) < 32 or ord(c) == 127:
        return f"\\x{{{ord(c):04x}}}" if target == "re2" else f"\\u{ord(c):04x}"
    if not c.isascii():
        return c
    return "\\" + c
