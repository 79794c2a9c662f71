"""GraphQL over HTTP: the graphql-http audit (npm, tests/js) with no warning, and the media types.

A client that accepts `application/graphql-response+json` gets it, with 400 and no `data` for a
request that could not run (it did not parse or validate, a variable did not coerce); a client
that asks for `application/json` (Apollo Client, older clients) gets that, 200, as before. A
request error has no `data` entry in either (the GraphQL spec's "Response" section).
"""

from __future__ import annotations

import json

import pytest

from tests import node
from tests.client import GraphQLClient
from tests.conftest import Live

GRAPHQL_RESPONSE = "application/graphql-response+json"


async def test_the_graphql_http_audit_passes_with_no_warning(live_server: Live) -> None:
    ran = await node.run("audit.mjs", f"{live_server.url}/graphql", needs="graphql-http", timeout=60)
    assert ran.returncode == 0, ran.stderr
    results = json.loads(ran.stdout)
    assert len(results) >= 50, results  # the audit ran, all of it
    not_ok = [f"{r['status']}: {r['name']} ({r['reason']})" for r in results if r["status"] != "ok"]
    assert not_ok == []


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        ("{ viewer { id ", None),  # does not parse
        ("{ nosuchfield }", None),  # does not validate
        ("query($n: Int) { supportRequests(first: $n) { edges { cursor } } }", {"n": "ten"}),  # coercion
        ("query A { __typename } query B { __typename }", None),  # which operation, not said
    ],
)
async def test_a_request_error_is_a_400_without_data_for_graphql_response_json(
    gql: GraphQLClient, document: str, variables: object
) -> None:
    body = {"query": document, "variables": variables}
    modern = await gql.http.post(
        "/graphql", json=body, headers={"Accept": f"{GRAPHQL_RESPONSE}, application/json"}
    )
    assert modern.status_code == 400
    assert modern.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert "data" not in modern.json()
    assert modern.json()["errors"]
    legacy = await gql.http.post("/graphql", json=body, headers={"Accept": "application/json"})
    assert legacy.status_code == 200
    assert legacy.headers["content-type"].startswith("application/json")
    assert "data" not in legacy.json()
    assert legacy.json()["errors"]


async def test_an_operation_that_ran_is_a_200_with_data_in_either_media_type(gql: GraphQLClient) -> None:
    for accept in (GRAPHQL_RESPONSE, "application/json", "*/*"):
        answer = await gql.http.post("/graphql", json={"query": "{ __typename }"}, headers={"Accept": accept})
        assert answer.status_code == 200
        assert answer.json()["data"] == {"__typename": "Query"}
        expected = GRAPHQL_RESPONSE if accept == GRAPHQL_RESPONSE else "application/json"
        assert answer.headers["content-type"].startswith(expected)
