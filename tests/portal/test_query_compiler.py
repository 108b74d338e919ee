"""The query language of docs/api.md §2: its semantics, its rejections (400 naming the part), its limits, its index."""
import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from functions.models import Function
from policies.models import PolicyRule
from records.documents import search_document
from records.models import SearchEntry
from records.query import QueryError, filter_by_document
from records.search import reindex

pytestmark = pytest.mark.django_db


def policy(n, metadata=None, **fields):
    defaults = dict(name=f"p{n}", version="1.0", release_tag="beta", code="https://example.org/p.zip")
    return PolicyRule.objects.create(metadata=metadata if metadata is not None else {}, **{**defaults, **fields})


def names(document, queryset=None):
    queryset = PolicyRule.objects.all() if queryset is None else queryset
    return sorted(filter_by_document(queryset, document).values_list("name", flat=True))


# --- semantics ---------------------------------------------------------------------------------------------

def test_a_bare_value_matches_an_array_containing_it_and_in_does_too():
    for i, tags in enumerate([["network", "dns"], ["dns"], []]):
        Function.objects.create(function_id=f"fn-{i}", function_executor_id="e", function_policy_rule_uri="p:1-a",
                                function_tags=tags)
    assert list(filter_by_document(Function.objects.all(), {"function_tags": "network"})
                .values_list("function_id", flat=True)) == ["fn-0"]
    assert list(filter_by_document(Function.objects.all(), {"function_tags": {"$in": ["network"]}})
                .values_list("function_id", flat=True)) == ["fn-0"]


def test_strings_compare_lexicographically_and_only_with_strings():
    policy(1, {"v": "10.0"})
    policy(2, {"v": "9.0"})
    policy(3, {"v": 10})
    assert names({"metadata.v": {"$lt": "9.0"}}) == ["p1"]
    assert names({"metadata.v": {"$gt": 9}}) == ["p3"]
    assert names({"release_tag": {"$gt": 1}}) == []  # a number never compares with a string column


def test_booleans_are_not_numbers_and_ints_equal_floats():
    policy(1, {"v": True})
    policy(2, {"v": 1})
    policy(3, {"v": 1.0})
    assert names({"metadata.v": 1}) == ["p2", "p3"]
    assert names({"metadata.v": True}) == ["p1"]
    assert names({"metadata.v": {"$gte": 0}}) == ["p2", "p3"]


def test_null_matches_null_or_missing_and_ne_matches_missing():
    policy(1, {"v": None})
    policy(2, {})
    policy(3, {"v": 2})
    policy(4, {"items": [{"v": 2}, {"w": 1}]})
    assert names({"metadata.v": None}) == ["p1", "p2", "p4"]
    assert names({"metadata.v": {"$ne": 2}}) == ["p1", "p2", "p4"]
    assert names({"metadata.items.v": None}) == ["p1", "p2", "p3", "p4"]  # no items, or an item without v
    assert names({"metadata.items.v": {"$ne": None}}) == []
    assert names({"metadata.v": {"$exists": False}}) == ["p2", "p4"]
    assert names({"metadata.v": {"$nin": [2, None]}}) == []


def test_dotted_paths_traverse_arrays_of_objects_and_numbers_index_them():
    policy(1, {"items": [{"b": 1, "c": "x"}, {"b": 5}]})
    policy(2, {"items": [{"b": 5, "c": "x"}]})
    assert names({"metadata.items.b": 5}) == ["p1", "p2"]
    assert names({"metadata.items.0.b": 5}) == ["p2"]
    assert names({"metadata.items.1": {"b": 5}}) == ["p1"]
    # Operators on one path are independent; $elemMatch wants one element to satisfy all.
    assert names({"metadata.items.b": {"$gt": 3, "$lt": 2}}) == ["p1"]
    assert names({"metadata.items": {"$elemMatch": {"b": 5, "c": "x"}}}) == ["p2"]


def test_size_all_not_nor_and_objects_compared_whole():
    policy(1, {"tags": ["a", "b"], "o": {"x": 1, "y": [2]}})
    policy(2, {"tags": ["a"], "o": {"y": [2], "x": 1.0}})
    assert names({"metadata.tags": {"$size": 2}}) == ["p1"]
    assert names({"metadata.tags": {"$all": ["a", "b"]}}) == ["p1"]
    assert names({"metadata.tags": {"$not": {"$size": 2}}}) == ["p2"]
    assert names({"$nor": [{"metadata.tags": "b"}]}) == ["p2"]
    assert names({"metadata.o": {"y": [2], "x": 1}}) == ["p1", "p2"]  # key order and 1 == 1.0 don't matter


@pytest.mark.parametrize(
    ("regex", "options", "matches"),
    [
        ("^b", "", ["p2"]),
        ("^b", "m", ["p1", "p2"]),  # m: ^ after a newline
        ("a.b", "", []),  # '.' doesn't match a newline…
        ("a.b", "s", ["p1"]),  # …unless s
        ("^A", "i", ["p1"]),
        ("a $", "x", ["p2"]),  # x: whitespace ignored; $ also before a final newline, as in PCRE
        ("\\bb", "", ["p1", "p2"]),
        ("[^a]\\nb", "", []),
        ("^\\w+$", "", []),
    ],
)
def test_regex_behaves_alike_on_both_databases(regex, options, matches):
    policy(1, description="a\nb")
    policy(2, description="b a\n")
    assert names({"description": {"$regex": regex, "$options": options}}) == matches
    assert names({"metadata.none": {"$regex": regex}}) == []


def test_long_strings_compare_in_full_beyond_the_indexed_prefix():
    base = "z" * 150
    policy(1, {"s": base + "a"})
    policy(2, {"s": base + "b"})
    assert names({"metadata.s": base + "a"}) == ["p1"]
    assert names({"metadata.s": {"$gt": base + "a"}}) == ["p2"]
    assert names({"metadata.s": {"$regex": "zb$"}}) == ["p2"]


def test_creator_is_queried_by_username(django_user_model):
    alice = django_user_model.objects.create_user("alice")
    policy(1, created_by=alice)
    policy(2)
    assert names({"created_by": "alice"}) == ["p1"]
    assert names({"created_by": None}) == ["p2"]
    assert names({"created_by": {"$regex": "^al"}}) == ["p1"]


def test_the_result_is_a_lazy_queryset_answered_by_the_database():
    policy(1, {"v": 3})
    filter_by_document(PolicyRule.objects.all(), {})  # warms the content-type cache
    with CaptureQueriesContext(connection) as queries:
        queryset = filter_by_document(PolicyRule.objects.all(), {"metadata.v": {"$gte": 2}})
    assert len(queries) == 0
    assert "EXISTS" in str(queryset.query)
    assert queryset.order_by("-name")[:1].count() == 1


# --- the index follows the records ---------------------------------------------------------------------------

def test_index_follows_saves_and_deletes():
    record = policy(1, {"v": 1})
    record.metadata = {"v": 2}
    record.save()
    assert names({"metadata.v": 2}) == ["p1"]
    assert names({"metadata.v": 1}) == []
    record.delete()
    assert not SearchEntry.objects.filter(object_id=record.pk).exists()


def test_a_save_of_scalar_fields_updates_their_rows_in_place_and_keeps_the_rest():
    record = policy(1, {"v": 1})
    old_stamp = search_document(record)["updated_at"]
    before = SearchEntry.objects.filter(object_id=record.pk, path="metadata.v").values_list("pk", flat=True)[0]
    record.status = "in_review"
    with CaptureQueriesContext(connection) as queries:
        PolicyRule.save_base(record, update_fields=["status", "updated_at"])
    assert not any("DELETE" in q["sql"] for q in queries.captured_queries)
    new_stamp = search_document(record)["updated_at"]  # auto_now moved it on
    assert new_stamp != old_stamp
    assert names({"updated_at": new_stamp}) == ["p1"] and names({"updated_at": old_stamp}) == []
    assert names({"status": "in_review", "metadata.v": 1}) == ["p1"]
    assert SearchEntry.objects.filter(object_id=record.pk, path="metadata.v").values_list("pk", flat=True)[0] == before
    # A JSON field among update_fields rebuilds the record's rows.
    record.metadata = {"v": 3}
    record.save(update_fields=["metadata"])
    assert names({"metadata.v": 3}) == ["p1"] and names({"metadata.v": 1}) == []


def test_reindex_covers_records_written_without_save():
    PolicyRule.objects.bulk_create([PolicyRule(name="p1", version="1", release_tag="b", policy_rule_uri="p1:1-b",
                                               code="c", metadata={"v": 7})])
    assert names({"metadata.v": 7}) == []
    reindex(PolicyRule.objects.filter(name="p1"))
    assert names({"metadata.v": 7}) == ["p1"]
    PolicyRule.objects.update(metadata={"v": 8})
    call_command("rebuild_search_index", "policies.PolicyRule", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert names({"metadata.v": 8}) == ["p1"]


def test_search_document_is_the_get_representation_of_the_stored_fields(api, django_user_model):
    record = policy(1, {"v": [1, {"a": None}]}, created_by=django_user_model.objects.create_user("bob"))
    shown = api.get(f"/policy/{record.policy_rule_uri}").json()["data"]
    document = search_document(record)
    assert document == {name: shown[name] for name in document}


# --- rejections --------------------------------------------------------------------------------------------

REJECTED = [
    ([], "<root>"),
    ("release_tag", "<root>"),
    ({"$where": "this.a == 1"}, "$where"),
    ({"$expr": {"$eq": ["$a", 1]}}, "$expr"),
    ({"$function": {}}, "$function"),
    ({"$not": {"release_tag": "a"}}, "$not"),
    ({"$foo": 1}, "$foo"),
    ({"release_tag": {"$foo": 1}}, "release_tag.$foo"),
    ({"metadata.x": {"$where": "1"}}, "metadata.x.$where"),
    ({"metadata.x": {"$regex": "("}}, "metadata.x.$regex"),
    ({"metadata.x": {"$regex": "(a)\\1"}}, "metadata.x.$regex"),
    ({"metadata.x": {"$regex": "a*+"}}, "metadata.x.$regex"),
    ({"metadata.x": {"$regex": "(?<=a+)b"}}, "metadata.x.$regex"),
    ({"metadata.x": {"$regex": 5}}, "metadata.x.$regex"),
    ({"metadata.x": {"$regex": "a", "$options": "q"}}, "metadata.x.$options"),
    ({"metadata.x": {"$options": "i"}}, "metadata.x.$options"),
    ({"metadata.x": {"$in": "a"}}, "metadata.x.$in"),
    ({"metadata.x": {"$nin": {"a": 1}}}, "metadata.x.$nin"),
    ({"metadata.x": {"$size": -1}}, "metadata.x.$size"),
    ({"metadata.x": {"$size": 1.5}}, "metadata.x.$size"),
    ({"metadata.x": {"$size": True}}, "metadata.x.$size"),
    ({"metadata.x": {"$exists": 1}}, "metadata.x.$exists"),
    ({"metadata.x": {"$gt": [1]}}, "metadata.x.$gt"),
    ({"metadata.x": {"$all": 1}}, "metadata.x.$all"),
    ({"metadata.x": {"$elemMatch": []}}, "metadata.x.$elemMatch"),
    ({"metadata.x": {"$elemMatch": {}}}, "metadata.x.$elemMatch"),
    ({"metadata.x": {"$elemMatch": {"$gt": 1, "a": 2}}}, "metadata.x.$elemMatch"),
    ({"metadata.x": {"$not": 1}}, "metadata.x.$not"),
    ({"metadata.x": {"$not": {}}}, "metadata.x.$not"),
    ({"metadata.x": {"$gt": 1, "a": 2}}, "metadata.x"),
    ({"metadata.x": {"$eq": {"$gt": 1}}}, "metadata.x.$eq.$gt"),
    ({"$and": []}, "$and"),
    ({"$or": {"a": 1}}, "$or"),
    ({"$nor": [1]}, "$nor.0"),
    ({"$and": [{"metadata.x": {"$bad": 1}}]}, "$and.0.metadata.x.$bad"),
    ({"nosuchfield": 1}, "nosuchfield"),
    ({"release_tag.x": 1}, "release_tag.x"),
    ({"metadata..x": 1}, "metadata..x"),
]


@pytest.mark.parametrize(("document", "path"), REJECTED, ids=[repr(d) for d, _ in REJECTED])
def test_rejected_filters_raise_query_error_naming_the_part(document, path):
    with pytest.raises(QueryError) as raised:
        filter_by_document(PolicyRule.objects.all(), document)
    assert raised.value.path == path
    assert raised.value.reason


@pytest.mark.parametrize(("document", "path"), REJECTED, ids=[repr(d) for d, _ in REJECTED])
def test_rejected_filters_answer_400_naming_the_part(document, path, api):
    response = api.post("/policy/query", document, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["success"] is False
    assert body["message"].startswith(f"invalid query at {path}: ")
    assert list(body["errors"]) == [path]


def test_depth_and_size_limits(api, settings):
    deep = {"metadata.x": 1}
    for _ in range(4):
        deep = {"$and": [deep]}  # 1 + 2 per $and + 1: nine levels
    with pytest.raises(QueryError) as raised:
        filter_by_document(PolicyRule.objects.all(), deep, max_depth=8)
    assert raised.value.path.startswith("$and.0.$and.0.$and.0.$and")
    filter_by_document(PolicyRule.objects.all(), deep, max_depth=9)
    large = {"metadata.x": {"$in": list(range(300))}}
    with pytest.raises(QueryError) as raised:
        filter_by_document(PolicyRule.objects.all(), large, max_nodes=200)
    assert raised.value.path == "<root>"
    settings.QUERY_MAX_NODES = 200
    response = api.post("/policy/query", large, format="json")
    assert response.status_code == 400
    assert "200" in response.json()["message"]
    settings.QUERY_MAX_DEPTH = 8
    assert api.post("/policy/query", deep, format="json").status_code == 400


# --- counting ----------------------------------------------------------------------------------------------

def test_one_indexed_condition_is_counted_from_the_index_alone_each_record_once():
    from records.query import filter_and_count

    policy(1, {"scores": [91, 95], "team": "net"})  # two index rows match: still one record
    policy(2, {"scores": [10], "team": "net"})
    policy(3, {"scores": 90, "team": "ops"})
    policy(4, {"team": "ops"})
    table = PolicyRule._meta.db_table
    for document, expected in [
        ({"metadata.scores": {"$gte": 90}}, 2),
        ({"metadata.scores": {"$in": [10, 95]}}, 2),
        ({"metadata.team": "net"}, 2),
        ({"metadata.team": {"$regex": "^o"}}, 2),
        ({"$and": [{"metadata.team": {"$gt": "n"}}]}, 4),
    ]:
        queryset, count = filter_and_count(PolicyRule.objects.all(), document)
        with CaptureQueriesContext(connection) as queries:
            counted = count()
        assert counted == expected == queryset.count(), document
        assert len(queries) == 1 and table not in queries[0]["sql"], (document, queries[0]["sql"])


def test_other_documents_and_filtered_querysets_are_counted_over_the_records():
    from records.query import filter_and_count

    policy(1, {"scores": [91, 95], "team": "net"})
    policy(2, {"team": "ops"}, release_tag="prod")
    table = PolicyRule._meta.db_table
    cases = [
        (PolicyRule.objects.all(), {"metadata.scores": {"$gte": 90}, "metadata.team": "net"}, 1),
        (PolicyRule.objects.all(), {"metadata.scores": None}, 1),  # missing counts: not in the index
        (PolicyRule.objects.all(), {"metadata.team": {"$ne": "net"}}, 1),
        (PolicyRule.objects.all(), {"release_tag": "prod"}, 1),  # a column, not the index
        (PolicyRule.objects.filter(release_tag="prod"), {"metadata.team": "net"}, 0),  # the queryset's own filter
    ]
    for base, document, expected in cases:
        queryset, count = filter_and_count(base, document)
        with CaptureQueriesContext(connection) as queries:
            counted = count()
        assert counted == expected == queryset.count(), document
        assert table in queries[0]["sql"], document
