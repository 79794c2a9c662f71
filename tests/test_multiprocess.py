"""Several server processes sharing events through Redis: `serve --workers 2`."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from strawberry.relay import GlobalID
from tortoise.transactions import in_transaction

import server
from models.accounts import Role, Session, User
from models.families import Family
from resolvers import accounts, events
from resolvers.events import user_channel
from tests.client import GraphQLClient, Socket
from tests.factories import PASSWORD, Account, add_child, advocate, send_request, sign_up
from tests.servers import require_redis, serve
from tests.test_live_requests import NEW_REQUESTS
from tests.test_support_requests import ACCEPT
from tests.test_vault import ACCESS_REVOKED, END, GRANT


@pytest.fixture
async def two_workers(
    live_server: object, settings: server.Settings, redis_url: str
) -> AsyncIterator[GraphQLClient]:
    """`python server.py serve --workers 2` on Redis, on the test run's database."""
    await require_redis(redis_url)
    env = {
        "DATABASE_URL": settings.database_url,
        "BROADCAST_URL": redis_url,
        "BROADCAST_NAMESPACE": settings.broadcast_namespace,
    }
    async with serve(env, workers=2) as client:
        yield client


async def test_a_new_request_reaches_the_advocate_on_either_process_within_a_second(
    two_workers: GraphQLClient,
) -> None:
    gql = two_workers
    adv = await advocate(gql)
    family = await sign_up(gql)
    children = [await add_child(gql, family, displayName=f"Child {i}") for i in range(4)]
    async with AsyncExitStack() as stack:
        # Open sockets until both processes hold some: the kernel spreads connections between them.
        sockets: list[tuple[Socket, str]] = []
        processes: set[str] = set()
        while len(processes) < 2 or len(sockets) < 4:
            assert len(sockets) < 40, "connections never reached both processes"
            sock = await stack.enter_async_context(gql.socket(adv.token))
            ack = await sock.receive()
            assert ack["type"] == "connection_ack"
            processes.add(ack["payload"]["server"])
            sockets.append((sock, await sock.subscribe(NEW_REQUESTS)))
        await asyncio.sleep(0.3)
        for child in children:
            # A fresh HTTP connection each time, so the sends land on both processes too.
            async with httpx.AsyncClient(base_url=str(gql.http.base_url), timeout=30) as fresh:
                started = time.monotonic()
                sent = await send_request(GraphQLClient(fresh, gql.ws_url), family, adv.advocate_id, child)
                request_id = sent["supportRequest"]["id"]
                for sock, op in sockets:
                    event = (await sock.next_event(op, timeout=1.0))["data"]["newSupportRequest"]
                    assert event["supportRequest"]["id"] == request_id
                assert time.monotonic() - started < 1.5


async def test_access_revoked_reaches_the_advocate_on_either_process_within_a_second(
    two_workers: GraphQLClient,
) -> None:
    gql = two_workers
    adv = await advocate(gql)
    family = await sign_up(gql)
    child = await add_child(gql, family)
    request_id = (await send_request(gql, family, adv.advocate_id, child))["supportRequest"]["id"]
    accepted = await gql.data(ACCEPT, {"input": {"requestId": request_id}}, adv.token)
    relationship = accepted["acceptSupportRequest"]["supportRequest"]["relationship"]["id"]
    grant = await gql.data(
        GRANT,
        {"input": {"relationshipId": relationship, "scopes": ["EVIDENCE"], "childIds": [child]}},
        family.token,
    )
    grant_id = grant["grantVaultAccess"]["vaultGrant"]["id"]
    async with AsyncExitStack() as stack:
        sockets: list[tuple[Socket, str]] = []
        processes: set[str] = set()
        while len(processes) < 2:
            assert len(sockets) < 40, "connections never reached both processes"
            sock = await stack.enter_async_context(gql.socket(adv.token))
            ack = await sock.receive()
            assert ack["type"] == "connection_ack"
            processes.add(ack["payload"]["server"])
            sockets.append((sock, await sock.subscribe(ACCESS_REVOKED)))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        ended = await gql.data(
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
        for sock, op in sockets:
            event = (await sock.next_event(op, timeout=1.0))["data"]["accessRevoked"]
            assert event["reason"] == "RELATIONSHIP_ENDED"
            assert event["vaultGrant"]["id"] == grant_id
        assert time.monotonic() - started < 1.5


NOTIFICATIONS = """
subscription($after: String) {
  notificationReceived(after: $after) { cursor notification { id kind } }
}
"""
MY_NOTIFICATIONS = "{ notifications(first: 100) { edges { node { id kind } } } }"
LOG_IN = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }"


async def _families(n: int) -> list[Account]:
    """n signed-in families, written straight to the database with one shared password hash:
    signing 200 people up through the API would spend most of the test hashing passwords."""
    password_hash = await accounts.hash_password(PASSWORD)
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
                user=user, token_hash=accounts.hash_token(token), created_at=now, expires_at=expires
            )
            made.append(Account(token, str(GlobalID("User", str(user.id))), email))
    return made


async def test_two_hundred_subscribers_over_two_processes_each_get_exactly_their_own_events(
    two_workers: GraphQLClient,
) -> None:
    """200 families each hold a socket on `notificationReceived`, spread over both processes; a
    subset of them sign in (once or twice) and each socket receives exactly its own notifications."""
    gql = two_workers
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
        assert len(servers) == 2, servers
        # `serve` declines per-message compression (~300 KiB per socket), which the client offered.
        assert sockets[0].ws.response is not None
        assert "Sec-WebSocket-Extensions" not in sockets[0].ws.response.headers
        signing_in = {i: (2 if i % 10 == 0 else 1) for i in range(0, 200, 5)}
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
                event = (await sockets[i].next_event(ops[i], timeout=15))["data"]["notificationReceived"]
                got.append(event["notification"]["id"])
            await sockets[i].expect_silence(0.5)
            return got

        received = await asyncio.gather(*(received_by(i) for i in range(200)))
    for i, count in enumerate(map(len, received)):
        assert count == signing_in.get(i, 0), i
    for i in signing_in:
        family = families[i]
        mine = (await gql.data(MY_NOTIFICATIONS, token=family.token))["notifications"]["edges"]
        assert sorted(received[i]) == sorted(
            e["node"]["id"] for e in mine if e["node"]["kind"] == "NEW_SIGN_IN"
        )
        assert len(received[i]) == signing_in.get(i, 0)


async def _sockets_on_both_processes(gql: GraphQLClient, stack: AsyncExitStack, token: str) -> list[Socket]:
    """Sockets of one credential, opened until both processes hold at least one; each subscribed."""
    sockets: list[Socket] = []
    processes: set[str] = set()
    while len(processes) < 2:
        assert len(sockets) < 40, "connections never reached both processes"
        sock = await stack.enter_async_context(gql.socket(token))
        ack = await sock.receive()
        assert ack["type"] == "connection_ack"
        processes.add(ack["payload"]["server"])
        await sock.subscribe(NOTIFICATIONS)
        sockets.append(sock)
    return sockets


async def test_logging_out_or_revoking_a_token_closes_its_sockets_on_every_process(
    two_workers: GraphQLClient,
) -> None:
    gql = two_workers
    family = await sign_up(gql)
    create = (
        'mutation($s: [ApiScope!]!) { createApiToken(input: {name: "CRM", scopes: $s})'
        " { secret apiToken { id } } }"
    )
    made = (await gql.data(create, {"s": ["NOTIFICATIONS_READ", "EVENTS_SUBSCRIBE"]}, family.token))[
        "createApiToken"
    ]
    async with AsyncExitStack() as stack:
        by_token = await _sockets_on_both_processes(gql, stack, made["secret"])
        by_session = await _sockets_on_both_processes(gql, stack, family.token)
        await asyncio.sleep(0.3)
        revoke = "mutation($id: ID!) { revokeApiToken(input: {apiTokenId: $id}) { userErrors { code } } }"
        await gql.data(revoke, {"id": made["apiToken"]["id"]}, family.token)
        assert [await s.closed_code(timeout=3) for s in by_token] == [4403] * len(by_token)
        for sock in by_session:
            await sock.expect_silence(0.1)  # the session's sockets are untouched
        await gql.data("mutation { logOut { userErrors { code } } }", token=family.token)
        assert [await s.closed_code(timeout=3) for s in by_session] == [4403] * len(by_session)
