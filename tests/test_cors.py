"""A single-page app on another origin: CORS preflights and answers, and the websocket `Origin`.

Allowed origins come from `CORS_ALLOWED_ORIGINS` (the suite allows `https://app.example.test`);
pages on the API's own origin (GraphiQL) and clients that are not browsers need no entry.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

import server
from tests.client import TRANSPORT_WS, GraphQLClient
from tests.factories import sign_up
from tests.servers import serve

APP = "https://app.example.test"
ELSEWHERE = "https://evil.example.test"
VIEWER = "{ viewer { id } }"


async def test_a_preflight_from_an_allowed_origin_is_answered_before_any_limit(gql: GraphQLClient) -> None:
    answer = await gql.http.options(
        "/graphql",
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == APP
    assert {"authorization", "content-type"} <= {
        h.strip().lower() for h in answer.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert "POST" in answer.headers["Access-Control-Allow-Methods"]
    assert "RateLimit-Remaining" not in answer.headers  # not counted as an operation


async def test_an_allowed_origin_reads_the_answer_and_its_limit_headers(gql: GraphQLClient) -> None:
    account = await sign_up(gql)
    answer = await gql.http.post(
        "/graphql",
        json={"query": VIEWER},
        headers={"Origin": APP, "Authorization": f"Bearer {account.token}"},
    )
    assert answer.status_code == 200
    assert answer.json()["data"]["viewer"]["id"] == account.user_id
    assert answer.headers["Access-Control-Allow-Origin"] == APP
    exposed = {h.strip().lower() for h in answer.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= exposed


async def test_another_origin_gets_no_cors_headers(gql: GraphQLClient) -> None:
    preflight = await gql.http.options(
        "/graphql", headers={"Origin": ELSEWHERE, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 400
    assert "Access-Control-Allow-Origin" not in preflight.headers
    answer = await gql.http.post("/graphql", json={"query": "{ __typename }"}, headers={"Origin": ELSEWHERE})
    # The browser withholds the answer from the page; the server answered as to anyone.
    assert answer.status_code == 200
    assert "Access-Control-Allow-Origin" not in answer.headers


@pytest.mark.parametrize("origin", [APP, None, "same"])
async def test_sockets_from_allowed_pages_and_non_browsers_are_accepted(
    gql: GraphQLClient, origin: str | None
) -> None:
    account = await sign_up(gql)
    headers = {}
    if origin is not None:
        headers["Origin"] = (
            gql.http.base_url.scheme + "://" + gql.http.base_url.netloc.decode()
            if origin == "same"
            else origin
        )
    async with connect(gql.ws_url, subprotocols=[TRANSPORT_WS], additional_headers=headers) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {account.token}"}})
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"


async def test_a_socket_from_a_page_on_another_origin_is_refused(gql: GraphQLClient) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(gql.ws_url, subprotocols=[TRANSPORT_WS], additional_headers={"Origin": ELSEWHERE}):  # type: ignore[list-item]
            pass
    assert refused.value.response.status_code == 403


async def test_a_429_tells_an_allowed_page_when_to_retry(
    live_server: object, settings: server.Settings
) -> None:
    env = {
        "DATABASE_URL": settings.database_url,
        "BROADCAST_NAMESPACE": f"cors-{uuid.uuid4().hex[:8]}",
        "ANONYMOUS_RATE_LIMIT_PER_MINUTE": "2",
        "CORS_ALLOWED_ORIGINS": APP,
    }
    async with serve(env) as served:
        answer: httpx.Response | None = None
        for _ in range(10):
            answer = await served.client.http.post(
                "/graphql", json={"query": VIEWER}, headers={"Origin": APP}
            )
            if answer.status_code == 429:
                break
        assert answer is not None
        assert answer.status_code == 429
        assert answer.headers["Access-Control-Allow-Origin"] == APP
        assert int(answer.headers["Retry-After"]) >= 1
