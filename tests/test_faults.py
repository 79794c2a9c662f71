"""Delivery across Redis faults, against a real `server.py serve` on a private Redis.

A client is subscribed while events are produced through the API; the server's Redis connection is
killed (CLIENT KILL) or Redis itself is restarted. The client must be told (BROADCAST_INTERRUPTED),
resubscribe with its last cursor, and end with every event exactly once, in order.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import SimpleNamespace

import httpx
import pytest
from redis import asyncio as aioredis
from strawberry.relay import GlobalID
from websockets.exceptions import ConnectionClosed

import server
from models.accounts import Role
from resolvers import events
from resolvers.broadcast import Hub
from resolvers.clock import Clock
from resolvers.connections import Connection, Connections, announce_ended
from resolvers.events import Envelope, user_channel
from resolvers.viewer import Viewer
from tests.client import GraphQLClient, already, eventually
from tests.factories import PASSWORD, Account, sign_up
from tests.servers import PrivateRedis, serve

NOTIFICATIONS = """
subscription($after: String) {
  notificationReceived(after: $after) { cursor notification { id kind } }
}
"""
LOG_IN = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }"
MY_SIGN_INS = "{ notifications(first: 100) { edges { node { id kind } } } }"
PRODUCED = 12


@pytest.fixture
async def private_redis() -> AsyncIterator[PrivateRedis]:
    redis = PrivateRedis()
    await redis.start()
    try:
        yield redis
    finally:
        redis.stop()


@pytest.fixture
async def served(
    live_server: object, settings: server.Settings, private_redis: PrivateRedis
) -> AsyncIterator[tuple[GraphQLClient, str]]:
    """`server.py serve` on the run's database and the private Redis; yields it and its namespace."""
    namespace = f"faults-{uuid.uuid4().hex[:8]}"
    env = {
        "DATABASE_URL": settings.database_url,
        "BROADCAST_URL": private_redis.url,
        "BROADCAST_NAMESPACE": namespace,
        "BROADCAST_HEARTBEAT_SECONDS": "0.5",
    }
    async with serve(env) as served:
        yield served.client, namespace


class Subscriber:
    """A client as a dashboard should be written: resume from the last cursor whenever told to."""

    def __init__(self, gql: GraphQLClient, token: str, start_cursor: str) -> None:
        self.gql = gql
        self.token = token
        self.cursor = start_cursor
        self.received: list[str] = []
        self.interruptions: list[str] = []

    async def run(self, until: int) -> None:
        while len(self.received) < until:
            try:
                async with self.gql.socket(self.token) as sock:
                    await sock.ack()
                    while len(self.received) < until:
                        op = await sock.subscribe(NOTIFICATIONS, {"after": self.cursor})
                        while len(self.received) < until:
                            result = await sock.next_event(op, timeout=20)
                            if result.get("errors"):
                                errors = result["errors"]
                                code = (errors if isinstance(errors, list) else [errors])[0]["extensions"][
                                    "code"
                                ]
                                self.interruptions.append(code)
                                assert code == "BROADCAST_INTERRUPTED", result
                                await asyncio.sleep(0.2)
                                break
                            event = result["data"]["notificationReceived"]
                            self.received.append(event["notification"]["id"])
                            self.cursor = event["cursor"]
            except (ConnectionClosed, OSError):
                await asyncio.sleep(0.2)


async def _produce(
    gql: GraphQLClient, account: Account, fault_at: int, fault: Callable[[], Awaitable[None]]
) -> None:
    for i in range(PRODUCED):
        if i == fault_at:
            await fault()
        assert (await gql.data(LOG_IN, {"e": account.email, "p": PASSWORD}))["logIn"]["token"]
        await asyncio.sleep(0.05)


async def _run_with_fault(gql: GraphQLClient, fault: Callable[[], Awaitable[None]]) -> Subscriber:
    account = await sign_up(gql)
    channel = user_channel(int(GlobalID.from_id(account.user_id).node_id))
    subscriber = Subscriber(gql, account.token, events.encode_cursor(channel, 0))
    consuming = asyncio.create_task(subscriber.run(until=PRODUCED))
    await _produce(gql, account, PRODUCED // 3, fault)
    await asyncio.wait_for(consuming, 60)
    produced = (await gql.data(MY_SIGN_INS, token=account.token))["notifications"]["edges"]
    # The list is newest first; the feed is oldest first.
    expected = [e["node"]["id"] for e in reversed(produced) if e["node"]["kind"] == "NEW_SIGN_IN"]
    assert len(expected) == PRODUCED
    assert subscriber.received == expected
    return subscriber


async def test_a_killed_redis_connection_is_reported_and_nothing_is_lost(
    served: tuple[GraphQLClient, str], private_redis: PrivateRedis
) -> None:
    gql, namespace = served
    admin = aioredis.Redis.from_url(private_redis.url)

    async def kill() -> None:
        killed = 0
        for client in await admin.client_list():
            # Only the server's own named connections (its hub), never anyone else's.
            if str(client.get("name", "")).startswith(namespace + ":"):
                killed += await admin.client_kill_filter(_id=client["id"])
        assert killed

    try:
        subscriber = await _run_with_fault(gql, kill)
    finally:
        await admin.aclose()
    assert "BROADCAST_INTERRUPTED" in subscriber.interruptions


async def _ready(http: httpx.AsyncClient) -> tuple[int, dict[str, str]]:
    response = await http.get("/readyz")
    return response.status_code, response.json()["checks"]


async def test_a_redis_restart_is_reported_in_readyz_and_nothing_is_lost(
    served: tuple[GraphQLClient, str], private_redis: PrivateRedis
) -> None:
    gql, _ = served
    outage: list[dict[str, str]] = []

    async def restart() -> None:
        private_redis.stop()

        async def reported() -> bool:
            status, checks = await _ready(gql.http)
            if status == 503:
                outage.append(checks)
            return bool(outage)

        await eventually(reported, "readyz reported the outage")
        await private_redis.start()

    subscriber = await _run_with_fault(gql, restart)
    assert "BROADCAST_INTERRUPTED" in subscriber.interruptions
    assert outage, "readyz never reported the outage"
    assert outage[0]["broadcast"].startswith("unavailable"), outage

    async def ready() -> bool:
        return (await _ready(gql.http))[0] == 200

    await eventually(ready, "readyz reported the recovery")
    assert await _ready(gql.http) == (200, {"database": "ok", "broadcast": "ok", "storage": "ok"})


# --- one process's link down, another's up ------------------------------------------------------


async def _cut(admin: aioredis.Redis, hub: Hub) -> None:
    """Close this hub's connections to Redis (and only this hub's), as a network blip would."""
    for client in await admin.client_list():
        if client.get("name") == hub.client_name:
            await admin.client_kill_filter(_id=client["id"])


@asynccontextmanager
async def _two_hubs(redis: PrivateRedis) -> AsyncIterator[tuple[aioredis.Redis, Hub, Hub]]:
    admin = aioredis.Redis.from_url(redis.url)
    a = Hub(
        redis.url, heartbeat_interval=0.5, reconnect_max_delay=1.0, namespace=f"two-{uuid.uuid4().hex[:8]}"
    )
    b = Hub(redis.url, heartbeat_interval=0.5, reconnect_max_delay=1.0, namespace=a._prefix.rstrip(":"))
    await a.connect()
    await b.connect()
    try:
        yield admin, a, b
    finally:
        await a.disconnect()
        await b.disconnect()
        await admin.aclose()


async def test_what_a_process_could_not_publish_reaches_the_others_once_its_link_is_back(
    private_redis: PrivateRedis,
) -> None:
    """Process A signs a session out, and commits an event on a quiet channel, while its own link
    to Redis is down; process B's link never fails, so B re-checks nothing. Once A's link is back,
    A sends both: B closes the session's socket and delivers the event, without waiting for the
    channel's next event or the sweep."""
    clock = Clock()
    async with _two_hubs(private_redis) as (admin, a, b):
        services_a = SimpleNamespace(hub=a, clock=clock, connections=Connections())
        services_b = SimpleNamespace(hub=b, clock=clock, connections=Connections())
        listening = asyncio.create_task(services_b.connections.listen(services_b))
        channel = user_channel(10**9 + 7)
        try:
            await eventually(lambda: already(services_b.connections.listening), "B hears the control channel")
            closed: list[int] = []

            async def close(code: int, reason: str) -> None:
                closed.append(code)

            viewer = Viewer(user_id=1, role=Role.FAMILY, family_id=1, session_id=42)
            socket_b = Connection(viewer, close)
            services_b.connections.add(socket_b)
            async with b.subscribe(channel) as live:
                await _cut(admin, a)
                await eventually(lambda: already(not a.healthy), "A has noticed its link is down")
                await announce_ended(services_a, session_id=42)  # type: ignore[arg-type]
                assert not await a.publish(Envelope(channel, 1, "n", {}, clock.now()))
                await eventually(lambda: already(a.healthy), "A's link is back")
                await eventually(lambda: already(bool(closed)), "B closes the ended session's socket")
                assert b.healthy
                got = await asyncio.wait_for(live.next(), 5)
                assert got.seq == 1
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)
