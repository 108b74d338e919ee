"""Generated documents and filters for tests/portal/test_query_differential.py, and the cases where mongomock
answers unlike MongoDB (``mongomock_misreads``); that module's docstring says which are left out and why."""
from hypothesis import strategies as st
from mongomock.filtering import filter_applies, iter_key_candidates
from sentinels import NOTHING

LOGICAL = ("$and", "$or", "$nor")


def weighted(*choices):
    """One of the strategies, with the given weights (``st.one_of`` draws its branches evenly)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda i: table[i])


# --- values ------------------------------------------------------------------------------------------------

# Mostly a few values, so that generated filters often hit; rarely the edge cases (long strings compare
# through a 100-character key plus the full text; newlines exercise the regex flags).
COMMON_NUMBERS = [-2, 2, 3, 2.5, 10]  # never 0 or 1 (see test_query_differential.py's docstring)
RARE_NUMBERS = [3.0, -2.5, 9.5, 1e3]
COMMON_STRINGS = ["a", "ab", "A", "10.0", "9.0", "net"]
RARE_STRINGS = ["", "Ab", "b", "network", "a\nb", "b\n", "x y", "z" * 100, "z" * 120, "z" * 120 + "a"]
numbers = weighted((3, st.sampled_from(COMMON_NUMBERS)), (1, st.sampled_from(RARE_NUMBERS)))
strings = weighted((3, st.sampled_from(COMMON_STRINGS)), (1, st.sampled_from(RARE_STRINGS)))
scalars = weighted((1, st.none()), (1, st.booleans()), (2, numbers), (2, strings))
KEYS = ["a", "b", "c"]


def values(depth: int):
    if depth == 0:
        return scalars
    objects = st.dictionaries(st.sampled_from(KEYS), values(depth - 1), max_size=3)
    arrays = st.lists(st.one_of(scalars, objects), max_size=3)  # no array directly inside an array
    return weighted((2, scalars), (1, objects), (1, arrays))


# Documents have a usual shape (a: a number, b: a string, tags: strings, items: objects…) that generated
# filters often hit, and any other value often enough to mix types at every path. Keys are dropped at
# random rather than added, so that even hypothesis's simplest documents have something to match.
def usually(shape: dict):
    return st.builds(lambda document, dropped: {k: v for k, v in document.items() if k not in dropped},
                     st.fixed_dictionaries(shape), st.sets(st.sampled_from(sorted(shape))))


def mostly(usual):
    return weighted((4, usual), (1, values(2)))


usual_objects = usually({"a": weighted((3, numbers), (1, scalars)), "b": weighted((3, strings), (1, scalars)),
                         "c": values(1)})
metadata_docs = usually({
    "a": mostly(numbers),
    "b": mostly(strings),
    "c": mostly(usual_objects),
    "tags": mostly(st.lists(strings, min_size=1, max_size=3)),
    "items": mostly(st.lists(usual_objects, min_size=1, max_size=3)),
})

# --- filters ------------------------------------------------------------------------------------------------

PATTERNS = ["^a", "a$", "^a$", "b", "A", "^$", ".", "a.b", "^a.b$", "\\d", "\\.0$", "^[a-c]+$", "[^a]",
            "net(work)?", "^n.*k$", "a|b", "x y", "x\\sy", "\\bnet\\b", "\\w+$", "^(?:ab|9)", "\\d\\.0",
            "[A-Z]", "b$", "^b", "z{100}a", "^z{120}$", "(?i)^ab", "a\\nb", "[\\d.]+", "^\\S+$"]
regexes = st.builds(
    lambda pattern, options: {"$regex": pattern, **({"$options": options} if options else {})},
    st.sampled_from(PATTERNS), st.sampled_from(["", "i", "m", "s", "x", "im", "ms", "ix"]),
)
small_objects = st.dictionaries(st.sampled_from(KEYS), scalars, max_size=2)
RELATIVE_PATHS = ["a", "b", "c", "a.b", "c.a", "b.a"]


class Pool:
    """Operands to draw from: mostly values found at the path in the generated documents, so that filters
    often hit, and any value often enough to miss."""

    def __init__(self, found: list):
        found_scalars = [v for v in found if not isinstance(v, (dict, list))]
        found_comparable = [v for v in found_scalars if v is not None]
        self.literals = weighted(*self.first(found, 6), (2, scalars), (1, values(1)))
        self.comparable = weighted(*self.first(found_comparable, 6), (1, st.booleans()), (1, numbers), (1, strings))
        self.items = weighted(*self.first(found_scalars, 4), (2, scalars), (1, small_objects))
        self.all_items = weighted((4, self.comparable), (1, small_objects))

    @staticmethod
    def first(found: list, weight: int) -> list:
        return [(weight, st.sampled_from(found))] if found else []


class Pools:
    """A Pool per path, from what the documents hold there (see ``observed``)."""

    def __init__(self, found: dict[str, list]):
        self.found = found
        self.pools: dict[str, Pool] = {}
        self.anywhere = Pool([v for values in found.values() for v in values if not isinstance(v, (dict, list))])

    def at(self, path: str) -> Pool:
        if path not in self.found:
            return self.anywhere
        if path not in self.pools:
            self.pools[path] = Pool(self.found[path])
        return self.pools[path]


def observed(documents: list[dict]) -> dict[str, list]:
    """The values found at each path (generic and with positions, elements included) of ``documents``."""
    found: dict[str, list] = {}

    def walk(value, path):
        found.setdefault(path, []).append(value)
        if isinstance(value, dict):
            for key, child in value.items():
                walk(child, f"{path}.{key}")
        elif isinstance(value, list):
            for position, child in enumerate(value):
                found[path].append(child)
                walk(child, f"{path}.{position}")
                if isinstance(child, dict):
                    for key, grandchild in child.items():
                        walk(grandchild, f"{path}.{key}")

    for document in documents:
        for name, value in document.items():
            walk(value, name)
    # An element's own fields, for the paths inside $elemMatch.
    for path in list(found):
        for value in found[path]:
            if isinstance(value, dict):
                for key, child in value.items():
                    found.setdefault(key, []).append(child)
    return found


def operator_docs(pool: Pool, pools: Pools, depth: int):
    single = [
        st.builds(lambda v: {"$eq": v}, pool.literals),
        st.builds(lambda v: {"$ne": v}, pool.literals),
        st.builds(lambda op, v: {op: v}, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), pool.comparable),
        st.builds(lambda op, v: {op: v}, st.sampled_from(["$in", "$nin"]), st.lists(pool.items, max_size=3)),
        st.builds(lambda v: {"$exists": v}, st.booleans()),
        regexes,
        st.builds(lambda n: {"$size": n}, st.integers(0, 3)),
        st.builds(lambda v: {"$all": v}, st.lists(pool.all_items, min_size=1, max_size=2)),
    ]
    ops = weighted(*[(2, op) for op in single])
    if depth > 0:
        element_ops = weighted(*[(1, op) for op in (*single[:4], single[5], single[6])])
        ops = weighted(
            (16, ops),
            # mongomock refuses $options inside $not (MongoDB accepts it).
            (2, st.builds(lambda inner: {"$not": inner},
                          st.one_of(*single[:5], single[6], single[7],
                                    st.builds(lambda p: {"$regex": p}, st.sampled_from(PATTERNS))))),
            (1, st.builds(lambda inner: {"$elemMatch": inner}, element_ops)),
            (2, st.builds(lambda inner: {"$elemMatch": inner}, filters(RELATIVE_PATHS, pools, depth - 1))),
        )
    # Two operators on one path ($gte and $lt…), merged.
    return weighted((4, ops), (1, st.builds(lambda a, b: {**b, **a}, ops, ops)))


def conditions(pool: Pool, pools: Pools, depth: int):
    return weighted((2, pool.literals), (3, operator_docs(pool, pools, depth)))


def filters(paths: list[str], pools: Pools, depth: int):
    def on(path):
        return conditions(pools.at(path), pools, depth).map(lambda condition: {path: condition})

    one = st.sampled_from(paths).flatmap(on)
    field = weighted((6, one), (1, st.builds(lambda a, b: {**a, **b}, one, one)))
    if depth == 0:
        return field
    logical = st.builds(lambda op, subs: {op: subs}, st.sampled_from(LOGICAL),
                        st.lists(filters(paths, pools, depth - 1), min_size=1, max_size=3))
    return weighted((4, field), (1, logical))


# --- where mongomock departs from MongoDB on generated documents ----------------------------------------------

def mongomock_misreads(flt: dict, document) -> bool:
    """True when mongomock is known to answer ``flt`` on ``document`` unlike MongoDB (then it isn't compared)."""
    for key, condition in flt.items():
        if key in LOGICAL:
            if any(mongomock_misreads(sub, document) for sub in condition):
                return True
        elif operators_misread(condition, list(iter_key_candidates(key, document))):
            return True
    return False


def operators_misread(condition, candidates: list) -> bool:
    if condition == {} and all(c is NOTHING for c in candidates):
        return True  # mongomock matches the literal {} wherever the path has no value at all
    if not (isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition)):
        return False
    ops = {k: v for k, v in condition.items() if k != "$options"}
    present = [c for c in candidates if c is not NOTHING]
    # mongomock requires one value to satisfy all operators; MongoDB checks each over all values.
    if len(ops) > 1 and len(candidates) > 1:
        return True
    # mongomock: $exists false holds if any value is missing; MongoDB: if none is present.
    if ops.get("$exists") is False and present and len(present) < len(candidates):
        return True
    # With no value at all (a path through a scalar or an empty array) mongomock fails $not and a combined
    # $exists: false, which MongoDB's negations satisfy.
    if not candidates and ("$not" in ops or ("$exists" in ops and len(ops) > 1)):
        return True
    # mongomock's $size counts an object's keys and gives a non-empty scalar size 1.
    if "$size" in ops and any(isinstance(c, dict) or (c is not NOTHING and not isinstance(c, list) and c)
                              for c in candidates):
        return True
    # mongomock flattens $all's values only when the first is an array.
    if "$all" in ops and len(candidates) > 1 and any(isinstance(c, list) for c in candidates):
        return True
    if "$not" in ops and operators_misread(ops["$not"], candidates):
        return True
    if "$elemMatch" in ops:
        query = ops["$elemMatch"]
        value_form = all(k.startswith("$") and k not in LOGICAL for k in query)
        for candidate in candidates:
            for element in candidate if isinstance(candidate, list) else ():
                if value_form:
                    if operators_misread(query, [element]):
                        return True
                elif isinstance(element, dict):
                    if mongomock_misreads(query, element):
                        return True
                # MongoDB's document-form $elemMatch skips elements that are not objects; mongomock tries them.
                elif filter_applies(query, element):
                    return True
    return False
