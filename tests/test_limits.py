"""Bounded cost on every transport (SPEC §12): linear validation, query cost, rate limits in cost
points on HTTP and websockets alike, a limiter that does not wait on a hung Redis, trusted proxies,
and the websocket rules (message size, sockets per credential, malformed frames).

The served processes here allow 4 points a minute: a bucket of 4 points that gains one every 15
seconds. A test that must see a refusal sends up to twice that and one more, so a point that comes
back while it runs cannot make it pass or fail by chance.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import parse

import server
from schema import schema
from schema.documents import documents
from schema.limits import MAX_EXPANDED_FIELDS, analyse
from tests.client import LEGACY_WS, TRANSPORT_WS, GraphQLClient
from tests.factories import PASSWORD, sign_up
from tests.servers import PrivateRedis, serve

BOTH = pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
LOG_IN = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }"
VIEWER = "{ viewer { id } }"
LIMIT = 4


def fragment_bomb(fragments: int) -> str:
    """Each fragment spreads the previous one twice: 2^n fields once expanded."""
    parts = ["fragment F0 on Query { viewer { id } }"]
    parts += [f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, fragments)]
    return f"query {{ ...F{fragments - 1} }} " + " ".join(parts)


ADVOCATES_30 = (
    "{ "
    + " ".join(
        f"a{i}: advocates(first: 100) {{ edges {{ node {{ id "
        "reviews { edges { node { text } } } } } }"
        for i in range(30)
    )
    + " }"
)


def cost_of(query: str, variables: dict[str, Any] | None = None) -> int:
    shape = analyse(schema._schema, parse(query), None, variables)
    assert shape is not None
    return shape.cost


# --- validation and cost, on the session's server -------------------------------------------


@pytest.mark.parametrize("fragments", [20, 25, 190])
async def test_a_fragment_bomb_is_refused_as_too_complex(gql: GraphQLClient, fragments: int) -> None:
    body = await gql(fragment_bomb(fragments))
    assert body.get("data") is None
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert str(MAX_EXPANDED_FIELDS) in body["errors"][0]["message"]


async def test_fragments_used_within_the_limit_still_work(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    data = await gql.data(fragment_bomb(6), token=family.token)
    assert data["viewer"]["id"] == family.user_id


async def test_thirty_aliases_of_the_directory_are_refused_as_too_costly(gql: GraphQLClient) -> None:
    body = await gql(ADVOCATES_30)
    error = body["errors"][0]
    assert body.get("data") is None
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    # Per alias: the connection, 100 edges, 100 advocates, each with 20 review edges and reviews.
    assert error["extensions"]["cost"] == 30 * (1 + 100 * (1 + 1 + 1 + 20 * 2))
    assert error["extensions"]["limit"] == 10_000
    assert body["extensions"]["cost"] == {"requested": error["extensions"]["cost"], "limit": 10_000}


async def test_every_answer_carries_its_cost(gql: GraphQLClient) -> None:
    ok = await gql(VIEWER)
    assert ok["extensions"]["cost"] == {"requested": 1, "limit": 10_000}
    refused = await gql("{ nope }")
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert refused["extensions"]["cost"]["limit"] == 10_000
    unparsable = await gql("{ viewer {")
    assert unparsable["extensions"]["cost"] == {"requested": 0, "limit": 10_000}


def test_cost_counts_the_objects_a_query_could_return() -> None:
    assert cost_of("{ viewer { id displayName } }") == 1
    one_page = "query($n: Int) { advocates(first: $n) { pageInfo { hasNextPage } edges { node { id } } } }"
    # The connection, its page info, and n edges of one advocate each.
    assert cost_of(one_page, {"n": 10}) == 1 + 1 + 10 * 2
    # No `first`: the argument's default (20); a variable left out: the same default.
    assert cost_of("{ advocates { edges { node { id } } } }") == 1 + 20 * 2
    assert cost_of(one_page, {}) == 1 + 1 + 20 * 2
    # More than the page cap counts as the cap (the resolver refuses it anyway).
    assert cost_of(one_page, {"n": 10_000}) == 1 + 1 + 100 * 2
    # Fragments cost what they expand to; introspection costs nothing.
    spread = "query { ...A ...A } fragment A on Query { advocates(first: 5) { edges { node { id } } } }"
    assert cost_of(spread) == 2 * (1 + 5 * 2)
    assert cost_of("{ __schema { types { name fields { name } } } }") == 0
    # A list the product bounds costs its bound: a ticket has one SLA clock of each kind.
    clocks = "{ ticketQueue(first: 3) { edges { node { id slaClocks { kind dueAt } } } } }"
    assert cost_of(clocks) == 1 + 3 * (1 + 1 + 2)


async def test_depth_and_alias_limits_keep_their_code(gql: GraphQLClient) -> None:
    deep = "{ viewer { " + "family { " * 14 + "id" + " }" * 14 + " } }"
    body = await gql(deep)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "depth" in body["errors"][0]["message"]
    # Aliases hidden in a fragment spread twice count twice.
    aliases = " ".join(f"a{i}: viewer {{ id }}" for i in range(16))
    body = await gql(f"query {{ ...A ...A }} fragment A on Query {{ {aliases} }}")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "32 aliases" in body["errors"][0]["message"]


async def test_introspection_for_tools_is_allowed(gql: GraphQLClient) -> None:
    from graphql import get_introspection_query

    data = await gql.data(get_introspection_query())
    assert data["__schema"]["queryType"]["name"] == "Query"


# --- websockets, on the session's server ----------------------------------------------------


@BOTH
@pytest.mark.parametrize("frame", ["[]", "42", '"hello"', "{not json", '{"type": 5}', '{"id": "1"}'])
async def test_a_malformed_frame_closes_the_socket_with_4400(
    gql: GraphQLClient, protocol: str, frame: str
) -> None:
    family = await sign_up(gql)
    async with gql.socket(family.token, protocol) as sock:
        await sock.ack()
        await sock.ws.send(frame)
        assert await sock.closed_code() == 4400


async def test_a_malformed_subscribe_closes_the_socket_with_4400(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    async with gql.socket(family.token) as sock:
        await sock.ack()
        await sock.send({"id": "1", "type": "subscribe", "payload": []})
        assert await sock.closed_code() == 4400


@BOTH
async def test_a_credential_holds_at_most_its_quota_of_sockets(gql: GraphQLClient, protocol: str) -> None:
    family = await sign_up(gql)
    other = await sign_up(gql)
    quota = gql.app.state.settings.max_sockets_per_credential
    sockets = [gql.socket(family.token, protocol) for _ in range(quota)]
    opened = [await s.__aenter__() for s in sockets]
    try:
        for sock in opened:
            await sock.ack()
        async with gql.socket(family.token, protocol) as extra:
            assert await extra.closed_code() == 4429
        async with gql.socket(other.token, protocol) as theirs:
            await theirs.ack()
    finally:
        for s in reversed(sockets):
            await s.__aexit__(None, None, None)
    # Closed sockets give their places back.
    async with gql.socket(family.token, protocol) as again:
        await again.ack()


# --- rate limits, on a served process with low limits ---------------------------------------


@pytest.fixture
async def low_limits(live_server: object, settings: server.Settings) -> AsyncIterator[GraphQLClient]:
    env = {
        "DATABASE_URL": settings.database_url,
        "BROADCAST_NAMESPACE": f"limits-{uuid.uuid4().hex[:8]}",
        "RATE_LIMIT_PER_MINUTE": str(LIMIT),
        "ANONYMOUS_RATE_LIMIT_PER_MINUTE": str(LIMIT),
    }
    async with serve(env) as served:
        yield served.client


async def _until_refused(http: httpx.AsyncClient, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
    for _ in range(2 * LIMIT + 1):
        response = await http.post("/graphql", json=body, **kwargs)
        if response.status_code == 429:
            return response
        assert response.status_code == 200, response.text
    raise AssertionError("never refused")


async def test_http_answers_carry_the_budget_and_429_past_it(
    gql: GraphQLClient, low_limits: GraphQLClient
) -> None:
    family = await sign_up(gql)
    auth = {"Authorization": f"Bearer {family.token}"}
    first = await low_limits.http.post(
        "/graphql", json={"query": "{ rateLimit { limit cost remaining resetAt } }"}, headers=auth
    )
    assert first.status_code == 200
    rate = first.json()["data"]["rateLimit"]
    assert rate["limit"] == LIMIT
    assert rate["cost"] == 1
    assert first.headers["RateLimit-Limit"] == str(LIMIT)
    assert int(first.headers["RateLimit-Remaining"]) == rate["remaining"] < LIMIT
    assert 0 < int(first.headers["RateLimit-Reset"]) <= 60
    refused = await _until_refused(low_limits.http, {"query": VIEWER}, headers=auth)
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"


async def test_one_costly_query_draws_one_point_per_hundred_objects(
    gql: GraphQLClient, low_limits: GraphQLClient
) -> None:
    family = await sign_up(gql)
    costly = "{ advocates(first: 100) { edges { node { id } } } rateLimit { cost } }"
    response = await low_limits.http.post(
        "/graphql", json={"query": costly}, headers={"Authorization": f"Bearer {family.token}"}
    )
    # 202 objects (the connection, 100 edges, 100 advocates, the rate limit): 3 points of 4.
    assert response.status_code == 200
    assert response.json()["data"]["rateLimit"]["cost"] == 3
    assert response.json()["extensions"]["cost"]["requested"] == 202
    # The next one does not fit in what is left: refused, and told when it would.
    again = await low_limits.http.post(
        "/graphql", json={"query": costly}, headers={"Authorization": f"Bearer {family.token}"}
    )
    assert again.status_code == 429
    refusal = again.json()["errors"][0]["extensions"]
    assert refusal["code"] == "RATE_LIMITED"
    assert refusal["cost"] == 3
    assert refusal["remaining"] <= 1
    assert 0 < int(again.headers["Retry-After"]) <= 60


NOTIFICATIONS = "subscription { notificationReceived { cursor } }"


@BOTH
async def test_a_socket_draws_on_the_same_budget_as_http_and_stays_open(
    gql: GraphQLClient, low_limits: GraphQLClient, protocol: str
) -> None:
    family = await sign_up(gql)
    auth = {"Authorization": f"Bearer {family.token}"}
    async with low_limits.socket(family.token, protocol) as sock:
        await sock.ack()
        await _until_refused(low_limits.http, {"query": VIEWER}, headers=auth)
        # The budget HTTP spent is the socket's too: the operation is refused with a coded error.
        op = await sock.subscribe(NOTIFICATIONS)
        result = await sock.next_event(op)
        errors = result["errors"]
        error = errors[0] if isinstance(errors, list) else errors
        assert error["extensions"]["code"] == "RATE_LIMITED"
        # The socket is still open: it takes another operation (refused the same way).
        op = await sock.subscribe(NOTIFICATIONS)
        assert (await sock.next_event(op))["errors"]


async def test_log_in_attempts_over_a_socket_are_limited(
    gql: GraphQLClient, low_limits: GraphQLClient
) -> None:
    family = await sign_up(gql)
    async with low_limits.socket(family.token) as sock:
        await sock.ack()
        codes: list[str] = []
        for _ in range(2 * LIMIT + 1):
            op = await sock.subscribe(LOG_IN, {"e": family.email, "p": PASSWORD})
            result = await sock.next_event(op)
            if result.get("errors"):
                codes.append(result["errors"][0]["extensions"]["code"])
                break
            assert result["data"]["logIn"]["token"]
            await _complete(sock, op)
        assert codes == ["RATE_LIMITED"]
        await sock.send({"type": "ping"})
        assert json.loads(await sock.ws.recv())["type"] == "pong"


async def _complete(sock: Any, op: str) -> None:
    """Wait for the operation's `complete`."""
    while True:
        message = await sock.receive()
        if message.get("id") == op and message["type"] == "complete":
            return


async def test_the_limiter_does_not_wait_on_a_paused_redis(
    gql: GraphQLClient, live_server: object, settings: server.Settings
) -> None:
    redis = PrivateRedis()
    await redis.start()
    try:
        env = {
            "DATABASE_URL": settings.database_url,
            "BROADCAST_URL": redis.url,
            "BROADCAST_NAMESPACE": f"limits-{uuid.uuid4().hex[:8]}",
            "RATE_LIMIT_PER_MINUTE": str(LIMIT),
            "ANONYMOUS_RATE_LIMIT_PER_MINUTE": str(LIMIT),
        }
        family = await sign_up(gql)
        auth = {"Authorization": f"Bearer {family.token}"}
        async with serve(env) as served:
            assert redis.proc is not None
            os.kill(redis.proc.pid, signal.SIGSTOP)
            try:
                # Answered, and still limited: by this process while Redis does not answer.
                refused = await _until_refused(served.client.http, {"query": VIEWER}, headers=auth)
                assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
            finally:
                os.kill(redis.proc.pid, signal.SIGCONT)
    finally:
        redis.stop()


# --- client addresses -----------------------------------------------------------------------


@pytest.mark.parametrize("trusted", [False, True])
async def test_x_forwarded_for_is_believed_only_from_listed_proxies(
    live_server: object, settings: server.Settings, trusted: bool
) -> None:
    env = {
        "DATABASE_URL": settings.database_url,
        "BROADCAST_NAMESPACE": f"limits-{uuid.uuid4().hex[:8]}",
        "ANONYMOUS_RATE_LIMIT_PER_MINUTE": str(LIMIT),
        "FORWARDED_ALLOW_IPS": "127.0.0.1" if trusted else "",
    }
    async with serve(env) as served:
        http = served.client.http
        if trusted:
            # Each forwarded address has a budget of its own.
            for n in range(2 * LIMIT + 1):
                answer = await http.post(
                    "/graphql", json={"query": VIEWER}, headers={"X-Forwarded-For": f"203.0.113.{n + 1}"}
                )
                assert answer.status_code == 200
                assert answer.headers["RateLimit-Remaining"] == str(LIMIT - 1)
        else:
            # A client choosing a new address each time still shares its own budget.
            for n in range(2 * LIMIT + 1):
                answer = await http.post(
                    "/graphql", json={"query": VIEWER}, headers={"X-Forwarded-For": f"203.0.113.{n + 1}"}
                )
                if answer.status_code == 429:
                    break
            assert answer.status_code == 429


# --- websocket message size, on a served process --------------------------------------------


async def test_a_websocket_message_over_the_body_limit_closes_with_1009(
    gql: GraphQLClient, live_server: object, settings: server.Settings
) -> None:
    family = await sign_up(gql)
    env = {
        "DATABASE_URL": settings.database_url,
        "BROADCAST_NAMESPACE": f"limits-{uuid.uuid4().hex[:8]}",
        "MAX_BODY_BYTES": str(64 * 1024),
    }
    async with serve(env) as served, served.client.socket(family.token) as sock:
        await sock.ack()
        big = "mutation { logOut { userErrors { code } } }" + " " * (128 * 1024)
        await sock.send({"id": "1", "type": "subscribe", "payload": {"query": big}})
        assert await sock.closed_code() == 1009


async def test_a_document_draws_one_point_per_hundred_tokens(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    # About 1,000 tokens asking for a single object: parsing is the work, and it is paid for.
    padded = "{ rateLimit { cost } " + "...A " * 485 + "} fragment A on Query { viewer { id } }"
    data = await gql.data(padded, token=family.token)
    assert data["rateLimit"]["cost"] == 10
    small = await gql.data("{ rateLimit { cost } }", token=family.token)
    assert small["rateLimit"]["cost"] == 1


async def test_past_its_budget_a_caller_is_refused_before_its_request_is_read(
    gql: GraphQLClient, low_limits: GraphQLClient
) -> None:
    family = await sign_up(gql)
    auth = {"Authorization": f"Bearer {family.token}"}
    await _until_refused(low_limits.http, {"query": VIEWER}, headers=auth)
    # Not even JSON: the view would answer 400; the limit answers first.
    garbage = await low_limits.http.post(
        "/graphql", content=b"{not json", headers={**auth, "content-type": "application/json"}
    )
    assert garbage.status_code == 429
    assert garbage.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert int(garbage.headers["Retry-After"]) > 0
    # Anonymous callers are known by their address.
    await _until_refused(low_limits.http, {"query": VIEWER})
    anonymous = await low_limits.http.post(
        "/graphql", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert anonymous.status_code == 429


async def test_a_cached_document_keeps_nothing_of_its_variables_values(gql: GraphQLClient) -> None:
    """The price of a cached document is kept by what it depends on (the integers its variables
    carry): a client's long strings are not kept with the document, however many it sends."""
    text = "query($x: String!, $n: Int) { __type(name: $x) { name } advocates(first: $n) { totalCount } }"
    for n in range(20):
        data = await gql.data(text, {"x": f"Query{n}" + " " * 100_000, "n": 5})
        assert data["__type"] is None
    entry = documents.peek(text)
    assert entry is not None
    assert len(repr(entry.facts)) < 10_000
