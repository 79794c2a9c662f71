"""The document cache (`schema/documents.py`): a text seen before is not parsed or validated again,
and nothing that is decided per request (cost, variables, text hygiene) is taken from the cache."""

from __future__ import annotations

import pytest

from schema.documents import DocumentLRU, documents
from tests.client import GraphQLClient
from tests.factories import sign_up

# Three pages of the directory: cheap with a few advocates each, over the cost limit with 100.
PAGES = (
    "query($n: Int) { "
    + " ".join(
        f"p{i}: advocates(first: $n) "
        "{ edges { node { id reviews { edges { node { text } } } } } }"
        for i in range(3)
    )
    + " }"
)


async def test_a_document_sent_twice_is_parsed_once_and_answers_the_same(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    query = "{ viewer { id displayName } }  # cache-test-1"
    first = await gql(query, token=family.token)
    entry = documents.get(query)
    assert entry is not None
    assert entry.errors == []
    second = await gql(query, token=family.token)
    assert second == first
    assert second["data"]["viewer"]["id"] == family.user_id
    # The same entry, not a new parse.
    assert documents.get(query) is entry


async def test_an_invalid_document_is_refused_the_same_way_every_time(gql: GraphQLClient) -> None:
    query = "{ nope }  # cache-test-2"
    first = await gql(query)
    second = await gql(query)
    assert first["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert [e["message"] for e in second["errors"]] == [e["message"] for e in first["errors"]]
    entry = documents.get(query)
    assert entry is not None
    assert entry.errors is not None
    assert len(entry.errors) == 1


async def test_a_cached_document_is_priced_again_with_each_requests_variables(gql: GraphQLClient) -> None:
    cheap = await gql(PAGES, {"n": 1})
    assert not cheap.get("errors"), cheap
    costly = await gql(PAGES, {"n": 100})
    assert costly.get("data") is None
    assert costly["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    again = await gql(PAGES, {"n": 1})
    assert not again.get("errors"), again


async def test_a_cached_document_still_has_its_variables_checked(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    query = "query($name: String!) { advocates(first: 1, filter: {area: $name}) { edges { node { id } } } }"
    ok = await gql(query, {"name": "Ada"}, token=family.token)
    assert not ok.get("errors"), ok
    refused = await gql(query, {"name": "A\x00da"}, token=family.token)
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "NUL" in refused["errors"][0]["message"]


def test_the_cache_is_bounded_in_entries_and_in_characters() -> None:
    from graphql import parse

    document = parse("{ __typename }")
    lru = DocumentLRU(max_entries=3, max_chars=100, max_total_chars=250)
    for i in range(5):
        lru.put(f"{i:03d}" + " " * 50, document)
    # Only the three most recent are kept.
    assert len(lru) == 3
    assert lru.get("000" + " " * 50) is None
    assert lru.get("004" + " " * 50) is not None
    # A text over the per-document bound is never kept.
    assert lru.put("x" * 101, document) is None
    assert lru.get("x" * 101) is None
    # The total: three texts of 90 characters exceed 250, so the oldest goes.
    lru.clear()
    for i in range(3):
        lru.put(f"{i}" * 90, document)
    assert len(lru) == 2
    assert lru.get("0" * 90) is None


@pytest.mark.parametrize("reused", ["get", "put"])
def test_a_used_entry_is_the_last_to_be_evicted(reused: str) -> None:
    from graphql import parse

    document = parse("{ __typename }")
    lru = DocumentLRU(max_entries=2)
    lru.put("a", document)
    lru.put("b", document)
    if reused == "get":
        lru.get("a")
    else:
        lru.put("a", document)
    lru.put("c", document)
    assert lru.get("a") is not None
    assert lru.get("b") is None


async def test_a_document_with_unstorable_literals_is_refused_every_time(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    query = '{ advocates(first: 1, filter: {area: "Le\\u0000eds"}) { edges { node { id } } } }'
    for _ in range(3):
        body = await gql(query, token=family.token)
        assert body.get("data") is None
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "NUL" in body["errors"][0]["message"]
