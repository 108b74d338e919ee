"""The query compiler checked differentially against mongomock, on generated documents and filters.

Records are written through the ORM (their search index is maintained by the save signal), filtered with
``filter_by_document`` (and, for a smaller set, through ``POST /<resource>/query``), and the matches are
compared with what mongomock finds among the records' GET representations.

Where mongomock is known to answer unlike MongoDB, the case is left out of generation — either never
generated (first list) or skipped when the generated documents expose it (``mongomock_misreads``):

* Python's ``True == 1``: mongomock equates booleans with the numbers 1/0, MongoDB doesn't (bool is its
  own type) → numbers 0 and 1 are never generated.
* Arrays nested directly in arrays: mongomock compares an array operand only with the whole value in
  ``$eq``/``$in``/``$all`` and flattens ``$all`` candidates → no array directly inside an array, and no
  array operands in ``$in``/``$nin``/``$all``.
* ``$gt``/``$gte``/``$lt``/``$lte`` with ``null``: MongoDB's ``$gte: null`` matches missing fields,
  mongomock's doesn't → no null range operands. ``$all: [null]`` likewise, and ``$all: []`` (MongoDB
  matches nothing, mongomock everything) is not generated.
* ``$options`` inside ``$not``: mongomock raises "unknown operator" → not generated.
* Dict keys that look like positions ("0") and ``$elemMatch: {}`` are not generated (mongomock and MongoDB
  read both differently).
"""
import os

import mongomock
import pytest
from django.db import transaction
from django.test import override_settings
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from records.documents import search_document
from records.query import filter_and_count
from tests.portal.query_strategies import (
    KEYS,
    Pools,
    filters,
    metadata_docs,
    mongomock_misreads,
    observed,
    strings,
    values,
)

pytestmark = pytest.mark.django_db

# --- the resources ----------------------------------------------------------------------------------------------

def make_policy(i, doc, users):
    from policies.models import PolicyRule

    return PolicyRule.objects.create(
        name=f"p{i}", version="1.0", release_tag=doc["release_tag"], code="https://example.org/p.zip",
        description=doc["description"], metadata=doc["metadata"], policy_parameters=doc["policy_parameters"],
        created_by=users[doc["created_by"]],
    )


def make_function(i, doc, users):
    from functions.models import Function

    return Function.objects.create(
        function_id=f"fn-{i}", function_executor_id="exec-0", function_policy_rule_uri="p0:1.0-beta",
        function_tags=doc["function_tags"], function_metadata=doc["function_metadata"], replicas=doc["replicas"],
        created_by=users[doc["created_by"]],
    )


def make_executor(i, doc, users):
    from executors.models import PolicyExecutor

    return PolicyExecutor.objects.create(
        executor_id=f"exec-{i}", executor_hardware_info=doc["executor_hardware_info"],
        latency_ms=doc["latency_ms"], executor_status=doc["executor_status"], created_by=users[doc["created_by"]],
    )


creators = st.sampled_from([None, "alice", "bob"])
tag_strings = st.sampled_from(["10.0", "9.0", "beta", "Beta", "a", "network"])

RESOURCES = {
    "policy": dict(
        make=make_policy, model="policies.PolicyRule", key="policy_rule_uri",
        fields=["metadata", "policy_parameters", "release_tag", "description", "created_by"],
        documents=st.fixed_dictionaries({
            "release_tag": tag_strings, "description": strings, "created_by": creators,
            "metadata": metadata_docs, "policy_parameters": st.dictionaries(st.sampled_from(KEYS), values(1),
                                                                            max_size=2),
        }),
        paths=["metadata", "metadata.a", "metadata.b", "metadata.c", "metadata.a.b", "metadata.c.a", "metadata.c.b",
               "metadata.c.c.a", "metadata.tags", "metadata.items", "metadata.items.a", "metadata.items.b",
               "metadata.items.0", "metadata.items.1.a", "metadata.tags.0", "metadata.a.0", "metadata.items.c.a",
               "policy_parameters.a", "policy_parameters.b.a", "release_tag", "description", "created_by"],
    ),
    "function": dict(
        make=make_function, model="functions.Function", key="function_id",
        fields=["function_tags", "function_metadata", "replicas", "created_by"],
        documents=st.fixed_dictionaries({
            "function_tags": st.lists(st.sampled_from(["network", "net", "a", "b", "10.0", "9.0"]), max_size=3),
            "function_metadata": metadata_docs, "replicas": st.sampled_from([2, 3, 7, 10]), "created_by": creators,
        }),
        paths=["function_tags", "function_tags.0", "function_tags.1", "function_metadata.a", "function_metadata.items",
               "function_metadata.items.b", "function_metadata.c.a", "function_metadata.tags", "replicas",
               "created_by"],
    ),
    "executor": dict(
        make=make_executor, model="executors.PolicyExecutor", key="executor_id",
        fields=["executor_hardware_info", "latency_ms", "executor_status", "created_by"],
        documents=st.fixed_dictionaries({
            "executor_hardware_info": metadata_docs, "latency_ms": st.sampled_from([None, 2.5, 3.0, 10.0]),
            "executor_status": st.sampled_from(["healthy", "unknown", "degraded"]), "created_by": creators,
        }),
        paths=["executor_hardware_info", "executor_hardware_info.a", "executor_hardware_info.c.b",
               "executor_hardware_info.items.a", "executor_hardware_info.items", "executor_hardware_info.tags",
               "executor_hardware_info.b", "latency_ms", "executor_status"],
    ),
}


@pytest.fixture
def creator_users(django_user_model):
    return {None: None, **{name: django_user_model.objects.create_user(name) for name in ("alice", "bob")}}


def mongomock_matches(documents: dict, flt: dict) -> set:
    collection = mongomock.MongoClient().db.records
    collection.insert_many([{**document, "_id": key} for key, document in documents.items()])
    return {found["_id"] for found in collection.find(flt)}


def check(resource, records_docs, filter_list, creator_users, through):
    from django.apps import apps

    spec = RESOURCES[resource]
    model = apps.get_model(spec["model"])
    with transaction.atomic():
        records = [spec["make"](i, doc, creator_users) for i, doc in enumerate(records_docs)]
        represented = through.representations(resource, model, spec["key"], records)
        for flt in filter_list:
            if any(mongomock_misreads(flt, document) for document in represented.values()):
                event("filter skipped: mongomock misreads it")
                continue
            note(f"filter: {flt!r}")
            expected = mongomock_matches(represented, flt)
            # Shown by --hypothesis-show-statistics: how discriminating the generated filters are.
            event("matches none" if not expected else "matches all" if len(expected) == len(represented)
                  else "matches some")
            assert through.matches(resource, model, spec["key"], flt) == expected, flt
        transaction.set_rollback(True)


# Generated filters embed whole documents; the limits are tested in test_query_compiler.py.
NO_LIMITS = {"max_depth": 64, "max_nodes": 100_000}


class Compiler:
    """Straight through ``filter_by_document`` over the records' search documents."""

    @staticmethod
    def representations(resource, model, key, records):
        return {getattr(r, key): search_document(r) for r in records}

    @staticmethod
    def matches(resource, model, key, flt):
        found, count = filter_and_count(model.objects.all(), flt, **NO_LIMITS)
        keys = set(found.values_list(key, flat=True))
        assert count() == len(keys), f"count {count()} for {len(keys)} matches of {flt}"  # index-only or not
        return keys


class Api:
    """Through ``POST /<resource>/query`` and ``GET /<resource>`` of the API."""

    PATHS = {"policy": "/policy", "function": "/function", "executor": "/executor"}

    def __init__(self, client):
        self.client = client

    def representations(self, resource, model, key, records):
        response = self.client.get(f"{self.PATHS[resource]}?page_size=100")
        assert response.status_code == 200, response.content
        return {item[key]: item for item in response.json()["data"]}

    def matches(self, resource, model, key, flt):
        with override_settings(QUERY_MAX_DEPTH=NO_LIMITS["max_depth"], QUERY_MAX_NODES=NO_LIMITS["max_nodes"]):
            response = self.client.post(f"{self.PATHS[resource]}/query?page_size=100", flt, format="json")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["pagination"]["count"] == len(body["data"]), (flt, body["pagination"])
        return {item[key] for item in body["data"]}


def scenario(data, resource):
    spec = RESOURCES[resource]
    documents = data.draw(st.lists(spec["documents"], min_size=2, max_size=8), label="documents")
    found = observed(documents)
    # Paths from the documents (so they exist) and from a fixed list (so they may not, or be of another type).
    paths = sorted({p for p in found if p.split(".")[0] in spec["fields"]} | set(spec["paths"]))
    filter_list = data.draw(st.lists(filters(paths, Pools(found), 2), min_size=1, max_size=4), label="filters")
    return documents, filter_list


# QUERY_DIFFERENTIAL_EXAMPLES=2000 searches harder (minutes); the default keeps a run under a minute.
EXAMPLES = int(os.environ.get("QUERY_DIFFERENTIAL_EXAMPLES", "150"))
COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
              database=None)


@pytest.mark.parametrize("resource", sorted(RESOURCES))
@settings(max_examples=EXAMPLES, **COMMON)
@given(data=st.data())
def test_compiled_filters_match_what_mongomock_matches(resource, creator_users, data):
    documents, filter_list = scenario(data, resource)
    check(resource, documents, filter_list, creator_users, Compiler)


@pytest.mark.parametrize("resource", sorted(RESOURCES))
@settings(max_examples=max(EXAMPLES // 6, 10), **COMMON)
@given(data=st.data())
def test_api_query_matches_what_mongomock_matches_over_get(resource, creator_users, api, data):
    documents, filter_list = scenario(data, resource)
    check(resource, documents, filter_list, creator_users, Api(api))
