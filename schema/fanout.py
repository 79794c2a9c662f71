"""Live events written once per shared selection, to every socket that asked alike.

A subscription on a `graphql-transport-ws` socket replays what it missed through strawberry as any
operation does (`schema.streams.stream`). Once it has caught up, it is handed over here: its task
waits, and each later event of its channel is delivered by the channel's `ChannelFanout` instead of
by that task. Per event the fanout does, once for each `Group` (subscribers with the same document,
the same variables below the root field, the same viewer and the same kinds of event):

1. the credential check, in memory (`accounts.still_valid`), and the event's object (`build`);
2. the GraphQL execution of the selection, with the subscriber's own executor;
3. strawberry's handling of the result (errors shown with a code or masked, the cost extension);
4. the JSON of the payload, and the text frame of the whole `next` message for each operation id;

then writes those bytes to each member's socket (`FrameWriter`, the uvicorn protocol in
`schema.transport`), below the ASGI send and strawberry's per-operation loop. A thousand sockets
of one advocate cost one execution and a thousand `write` calls.

What the per-subscription path guarantees still holds: each event once and in sequence order
(a member's `last` moves under the same rule as `stream`'s; a gap is read from the log once for the
channel), nothing written to a socket whose credential has ended, and a member that ends (access
ended, the broadcast interrupted, a slow consumer) is failed through its hub `Subscription`, so its
waiting task raises the same coded error as before and strawberry sends it. A socket whose peer has
stopped reading is closed with 4008 once its unsent bytes pass `Hub.max_buffered_bytes`.

SSE streams, the legacy `graphql-ws` protocol and `messageAdded` keep the per-subscription path.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Container, Hashable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import orjson
from graphql import ExecutionResult
from starlette.websockets import WebSocket
from websockets.frames import Frame, Opcode

from resolvers import accounts, events
from resolvers.broadcast import Hub, Subscription, SubscriptionEnded
from resolvers.connections import CLOSE_FORBIDDEN, CLOSE_SLOW_CONSUMER, Connection
from resolvers.events import Envelope
from resolvers.viewer import Viewer
from schema.context import Context
from schema.loaders import Loaders

if TYPE_CHECKING:
    from graphql.execution import Executor

    from schema.policy import OperationPolicy

log = logging.getLogger("senvault.fanout")

REPLAY_PAGE = 500
CURSOR_EXPIRED = "CURSOR_EXPIRED"
EXPIRED_MESSAGE = "The events after this cursor are no longer kept: reload, then subscribe without `after`."

# The scope extension under which `schema.transport.WebSocketProtocol` offers its `FrameWriter`.
FRAME_WRITER = "senvault.frame_writer"

# Set in the operation's own task: by the graphql-transport-ws handler (the operation's id), by
# `SharedEventExecutor.build` (the executor graphql-core built for a subscription) and by
# `OperationPolicy.on_operation` (the extension instance that shapes the operation's results).
OPERATION_ID: ContextVar[str | None] = ContextVar("senvault_operation_id", default=None)
SUBSCRIPTION_EXECUTOR: ContextVar[Executor[Any] | None] = ContextVar(
    "senvault_subscription_executor", default=None
)
OPERATION_POLICY: ContextVar[OperationPolicy | None] = ContextVar("senvault_operation_policy", default=None)


class FrameWriter(Protocol):
    def write_frame(self, frame: bytes) -> bool:
        """Queue an encoded frame at once; False when the socket is closing."""

    def buffered(self) -> int:
        """Bytes written to the socket and not yet taken by the kernel."""


class Member:
    """One subscription handed over to its channel's fanout."""

    __slots__ = ("connection", "last", "operation_id", "subscription", "writer")

    def __init__(
        self,
        subscription: Subscription,
        operation_id: str,
        writer: FrameWriter,
        connection: Connection,
        last: int,
    ) -> None:
        self.subscription = subscription
        self.operation_id = operation_id
        self.writer = writer
        self.connection = connection
        self.last = last


class Group:
    """Members whose every event resolves to the same payload: one build, execution and encoding."""

    __slots__ = ("build", "context", "executor", "kinds", "members", "policy", "prefixes", "viewer")

    def __init__(
        self,
        viewer: Viewer,
        kinds: Container[str],
        build: Callable[[Envelope], Awaitable[object | None]],
        executor: Executor[Any],
        policy: OperationPolicy,
        context: Context,
    ) -> None:
        self.viewer = viewer
        self.kinds = kinds
        self.build = build
        self.executor = executor
        self.policy = policy
        self.context = context
        self.members: dict[Member, None] = {}
        # The message's bytes before its payload, by operation id (a socket's ids rarely change).
        self.prefixes: dict[str, bytes] = {}

    async def payload(self, envelope: Envelope) -> bytes | None:
        """The JSON of this event's `next` payload for these members; None when not for them."""
        context = self.context
        if not await accounts.still_valid(context.services, self.viewer, context.connection):
            for member in list(self.members):
                member.connection.close_soon(CLOSE_FORBIDDEN, "Signed out or token revoked")
                member.subscription.fail(
                    SubscriptionEnded("UNAUTHENTICATED", "Your session has ended; sign in again.")
                )
            return None
        # Fresh loaders for each event: the socket's context lives all day.
        context.loaders = Loaders()
        event = await self.build(envelope)
        if event is None:
            return None
        result: Any = self.executor.build_per_event_executor(event).execute_operation(False)
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        assert isinstance(result, ExecutionResult)
        body: dict[str, object] = {"data": result.data}
        if result.errors:
            shown = ExecutionResult(result.data, list(result.errors))
            self.policy.errors._process_result(shown)
            body["errors"] = [error.formatted for error in shown.errors or ()]
        extensions = self.policy.get_results()
        if extensions:
            body["extensions"] = extensions
        try:
            return orjson.dumps(body)
        except orjson.JSONEncodeError:
            return json.dumps(body, separators=(",", ":")).encode()

    def frame(self, operation_id: str, payload: bytes) -> bytes:
        prefix = self.prefixes.get(operation_id)
        if prefix is None:
            prefix = self.prefixes[operation_id] = (
                b'{"id":' + orjson.dumps(operation_id) + b',"type":"next","payload":'
            )
        return Frame(Opcode.TEXT, prefix + payload + b"}").serialize(mask=False)


class ChannelFanout:
    """Every handed-over subscription of one channel in this process, and the task that feeds them.

    Each member's hub `Subscription` forwards what the hub offers it here; the first of them to
    forward an event queues it (the rest see the same object and stop there)."""

    def __init__(self, hub: Hub, channel: str, registry: dict[str, ChannelFanout]) -> None:
        self.hub = hub
        self.channel = channel
        self._registry = registry
        self.groups: dict[Hashable, Group] = {}
        self._pending: deque[Envelope] = deque()
        self._last_offered: Envelope | None = None
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return sum(len(group.members) for group in self.groups.values())

    def offer(self, envelope: Envelope) -> None:
        if envelope is self._last_offered:
            return
        self._last_offered = envelope
        if len(self._pending) >= self.hub.max_queue:
            # This process cannot keep up with the channel: every member resubscribes from its cursor.
            self._pending.clear()
            self._fail_all(
                SubscriptionEnded(
                    "BROADCAST_INTERRUPTED", "Live delivery fell behind; resubscribe with `after`.", 1.0
                )
            )
            return
        self._pending.append(envelope)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain(), name=f"fanout:{self.channel}")

    def join(self, key: Hashable, group: Callable[[], Group], member: Member) -> None:
        found = self.groups.get(key)
        if found is None:
            found = self.groups[key] = group()
        found.members[member] = None
        member.subscription.forward = self.offer

    def leave(self, key: Hashable, member: Member) -> None:
        member.subscription.forward = None
        group = self.groups.get(key)
        if group is None:
            return
        group.members.pop(member, None)
        if not group.members:
            del self.groups[key]
            if not self.groups and self._registry.get(self.channel) is self:
                del self._registry[self.channel]

    def _fail_all(self, failure: BaseException) -> None:
        for group in list(self.groups.values()):
            for member in list(group.members):
                member.subscription.abort(failure)

    async def _drain(self) -> None:
        try:
            while self._pending:
                envelope = self._pending.popleft()
                if not self.groups:
                    continue
                try:
                    await self._deliver(envelope)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database or a resolver failed: its members end with it
                    self._fail_all(exc)
        finally:
            self._task = None

    async def _deliver(self, envelope: Envelope) -> None:
        members = [m for g in self.groups.values() for m in g.members if m.last < envelope.seq]
        if not members:
            return
        expected = min(m.last for m in members) + 1
        # Concurrent transactions publish in any order, but every number below this one has
        # committed: a gap comes from the log, once for the whole channel.
        while expected < envelope.seq:
            batch = await events.replay(self.channel, expected - 1, REPLAY_PAGE, upto=envelope.seq - 1)
            if not batch or batch[0].seq != expected:
                break
            for earlier in batch:
                if earlier.seq != expected:
                    break
                expected += 1
                await self._deliver_one(earlier)
        if expected < envelope.seq:
            # Pruned from the log (sequence numbers are dense): those still behind must reload.
            for member in members:
                if member.last < envelope.seq - 1:
                    member.subscription.fail(SubscriptionEnded(CURSOR_EXPIRED, EXPIRED_MESSAGE))
        await self._deliver_one(envelope)

    async def _deliver_one(self, envelope: Envelope) -> None:
        groups = list(self.groups.values())
        wanted = [g for g in groups if envelope.kind in g.kinds]
        payloads: list[bytes | None]
        if len(wanted) == 1:
            payloads = [await wanted[0].payload(envelope)]
        else:
            payloads = list(await asyncio.gather(*(g.payload(envelope) for g in wanted)))
        ready = dict(zip(map(id, wanted), payloads, strict=True))
        limit = self.hub.max_buffered_bytes
        seq = envelope.seq
        for group in groups:
            payload = ready.get(id(group))
            frames: dict[str, bytes] = {}
            for member in list(group.members):
                if member.last >= seq:
                    continue
                member.last = seq
                if payload is None or member.subscription.failure is not None:
                    continue
                if member.connection.close_code is not None:
                    continue
                if member.writer.buffered() > limit:
                    # The peer has stopped reading: close the socket rather than buffer without end.
                    member.connection.close_soon(CLOSE_SLOW_CONSUMER, "Slow consumer")
                    member.subscription.fail(
                        SubscriptionEnded("SLOW_CONSUMER", "Too many undelivered events; reconnect.")
                    )
                    continue
                frame = frames.get(member.operation_id)
                if frame is None:
                    frame = frames[member.operation_id] = group.frame(member.operation_id, payload)
                member.writer.write_frame(frame)


def _registry(hub: Hub) -> dict[str, ChannelFanout]:
    return hub.shared


def handover(
    context: Context,
    viewer: Viewer,
    kinds: Container[str],
    build: Callable[[Envelope], Awaitable[object | None]],
    key: Callable[[Executor[Any]], Hashable],
) -> Callable[[Subscription, int], Awaitable[NoReturn]] | None:
    """How this subscription hands its live phase to its channel's fanout, or None when it cannot
    (not a graphql-transport-ws socket served by `schema.transport.WebSocketProtocol`)."""
    operation_id = OPERATION_ID.get()
    executor = SUBSCRIPTION_EXECUTOR.get()
    policy = OPERATION_POLICY.get()
    connection = context.connection
    request = context.request
    if operation_id is None or executor is None or policy is None or connection is None:
        return None
    if not isinstance(request, WebSocket):
        return None
    writer = request.scope.get("extensions", {}).get(FRAME_WRITER)
    if writer is None:
        return None
    group_key = (
        key(executor),
        build.__qualname__,
        frozenset(kinds) if isinstance(kinds, (set, frozenset)) else id(kinds),
        viewer,
    )

    async def park(subscription: Subscription, last: int) -> NoReturn:
        registry = _registry(context.services.hub)
        fanout = registry.get(subscription.channel)
        if fanout is None:
            fanout = registry[subscription.channel] = ChannelFanout(
                context.services.hub, subscription.channel, registry
            )
        member = Member(subscription, operation_id, writer, connection, last)
        fanout.join(group_key, lambda: Group(viewer, kinds, build, executor, policy, context), member)
        try:
            raise await subscription.ended()
        finally:
            fanout.leave(group_key, member)

    return park
