"""What the earlier system's clients rely on (issue 14 items 8 and 10): ``/query`` answers every match unless
asked for a page, and sorts by dotted paths as MongoDB does, on SQLite and PostgreSQL alike."""
import json

import pytest

from tests.api.resources import _policy, assert_error

pytestmark = pytest.mark.django_db


def keys(response):
    return [record["name"] for record in response.json()["data"]]


def streamed_json(response):
    if response.streaming:
        return json.loads(b"".join(response.streaming_content))
    return response.json()


def test_query_without_paging_answers_every_match_not_the_first_page(api, ctx):
    for n in range(60):  # more than the default page of 50
        _policy(n, ctx)
    body = api.post("/policy/query", {"release_tag": "beta"}, format="json").json()
    assert len(body["data"]) == 60
    assert body["pagination"] == {"count": 60, "next": None, "previous": None}


def test_query_asked_for_a_page_is_paginated(api, ctx):
    for n in range(60):
        _policy(n, ctx)
    body = api.post("/policy/query?page_size=20&page=2", {}, format="json").json()
    assert len(body["data"]) == 20 and body["pagination"]["count"] == 60 and body["pagination"]["next"]
    assert len(api.post("/policy/query?page=1", {}, format="json").json()["data"]) == 50


def test_a_long_answer_is_streamed_whole(api, ctx, settings):
    settings.API_MAX_PAGE_SIZE = 7
    for n in range(20):
        _policy(n, ctx)
    response = api.post("/policy/query?sort=name", {}, format="json")
    assert response.status_code == 200 and response.streaming
    body = streamed_json(response)
    assert body["success"] is True and body["pagination"]["count"] == 20
    assert [r["name"] for r in body["data"]] == sorted(f"pol{n}" for n in range(20))
    assert body["data"][0] == api.get("/policy/pol0:1.0-beta").json()["data"]


def test_more_matches_than_the_cap_answer_400_saying_to_page(api, ctx, settings):
    settings.QUERY_MAX_RESULTS = 5
    for n in range(6):
        _policy(n, ctx)
    body = assert_error(api.post("/policy/query", {}, format="json"), 400)
    assert "6 records match, more than the 5" in body["message"] and "?page=" in body["message"]
    assert len(api.post("/policy/query?page=1", {}, format="json").json()["data"]) == 6
    assert len(api.post("/policy/query?limit=6", {}, format="json").json()["data"]) == 6


def _ranked(ctx, ranks):
    from policies.models import PolicyRule

    for n, rank in enumerate(ranks):
        record = _policy(n, ctx)
        metadata = dict(record.metadata)
        if rank is not ...:
            metadata["rank"] = rank
        PolicyRule.objects.filter(pk=record.pk).update(metadata=metadata)
        PolicyRule.objects.get(pk=record.pk).save()  # re-index the changed metadata


def test_sort_by_a_dotted_path_orders_numbers_by_value(api, ctx):
    _ranked(ctx, [10, 9, 100, 2.5])
    assert keys(api.post("/policy/query?sort=metadata.rank", {}, format="json")) == ["pol3", "pol1", "pol0", "pol2"]
    assert keys(api.post("/policy/query?sort=-metadata.rank", {}, format="json")) == ["pol2", "pol0", "pol1", "pol3"]


def test_sort_by_a_dotted_path_follows_mongodb_across_types_and_missing_values(api, ctx):
    # MongoDB's order: missing and null, numbers, strings (by code point), objects, arrays, booleans.
    _ranked(ctx, ["b", 3, ..., "B", True, None, {"x": 1}])
    ascending = keys(api.post("/policy/query?sort=metadata.rank,name", {}, format="json"))
    assert ascending == ["pol2", "pol5", "pol1", "pol3", "pol0", "pol6", "pol4"]
    descending = keys(api.post("/policy/query?sort=-metadata.rank,name", {}, format="json"))
    assert descending == ["pol4", "pol6", "pol0", "pol3", "pol1", "pol2", "pol5"]


def test_an_array_sorts_by_its_smallest_element_ascending_and_largest_descending(api, ctx):
    _ranked(ctx, [[5, 1], [3], [2, 9]])
    assert keys(api.post("/policy/query?sort=metadata.rank", {}, format="json")) == ["pol0", "pol2", "pol1"]
    assert keys(api.post("/policy/query?sort=-metadata.rank", {}, format="json")) == ["pol2", "pol0", "pol1"]


def test_sort_by_a_path_with_skip_and_limit_and_a_filter(api, ctx):
    _ranked(ctx, [4, 3, 2, 1])
    found = api.post("/policy/query?sort=-metadata.rank&skip=1&limit=2", {"metadata.team": "ops"}, format="json")
    assert keys(found) == ["pol2"]
    found = api.post("/policy/query?sort=metadata.rank&skip=1&limit=2", {}, format="json")
    assert keys(found) == ["pol2", "pol1"]


@pytest.mark.parametrize("sort", ["nope.rank", "description.x", "metadata..x", "metadata.$x", "nope"])
def test_sort_by_a_path_the_query_language_cannot_reach_is_400_naming_it(api, ctx, sort):
    _policy(0, ctx)
    body = assert_error(api.post(f"/policy/query?sort={sort}", {}, format="json"), 400)
    assert sort in body["message"] and "sort" in body["errors"]
