"""Fan-out of committed events to this process's subscribers, over broadcaster's backends.

broadcaster supplies the backend interface and the in-process `memory://` backend. Its `Broadcast`
front is not used: its per-subscriber queues are unbounded and it has no way to tell subscribers
that the connection under them died. `Hub` adds bounded queues, a Redis backend that is ready only
once SUBSCRIBE has completed, supervision with reconnect and backoff, and a health flag for /readyz.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import random
import socket
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol
from urllib.parse import urlparse

from broadcaster import Event
from broadcaster._backends.base import BroadcastBackend
from broadcaster._backends.memory import MemoryBackend
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from resolvers.apart import apart, open_connections_apart
from resolvers.events import Envelope

log = logging.getLogger("senvault.broadcast")

# The longest a request waits to broadcast the events it committed (SPEC §12: no request waits more
# than 250 ms on Redis). They are in the event log already; subscribers replay from it.
PUBLISH_TIMEOUT = 0.25
# How long subscribing or unsubscribing Redis to one channel may take before it is given up.
CONVERGE_SECONDS = 5.0


# How many messages that could not be published are kept to send when the link is back.
UNSENT_KEPT = 10_000


class SubscriptionEnded(Exception):
    """Live delivery to one subscriber stopped; `code` tells the client what to do, and
    `retry_after` (seconds) when to try again, if it should."""

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


# When every subscriber of a process is told to resubscribe at once (the broadcast link blipped, the
# server is stopping), each is given its own moment to come back, spread evenly over a window long
# enough that the process sees about RESUBSCRIBES_PER_SECOND of them a second, at least
# MIN_RETRY_SECONDS and at most MAX_RETRY_SECONDS: 10,000 dashboards return over 20 s, not at once.
RESUBSCRIBES_PER_SECOND = 500
MIN_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 60.0


def retry_hint(subscribers: int) -> float:
    """A jittered delay before resubscribing, for one of `subscribers` told at the same time."""
    window = min(MAX_RETRY_SECONDS, max(MIN_RETRY_SECONDS, subscribers / RESUBSCRIBES_PER_SECOND))
    return random.uniform(0.1, window)


BROADCAST_INTERRUPTED = "BROADCAST_INTERRUPTED"  # resubscribe with `after` to replay the gap
SLOW_CONSUMER = "SLOW_CONSUMER"  # the client fell too far behind; reconnect and replay
ACCESS_ENDED = "ACCESS_ENDED"  # what this subscription reads is no longer the viewer's to see


class Subscriber(Protocol):
    """What the hub feeds: a `Subscription`, or a subscription the shared delivery has taken over
    (`schema.fanout.Member`)."""

    channel: str

    def offer(self, envelope: Envelope) -> None: ...

    def fail(self, failure: SubscriptionEnded) -> None: ...


class Subscription:
    """One subscriber's bounded queue. Overflow ends the subscription instead of growing memory."""

    def __init__(self, channel: str, max_queue: int, on_overflow: Callable[[], None] | None = None) -> None:
        self.channel = channel
        self.max_queue = max_queue
        self._items: deque[Envelope] = deque()
        self._wake = asyncio.Event()
        self.failure: SubscriptionEnded | None = None
        # Called once when the queue overflows: the reader is stuck (typically on a socket whose
        # peer stopped reading) and will not see `failure` until something unblocks it.
        self._on_overflow = on_overflow

    @property
    def queued(self) -> int:
        return len(self._items)

    def offer(self, envelope: Envelope) -> None:
        if self.failure is not None:
            return
        if len(self._items) >= self.max_queue:
            self._items.clear()
            self.fail(SubscriptionEnded(SLOW_CONSUMER, "Too many undelivered events; reconnect."))
            if self._on_overflow is not None:
                self._on_overflow()
            return
        self._items.append(envelope)
        self._wake.set()

    def fail(self, failure: SubscriptionEnded) -> None:
        if self.failure is None:
            self.failure = failure
        self._wake.set()

    async def next(self) -> Envelope:
        """The next live event; raises SubscriptionEnded once delivery has stopped."""
        while True:
            if self.failure is not None:
                raise self.failure
            if self._items:
                return self._items.popleft()
            self._wake.clear()
            await self._wake.wait()

    def __aiter__(self) -> AsyncIterator[Envelope]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Envelope]:
        while True:
            yield await self.next()


class _ConnectionLost(Event):
    """Put on the backend's queue by its listener when the connection under it dies."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(channel="", message="")
        self.error = error


class RedisPubSubBackend(BroadcastBackend):
    """Redis pub/sub for broadcaster, subscribing before it listens and reporting a dead link."""

    def __init__(self, url: str, client_name: str | None = None) -> None:
        self._url = url
        self._client_name = client_name
        self._conn: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._channels: set[str] = set()
        self._has_channels = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        # SUBSCRIBEs sent and not yet confirmed by Redis, by channel: `subscribe` returns once the
        # listener has read the confirmation, so that nothing published after it returns is missed.
        self._confirming: dict[str, list[asyncio.Future[None]]] = {}

    async def connect(self) -> None:
        self._conn = aioredis.Redis.from_url(
            self._url,
            socket_connect_timeout=5,
            # No per-write timeout: redis-py bounds writes with `asyncio.wait_for`, which on
            # Python 3.11 drops a cancellation that lands as the write completes (a subscriber
            # cancelled then waited for ever). Every call here is bounded by `asyncio.timeout`
            # instead, and the heartbeat finds a link that stopped answering.
            socket_timeout=None,
            socket_keepalive=True,
            health_check_interval=0,
            # Named, so that `CLIENT LIST` on a shared Redis shows whose connection is whose.
            client_name=self._client_name,
        )
        open_connections_apart(self._conn)
        await self._conn.ping()
        self._pubsub = self._conn.pubsub()
        for channel in sorted(self._channels):
            await self._pubsub.subscribe(channel)
        self._listener = asyncio.create_task(self._listen(), name="redis-pubsub-listener")

    async def disconnect(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.aclose()

    async def subscribe(self, channel: str) -> None:
        """Subscribe, returning once Redis has confirmed it. redis-py only sends the command: a
        PUBLISH from another connection could be served before Redis reads the SUBSCRIBE, and the
        event would be missed (seen under load after a reconnect). Callers bound the wait."""
        self._channels.add(channel)
        confirmed = asyncio.get_running_loop().create_future()
        self._confirming.setdefault(channel, []).append(confirmed)
        try:
            await self._pubsub.subscribe(channel)
            # Only now may the listener read: redis-py's listen() returns at once while nothing is
            # subscribed, and broadcaster's own backend sets its flag before SUBSCRIBE completes.
            self._has_channels.set()
            await confirmed
        finally:
            waiting = self._confirming.get(channel)
            if waiting is not None and confirmed in waiting:
                waiting.remove(confirmed)
                if not waiting:
                    del self._confirming[channel]

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        await self._pubsub.unsubscribe(channel)

    async def publish(self, channel: str, message: Any) -> None:
        assert self._conn is not None
        await self._conn.publish(channel, message)

    async def publish_many(self, messages: list[tuple[str, str]]) -> None:
        """Several messages in order, in one round trip: they also reach subscribers together."""
        assert self._conn is not None
        async with self._conn.pipeline(transaction=False) as pipe:
            for channel, message in messages:
                pipe.publish(channel, message)
            await pipe.execute()

    async def next_published(self) -> Event:
        return await self._queue.get()

    async def ping(self) -> None:
        assert self._conn is not None
        await self._conn.ping()

    async def _listen(self) -> None:
        try:
            while True:
                await self._has_channels.wait()
                # Blocking, with no timeout: redis-py's timed read costs more than the rest of an
                # event's delivery (`bench/RESULTS.md`). A link that stops answering is found by
                # the heartbeat, which cancels this read.
                message = await self._pubsub.get_message(ignore_subscribe_messages=False, timeout=None)
                if message is not None and message["type"] == "message":
                    await self._queue.put(Event(message["channel"].decode(), message["data"].decode()))
                elif message is not None and message["type"] == "subscribe":
                    for confirmed in self._confirming.pop(message["channel"].decode(), []):
                        if not confirmed.done():
                            confirmed.set_result(None)
                if not self._channels and not self._pubsub.subscribed:
                    self._has_channels.clear()
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError) as exc:
            await self._queue.put(_ConnectionLost(exc))


class Hub:
    """This process's subscribers, fed from one broadcast backend."""

    def __init__(
        self,
        url: str,
        *,
        max_queue: int = 1000,
        max_buffered_bytes: int = 1024 * 1024,
        heartbeat_interval: float = 5.0,
        reconnect_max_delay: float = 10.0,
        namespace: str = "senvault",
        publish_timeout: float = PUBLISH_TIMEOUT,
    ) -> None:
        self.url = url
        self.publish_timeout = publish_timeout
        # Channels on the wire are prefixed, so deployments (and test runs) sharing one Redis
        # never hear each other's events.
        self._prefix = f"{namespace}:" if namespace else ""
        self.max_queue = max_queue
        # A socket fed by the shared delivery (`schema.fanout`) is a slow consumer once this many
        # bytes written to it are still waiting for the peer to read them.
        self.max_buffered_bytes = max_buffered_bytes
        # Per-channel state of that delivery, kept here so it lives and dies with this hub.
        self.shared: dict[str, Any] = {}
        self.heartbeat_interval = heartbeat_interval
        self.reconnect_max_delay = reconnect_max_delay
        self.client_name = (
            f"{namespace or 'senvault'}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        )
        self._backend = self._make_backend(url, self.client_name)
        self._subscribers: dict[str, set[Subscriber]] = {}
        # Channels the backend is subscribed to, changed only under `_channels_lock`, so that it
        # converges on the channels that have subscribers whatever order they come and go in.
        self._backend_channels: set[str] = set()
        self._channels_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribing: set[asyncio.Task[None]] = set()
        self._heartbeat_channel = f"hub:heartbeat:{uuid.uuid4().hex}"
        self._heartbeat_seen = asyncio.Event()
        self.healthy = False
        self.last_error: str | None = None
        # What could not be published while the link was down, sent once it is back: the other
        # processes' links may never have failed, so nothing else would tell them (a credential
        # that ended, an event on a quiet channel). Oldest first out past its bound.
        self._unsent: deque[Envelope] = deque(maxlen=UNSENT_KEPT)

    @staticmethod
    def _make_backend(url: str, client_name: str) -> BroadcastBackend:
        scheme = urlparse(url).scheme
        if scheme == "memory":
            return MemoryBackend(url)
        if scheme in ("redis", "rediss"):
            return RedisPubSubBackend(url, client_name)
        raise ValueError(f"Unsupported BROADCAST_URL scheme {scheme!r}: use memory:// or redis://")

    @property
    def is_redis(self) -> bool:
        return isinstance(self._backend, RedisPubSubBackend)

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    def subscriptions(self, channel: str) -> list[Subscriber]:
        """This process's live subscriptions to a channel (for health and tests)."""
        return list(self._subscribers.get(channel, ()))

    async def connect(self) -> None:
        await self._backend.connect()
        if self.is_redis:
            await self._backend.subscribe(self._heartbeat_channel)
            self._tasks.append(asyncio.create_task(self._heartbeat(), name="hub-heartbeat"))
        self._tasks.append(asyncio.create_task(self._pump(), name="hub-pump"))
        self.healthy = True

    async def disconnect(self) -> None:
        self.healthy = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._fail_all(BROADCAST_INTERRUPTED, "The server is shutting down.")
        await self._backend.disconnect()

    async def publish(self, *envelopes: Envelope) -> bool:
        """Broadcast committed events, in order, waiting at most `publish_timeout` for all of them.

        Returns False when they were not sent: the link is down, or Redis did not answer in time
        (a paused or overloaded server). Then every subscriber of this process is told the broadcast
        was interrupted, and resubscribes with its cursor to replay what it missed from the log;
        until the link is back, publishing gives up at once instead of waiting again.
        """
        if not envelopes:
            return True
        if not self.healthy:
            self._unsent.extend(envelopes)
            return False
        try:
            async with asyncio.timeout(self.publish_timeout):
                if isinstance(self._backend, RedisPubSubBackend) and len(envelopes) > 1:
                    await self._backend.publish_many(
                        [(self._prefix + envelope.channel, envelope.encode()) for envelope in envelopes]
                    )
                else:
                    for envelope in envelopes:
                        await self._backend.publish(self._prefix + envelope.channel, envelope.encode())
        except (RedisError, OSError, TimeoutError) as exc:
            self._unsent.extend(envelopes)
            self._link_failed(exc)
            return False
        return True

    def _link_failed(self, error: BaseException) -> None:
        """Treat the link as lost now, as the heartbeat would a little later."""
        self.last_error = repr(error)
        if self.healthy and isinstance(self._backend, RedisPubSubBackend):
            self.healthy = False
            self._backend._queue.put_nowait(_ConnectionLost(error))

    async def check(self) -> bool:
        """Whether live delivery works now: the link is up and answers a ping."""
        if not self.healthy:
            return False
        if isinstance(self._backend, RedisPubSubBackend):
            try:
                async with asyncio.timeout(2):
                    await self._backend.ping()
            except (RedisError, OSError, TimeoutError) as exc:
                self.last_error = repr(exc)
                return False
        return True

    @asynccontextmanager
    async def subscribe(
        self, channel: str, on_overflow: Callable[[], None] | None = None
    ) -> AsyncIterator[Subscription]:
        """A bounded live feed of one channel, from the moment this returns."""
        subscription = Subscription(channel, self.max_queue, on_overflow)
        if not self.healthy:
            subscription.fail(self._unavailable())
        subscribers = self._subscribers.get(channel)
        if subscribers:
            subscribers.add(subscription)
        else:
            self._subscribers[channel] = {subscription}
        try:
            if self.healthy and channel not in self._backend_channels:
                try:
                    # Apart: the event loop keeps a timer until its moment, even once cancelled,
                    # and with it the context it was set in (this subscriber's, reaching its socket).
                    await apart(self._converge_within(channel))
                except (RedisError, OSError, TimeoutError) as exc:
                    # The link is failing; the heartbeat will notice. This subscriber retries.
                    self.last_error = repr(exc)
                    subscription.fail(self._unavailable())
            yield subscription
        finally:
            self.detach(subscription)

    def attach(self, subscriber: Subscriber) -> None:
        """Add a subscriber to a channel this process already listens to, at once (its events from
        now on). The caller holds another subscription to the channel while it attaches."""
        subscribers = self._subscribers.get(subscriber.channel)
        if not subscribers:
            raise RuntimeError(f"attach to {subscriber.channel!r}, which has no subscriber")
        subscribers.add(subscriber)

    def detach(self, subscriber: Subscriber) -> None:
        """Remove a subscriber; the last one of a channel unsubscribes the backend, in the background."""
        channel = subscriber.channel
        remaining = self._subscribers.get(channel)
        if remaining is None:
            return
        remaining.discard(subscriber)
        if not remaining:
            del self._subscribers[channel]
            if self.healthy and channel in self._backend_channels:
                task = asyncio.get_running_loop().create_task(
                    self._unsubscribe_quietly(channel), context=contextvars.Context()
                )
                self._unsubscribing.add(task)
                task.add_done_callback(self._unsubscribing.discard)

    async def _unsubscribe_quietly(self, channel: str) -> None:
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await self._converge_within(channel)

    async def _converge_within(self, channel: str) -> None:
        """`_converge`, given up after CONVERGE_SECONDS (the link is failing: the heartbeat will notice)."""
        async with asyncio.timeout(CONVERGE_SECONDS):
            await self._converge(channel)

    async def _converge(self, channel: str) -> None:
        """Subscribe or unsubscribe the backend so that it listens to `channel` exactly when this
        process has a subscriber to it."""
        async with self._channels_lock:
            wanted = channel in self._subscribers
            if wanted and channel not in self._backend_channels:
                await self._backend.subscribe(self._prefix + channel)
                self._backend_channels.add(channel)
            elif not wanted and channel in self._backend_channels:
                self._backend_channels.discard(channel)
                await self._backend.unsubscribe(self._prefix + channel)

    def end_subscriptions(self, channel: str, failure: SubscriptionEnded) -> None:
        """End every local subscription to a channel now (e.g. access to what it reads ended)."""
        for subscription in list(self._subscribers.get(channel, ())):
            subscription.fail(failure)

    def _unavailable(self) -> SubscriptionEnded:
        """Why a new subscription cannot start now, and when to try again."""
        return SubscriptionEnded(
            BROADCAST_INTERRUPTED, "Live delivery is unavailable; retry.", retry_hint(self.subscriber_count)
        )

    def _fail_all(self, code: str, message: str) -> None:
        """End every subscription, each with its own jittered retry hint."""
        everyone = [s for subscribers in self._subscribers.values() for s in subscribers]
        for subscription in everyone:
            subscription.fail(SubscriptionEnded(code, message, retry_hint(len(everyone))))

    async def _pump(self) -> None:
        delay = 0.5
        while True:
            event = await self._backend.next_published()
            if isinstance(event, _ConnectionLost):
                await self._recover(event.error, delay)
                delay = min(delay * 2, self.reconnect_max_delay)
                continue
            delay = 0.5
            if event.channel == self._heartbeat_channel:
                self._heartbeat_seen.set()
                continue
            try:
                envelope = Envelope.decode(event.message)
            except (ValueError, KeyError, TypeError):
                log.error("dropping malformed event on %s", event.channel)
                continue
            self._offer(envelope)

    def _offer(self, envelope: Envelope) -> None:
        # A function of its own: a loop variable in `_pump`, which runs for the life of the
        # process, would keep the last subscriber (and its socket) alive until the next event.
        for subscription in list(self._subscribers.get(envelope.channel, ())):
            subscription.offer(envelope)

    async def _recover(self, error: BaseException, delay: float) -> None:
        """Tell every subscriber, then reconnect with backoff until the backend answers."""
        log.warning("broadcast connection lost: %r", error)
        self.healthy = False
        self.last_error = repr(error)
        self._backend_channels.clear()
        self._fail_all(BROADCAST_INTERRUPTED, "Live delivery was interrupted; resubscribe with `after`.")
        assert isinstance(self._backend, RedisPubSubBackend)
        while True:
            await self._backend.disconnect()
            await asyncio.sleep(delay)
            try:
                # Stale subscriptions were all failed above: resubscribe only the heartbeat.
                self._backend._channels = {self._heartbeat_channel}
                # Bounded: a hung server must not hold up the retries for ever.
                async with asyncio.timeout(5):
                    await self._backend.connect()
                async with asyncio.timeout(5):
                    await self._backend.subscribe(self._heartbeat_channel)
            except (RedisError, OSError, TimeoutError) as exc:
                self.last_error = repr(exc)
                delay = min(delay * 2, self.reconnect_max_delay)
                continue
            for channel in list(self._subscribers):
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    async with asyncio.timeout(5):
                        await self._converge(channel)
            self.healthy = True
            self.last_error = None
            log.info("broadcast connection restored")
            await self._send_unsent()
            return

    async def _send_unsent(self) -> None:
        """Publish what could not be published while the link was down. A receiver drops an event
        it already has (by sequence number), and ending a credential twice changes nothing."""
        unsent = list(self._unsent)
        self._unsent.clear()
        if unsent and not await self.publish(*unsent):
            log.warning("could not send %d message(s) held while the link was down", len(unsent))

    async def _heartbeat(self) -> None:
        """Detect a dead or half-open link: our own ping must come back through Redis."""
        assert isinstance(self._backend, RedisPubSubBackend)
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            if not self.healthy:
                continue
            self._heartbeat_seen.clear()
            try:
                async with asyncio.timeout(self.heartbeat_interval):
                    await self._backend.publish(self._heartbeat_channel, "ping")
                async with asyncio.timeout(self.heartbeat_interval * 2):
                    await self._heartbeat_seen.wait()
            except (RedisError, OSError, TimeoutError) as exc:
                if self.healthy:
                    await self._backend._queue.put(_ConnectionLost(exc))
