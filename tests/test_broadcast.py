"""The broadcast hub against a real Redis: first subscribers, several processes, a killed link."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis import asyncio as aioredis

from resolvers.broadcast import (
    BROADCAST_INTERRUPTED,
    RESUBSCRIBES_PER_SECOND,
    SLOW_CONSUMER,
    Hub,
    SubscriptionEnded,
)
from resolvers.events import Envelope
from tests.client import DEADLINE, eventually
from tests.conftest import require_service
from tests.servers import PrivateRedis


def _event(channel: str, seq: int) -> Envelope:
    return Envelope(channel, seq, "test", {"n": seq}, datetime.now(UTC))


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.ping()
    except OSError as exc:
        await client.aclose()
        require_service("Redis", str(exc))
    yield client
    await client.aclose()


async def _hub(url: str, heartbeat_interval: float = 1.0) -> Hub:
    # A heartbeat shorter than a loaded machine's stalls would report outages that are not there.
    hub = Hub(url, max_queue=10, heartbeat_interval=heartbeat_interval, reconnect_max_delay=0.5)
    await hub.connect()
    return hub


async def _kill_connections_of(redis: aioredis.Redis, hub: Hub) -> None:
    """CLIENT KILL this hub's connections only: other test runs may share the Redis."""
    killed = 0
    for client in await redis.client_list():
        if client.get("name") == hub.client_name:
            killed += await redis.client_kill_filter(_id=client["id"])
    assert killed


async def test_hubs_in_other_namespaces_do_not_hear_each_other(redis: aioredis.Redis, redis_url: str) -> None:
    mine = Hub(redis_url, heartbeat_interval=1.0, namespace=f"ns-{uuid.uuid4().hex}")
    theirs = Hub(redis_url, heartbeat_interval=1.0, namespace=f"ns-{uuid.uuid4().hex}")
    await mine.connect()
    await theirs.connect()
    try:
        async with mine.subscribe("user:1") as sub:
            await theirs.publish(_event("user:1", 7))
            await mine.publish(_event("user:1", 8))
            assert (await asyncio.wait_for(sub.next(), DEADLINE)).seq == 8
    finally:
        await mine.disconnect()
        await theirs.disconnect()


async def test_first_subscriber_of_a_fresh_process_receives_events(
    redis: aioredis.Redis, redis_url: str
) -> None:
    # broadcaster's own Redis backend loses these: its listener starts before SUBSCRIBE completes.
    for _ in range(10):
        hub = await _hub(redis_url)
        channel = f"test:{uuid.uuid4().hex}"
        try:
            async with hub.subscribe(channel) as sub:
                await hub.publish(_event(channel, 1))
                received = await asyncio.wait_for(sub.next(), DEADLINE)
            assert received.seq == 1
        finally:
            await hub.disconnect()


async def test_events_cross_between_processes_and_stay_on_their_channel(
    redis: aioredis.Redis, redis_url: str
) -> None:
    a, b = await _hub(redis_url), await _hub(redis_url)
    mine, theirs = f"test:{uuid.uuid4().hex}", f"test:{uuid.uuid4().hex}"
    try:
        async with b.subscribe(mine) as sub:
            await a.publish(_event(theirs, 1))
            for seq in (1, 2, 3):
                await a.publish(_event(mine, seq))
            got = [(await asyncio.wait_for(sub.next(), DEADLINE)).seq for _ in range(3)]
            assert got == [1, 2, 3]
            assert sub.queued == 0
    finally:
        await a.disconnect()
        await b.disconnect()


async def test_a_killed_connection_ends_subscriptions_and_recovers(
    redis: aioredis.Redis, redis_url: str
) -> None:
    hub = await _hub(redis_url)
    channel = f"test:{uuid.uuid4().hex}"
    try:
        async with hub.subscribe(channel) as sub:
            await hub.publish(_event(channel, 1))
            assert (await asyncio.wait_for(sub.next(), DEADLINE)).seq == 1
            await _kill_connections_of(redis, hub)
            with pytest.raises(SubscriptionEnded) as ended:
                await asyncio.wait_for(sub.next(), DEADLINE)
            assert ended.value.code == BROADCAST_INTERRUPTED
        await eventually(hub.check, "the hub reconnected")
        async with hub.subscribe(channel) as sub:
            await hub.publish(_event(channel, 2))
            assert (await asyncio.wait_for(sub.next(), DEADLINE)).seq == 2
    finally:
        await hub.disconnect()


async def test_a_subscriber_that_does_not_read_is_ended_not_buffered() -> None:
    hub = await _hub("memory://")
    channel = "test:slow"
    try:
        async with hub.subscribe(channel) as sub:
            for seq in range(1, 50):
                await hub.publish(_event(channel, seq))
            await asyncio.sleep(0.05)
            assert sub.queued <= hub.max_queue
            with pytest.raises(SubscriptionEnded) as ended:
                await sub.next()
            assert ended.value.code == SLOW_CONSUMER
            assert sub.queued == 0
    finally:
        await hub.disconnect()


async def test_an_unresponsive_redis_is_found_by_the_heartbeat() -> None:
    """Given a Redis that accepts connections but answers nothing (a half-open link looks the same),
    the heartbeat ends the subscriptions within a few intervals, and the hub recovers after."""
    private = PrivateRedis()
    await private.start()
    admin = aioredis.Redis.from_url(private.url)
    hub = await _hub(private.url, heartbeat_interval=0.2)
    channel = f"test:{uuid.uuid4().hex}"
    try:
        async with hub.subscribe(channel) as sub:
            # Paused well past the heartbeat's detection time (3 intervals), so the outage is
            # found while it lasts even on a loaded machine.
            await admin.client_pause(5000, all=True)
            with pytest.raises(SubscriptionEnded) as ended:
                await asyncio.wait_for(sub.next(), 2.5)
            assert ended.value.code == BROADCAST_INTERRUPTED
            assert not await hub.check()
        await eventually(hub.check, "the hub recovered")
        async with hub.subscribe(channel) as sub:
            await hub.publish(_event(channel, 1))
            assert (await asyncio.wait_for(sub.next(), DEADLINE)).seq == 1
    finally:
        await hub.disconnect()
        await admin.aclose()
        private.stop()


async def _cancel_while_subscribing(url: str) -> None:
    """A cancellation that lands at any step of subscribing ends the subscriber.

    Python 3.11's `asyncio.wait_for` drops a cancellation that arrives just as the operation it
    bounds completes; a subscriber cancelled at that moment waited for events for ever (a socket's
    `stop` right after its `start`, or the server's shutdown right after it started)."""
    hub = await _hub(url)
    try:
        for steps in range(12):

            async def listen(channel: str) -> None:
                async with hub.subscribe(channel) as sub:
                    await sub.next()

            task = asyncio.create_task(listen(f"user:{steps}"))
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=DEADLINE)
            assert done, f"a subscriber cancelled after {steps} loop steps is still waiting"
            assert task.cancelled()
    finally:
        await hub.disconnect()


async def test_a_subscriber_cancelled_while_subscribing_stops() -> None:
    await _cancel_while_subscribing("memory://")


async def test_a_subscriber_cancelled_while_subscribing_to_redis_stops(
    redis: aioredis.Redis, redis_url: str
) -> None:
    await _cancel_while_subscribing(redis_url)


async def test_subscribers_ended_together_are_told_to_come_back_at_different_moments() -> None:
    """2,000 subscribers ended at once (here the server stopping) get retry hints spread over the
    window their number calls for (2,000 / RESUBSCRIBES_PER_SECOND = 4 s), not one moment."""
    hub = await _hub("memory://")
    async with contextlib.AsyncExitStack() as stack:
        subscriptions = [
            await stack.enter_async_context(hub.subscribe(f"user:{i % 50}")) for i in range(2000)
        ]
        await hub.disconnect()
        hints = [s.failure.retry_after for s in subscriptions if s.failure is not None]
    assert len(hints) == 2000
    assert all(h is not None and 0.1 <= h <= 2000 / RESUBSCRIBES_PER_SECOND for h in hints)
    assert max(h for h in hints if h is not None) - min(h for h in hints if h is not None) > 3
