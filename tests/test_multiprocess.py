"""Several server processes sharing events through Redis.

Cross-process delivery is tested on two `serve` processes of their own (two ports, one database,
one Redis), so each socket is placed on the process the test names; `serve --workers 2` (one port,
worker processes sharing it) is tested with enough sockets to reach both workers, and the test
asserts that they did.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from strawberry.relay import GlobalID
from tortoise.transactions import in_transaction

import server
from models.accounts import Role, Session, User
from models.families import Family
from resolvers import accounts, credentials, events
from resolvers.events import user_channel
from tests.client import DEADLINE, GraphQLClient, Socket, sse
from tests.factories import PASSWORD, Account, add_child, advocate, send_request, sign_up, user_cursor
from tests.servers import Served, require_redis, serve
from tests.test_live_requests import NEW_REQUESTS
from tests.test_support_requests import ACCEPT
from tests.test_vault import END, GRANT

VIEWER_ID = "{ viewer { id } }"
ACCESS_REVOKED = """
subscription($after: String) {
  accessRevoked(after: $after) { cursor reason vaultGrant { id status } family { id } }
}
"""


def _env(settings: server.Settings, redis_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.database_url,
        "BROADCAST_URL": redis_url,
        "BROADCAST_NAMESPACE": settings.broadcast_namespace,
    }


@pytest.fixture
async def two_processes(
    live_server: object, settings: server.Settings, redis_url: str
) -> AsyncIterator[tuple[GraphQLClient, GraphQLClient]]:
    """Two `python server.py serve` processes on the test run's database and one Redis."""
    await require_redis(redis_url)
    async with serve(_env(settings, redis_url)) as a, serve(_env(settings, redis_url)) as b:
        assert a.workers != b.workers
        yield a.client, b.client


@pytest.fixture
async def two_workers(
    live_server: object, settings: server.Settings, redis_url: str
) -> AsyncIterator[Served]:
    """`python server.py serve --workers 2`, started once both workers answer."""
    await require_redis(redis_url)
    async with serve(_env(settings, redis_url), workers=2) as served:
        assert len(served.workers) == 2
        yield served


async def _socket_on(stack: AsyncExitStack, gql: GraphQLClient, token: str) -> tuple[Socket, str]:
    """An acknowledged socket on `gql`'s process; returns it and the process that holds it."""
    sock = await stack.enter_async_context(gql.socket(token))
    ack = await sock.receive()
    assert ack["type"] == "connection_ack", ack
    return sock, str(ack["payload"]["server"])


async def test_a_new_request_reaches_the_advocate_on_every_process(
    two_processes: tuple[GraphQLClient, GraphQLClient],
) -> None:
    """Given the advocate's sockets on both processes, each request, sent through either process,
    reaches every socket once."""
    a, b = two_processes
    adv = await advocate(a)
    family = await sign_up(a)
    children = [await add_child(a, family, displayName=f"Child {i}") for i in range(4)]
    async with AsyncExitStack() as stack:
        placed = [await _socket_on(stack, gql, adv.token) for gql in (a, b, a, b)]
        assert len({process for _, process in placed}) == 2
        after = await user_cursor(adv)
        subscribed = [(sock, await sock.subscribe(NEW_REQUESTS, {"after": after})) for sock, _ in placed]
        for i, child in enumerate(children):
            sender = (a, b)[i % 2]
            sent = await send_request(sender, family, adv.advocate_id, child)
            request_id = sent["supportRequest"]["id"]
            for sock, op in subscribed:
                event = (await sock.next_event(op, timeout=DEADLINE))["data"]["newSupportRequest"]
                assert event["supportRequest"]["id"] == request_id


async def test_access_revoked_reaches_the_advocate_on_every_process(
    two_processes: tuple[GraphQLClient, GraphQLClient],
) -> None:
    a, b = two_processes
    adv = await advocate(a)
    family = await sign_up(a)
    child = await add_child(a, family)
    request_id = (await send_request(a, family, adv.advocate_id, child))["supportRequest"]["id"]
    accepted = await a.data(ACCEPT, {"input": {"requestId": request_id}}, adv.token)
    relationship = accepted["acceptSupportRequest"]["supportRequest"]["relationship"]["id"]
    grant = await a.data(
        GRANT,
        {"input": {"relationshipId": relationship, "scopes": ["EVIDENCE"], "childIds": [child]}},
        family.token,
    )
    grant_id = grant["grantVaultAccess"]["vaultGrant"]["id"]
    async with AsyncExitStack() as stack:
        placed = [await _socket_on(stack, gql, adv.token) for gql in (a, b)]
        assert len({process for _, process in placed}) == 2
        after = await user_cursor(adv)
        subscribed = [(sock, await sock.subscribe(ACCESS_REVOKED, {"after": after})) for sock, _ in placed]
        ended = await b.data(
            END,
            {
                "input": {
                    "relationshipId": relationship,
                    "reason": "RESOLVED",
                    "note": "Case resolved, EHCP finalised",
                }
            },
            family.token,
        )
        assert ended["endSupportRelationship"]["userErrors"] == []
        for sock, op in subscribed:
            event = (await sock.next_event(op, timeout=DEADLINE))["data"]["accessRevoked"]
            assert event["reason"] == "RELATIONSHIP_ENDED"
            assert event["vaultGrant"]["id"] == grant_id


NOTIFICATIONS = """
subscription($after: String) {
  notificationReceived(after: $after) { cursor notification { id kind } }
}
"""
MY_NOTIFICATIONS = "{ notifications(first: 100) { edges { node { id kind } } } }"
LOG_IN = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }"


async def _families(n: int) -> list[Account]:
    """n signed-in families, written straight to the database in one transaction with one shared
    password hash."""
    password_hash = await credentials.hash_password(PASSWORD)
    now = datetime.now(UTC)
    batch = uuid.uuid4().hex[:8]
    made = []
    async with in_transaction():
        for i in range(n):
            email = f"fanout-{batch}-{i}@example.test"
            user = await User.create(
                email=email,
                email_key=email,
                password_hash=password_hash,
                display_name=f"Family {i}",
                role=Role.FAMILY,
                created_at=now,
            )
            await Family.create(user=user, created_at=now)
            token = accounts.SESSION_PREFIX + secrets.token_urlsafe(32)
            expires = now + timedelta(days=1)
            await Session.create(
                user=user, token_hash=credentials.hash_token(token), created_at=now, expires_at=expires
            )
            made.append(Account(token, str(GlobalID("User", str(user.id))), email))
    return made


async def test_two_hundred_subscribers_over_two_workers_each_get_exactly_their_own_events(
    two_workers: Served,
) -> None:
    """200 families each hold a socket on `notificationReceived`, spread over both worker processes
    of one `serve --workers 2`; a subset of them sign in (once or twice) and each socket receives
    exactly its own notifications."""
    gql = two_workers.client
    gate = asyncio.Semaphore(8)

    async def limited(coro: Any) -> Any:
        async with gate:
            return await coro

    families = await _families(200)
    async with AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(gql.socket(f.token)) for f in families]
        servers = set()
        ops = []
        for family, sock in zip(families, sockets, strict=True):
            ack = await sock.receive()
            assert ack["type"] == "connection_ack"
            servers.add(ack["payload"]["server"])
            # From the start of the family's feed: no race with the sign-ins below.
            start = events.encode_cursor(user_channel(int(GlobalID.from_id(family.user_id).node_id)), 0)
            ops.append(await sock.subscribe(NOTIFICATIONS, {"after": start}))
        # Both workers were serving before the first socket opened; 200 sockets reached both.
        assert servers == two_workers.workers
        # `serve` declines per-message compression (~300 KiB per socket), which the client offered.
        assert sockets[0].ws.response is not None
        assert "Sec-WebSocket-Extensions" not in sockets[0].ws.response.headers
        # Every tenth family signs in, every twentieth twice (a sign-in costs an argon2 verification).
        signing_in = {i: (2 if i % 20 == 0 else 1) for i in range(0, 200, 10)}
        await asyncio.gather(
            *(
                limited(gql.data(LOG_IN, {"e": families[i].email, "p": PASSWORD}))
                for i, times in signing_in.items()
                for _ in range(times)
            )
        )

        async def received_by(i: int) -> list[str]:
            got = []
            for _ in range(signing_in.get(i, 0)):
                event = (await sockets[i].next_event(ops[i], timeout=DEADLINE))["data"][
                    "notificationReceived"
                ]
                got.append(event["notification"]["id"])
            return got

        received = await asyncio.gather(*(received_by(i) for i in range(200)))
        # Nothing more for anyone: every sign-in's event has been delivered above, and events on
        # one channel arrive in order, so anything extra would already be queued behind them.
        await asyncio.gather(*(sock.expect_silence(0.3) for sock in sockets))
    for i, count in enumerate(map(len, received)):
        assert count == signing_in.get(i, 0), i
    for i in signing_in:
        family = families[i]
        mine = (await gql.data(MY_NOTIFICATIONS, token=family.token))["notifications"]["edges"]
        assert sorted(received[i]) == sorted(
            e["node"]["id"] for e in mine if e["node"]["kind"] == "NEW_SIGN_IN"
        )
        assert len(received[i]) == signing_in.get(i, 0)


async def test_logging_out_or_revoking_a_token_closes_its_sockets_on_every_process(
    two_processes: tuple[GraphQLClient, GraphQLClient],
) -> None:
    a, b = two_processes
    family = await sign_up(a)
    create = (
        'mutation($s: [ApiScope!]!) { createApiToken(input: {name: "CRM", scopes: $s})'
        " { secret apiToken { id } } }"
    )
    made = (await a.data(create, {"s": ["NOTIFICATIONS_READ", "EVENTS_SUBSCRIBE"]}, family.token))[
        "createApiToken"
    ]
    async with AsyncExitStack() as stack:
        by_token = [await _socket_on(stack, gql, made["secret"]) for gql in (a, b)]
        by_session = [await _socket_on(stack, gql, family.token) for gql in (a, b)]
        assert len({process for _, process in by_token}) == 2
        assert len({process for _, process in by_session}) == 2
        after = await user_cursor(family)
        session_ops = [
            (sock, await sock.subscribe(NOTIFICATIONS, {"after": after})) for sock, _ in by_session
        ]
        revoke = "mutation($id: ID!) { revokeApiToken(input: {apiTokenId: $id}) { userErrors { code } } }"
        await a.data(revoke, {"id": made["apiToken"]["id"]}, family.token)
        assert [await s.closed_code(timeout=DEADLINE) for s, _ in by_token] == [4403, 4403]
        # The session's sockets are untouched: both still receive the family's next notification.
        await b.data(LOG_IN, {"e": family.email, "p": PASSWORD})
        for sock, op in session_ops:
            event = (await sock.next_event(op, timeout=DEADLINE))["data"]["notificationReceived"]
            assert event["notification"]["kind"] == "NEW_SIGN_IN"
        await b.data("mutation { logOut { userErrors { code } } }", token=family.token)
        assert [await s.closed_code(timeout=DEADLINE) for s, _ in by_session] == [4403, 4403]
    # Each process heard both ends (its sockets closed): neither answers for them from memory now.
    for gql in (a, b):
        for ended in (made["secret"], family.token):
            body = await gql(VIEWER_ID, token=ended)
            assert body["data"] == {"viewer": None}, body


async def test_a_token_used_on_one_process_is_refused_there_once_revoked_on_another(
    two_processes: tuple[GraphQLClient, GraphQLClient],
) -> None:
    """Process b answers the token from memory once it has seen it; a revocation on process a
    reaches it through the control channel."""
    a, b = two_processes
    family = await sign_up(a)
    create = 'mutation($s: [ApiScope!]!) { createApiToken(input: {name: "CRM", scopes: $s}) { secret } }'
    secret = (await a.data(create, {"s": ["NOTIFICATIONS_READ"]}, family.token))["createApiToken"]["secret"]
    async with AsyncExitStack() as stack:
        sock, _ = await _socket_on(stack, b, family.token)
        for _ in range(3):
            assert (await b.data(VIEWER_ID, token=secret))["viewer"]["id"]
            assert (await b.data(VIEWER_ID, token=family.token))["viewer"]["id"]
        tokens = (await a.data("{ apiTokens { id } }", token=family.token))["apiTokens"]
        revoke = "mutation($id: ID!) { revokeApiToken(input: {apiTokenId: $id}) { userErrors { code } } }"
        await a.data(revoke, {"id": tokens[0]["id"]}, family.token)
        await a.data("mutation { logOut { userErrors { code } } }", token=family.token)
        # The session's socket on b closing shows that b has heard both.
        assert await sock.closed_code(timeout=DEADLINE) == 4403
    for ended in (secret, family.token):
        body = await b(VIEWER_ID, token=ended)
        assert body["data"] == {"viewer": None}, body


async def test_signing_out_on_one_process_ends_an_sse_stream_on_another(
    two_processes: tuple[GraphQLClient, GraphQLClient],
) -> None:
    a, b = two_processes
    family = await sign_up(a)
    async with sse(b.http, NOTIFICATIONS, {"after": await user_cursor(family)}, family.token) as stream:
        await a.data(LOG_IN, {"e": family.email, "p": PASSWORD})
        assert (await stream.next())[0] == "next"  # running on b
        await a.data("mutation { logOut { userErrors { code } } }", token=family.token)
        event, ended = await stream.next()
        assert (event, ended["errors"][0]["extensions"]["code"]) == ("next", "UNAUTHENTICATED")
        assert (await stream.next())[0] == "complete"
