"""Live events written once per shared selection, to every socket that asked alike.

A subscription on a `graphql-transport-ws` socket replays what it missed through strawberry as any
operation does (`schema.streams.stream`). Once it has caught up it is handed over here: it becomes
a `Member` of its channel's `ChannelFanout`, registered with the hub in place of its own queue, and
its task, generators and queue are let go (an idle subscription is this one small object). Per
event the fanout does, once for each `Group` (members with the same document, the same variables
below the root field, the same viewer and the same kinds of event):

1. the credential check, in memory while this process hears the control channel;
2. the event's object (`build`) and the GraphQL execution of the selection;
3. strawberry's handling of the result (errors shown with a code or masked, the cost extension);
4. the JSON of the payload, and the text frame of the whole `next` message for each operation id;

then writes those bytes to each member's socket (`FrameWriter`, the uvicorn protocol in
`schema.transport`), below the ASGI send and strawberry's per-operation loop. A thousand sockets
of one advocate cost one execution and a thousand `write` calls.

What the per-subscription path guarantees still holds. Each event reaches a member once and in
sequence order: a member's `last` moves as `stream`'s does, and a gap is read from the log once for
the channel. Nothing is written to a socket whose credential has ended. A member that ends (access
to what it reads ended, the broadcast was interrupted, a slow consumer, the database failed) is
sent what the per-subscription path sent: a `next` with the coded error, then `complete`. A socket
whose peer has stopped reading is closed with 4008 once its unsent bytes pass
`Hub.max_buffered_bytes`. A `complete` from the client, or the socket closing, removes the member
(`schema.transport.TransportWSHandler`).

SSE streams, the legacy `graphql-ws` protocol and `messageAdded` keep the per-subscription path.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Container, Hashable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from graphql import ExecutionResult, GraphQLError
from starlette.websockets import WebSocket
from websockets.frames import Frame, Opcode

from resolvers import accounts, events, metrics
from resolvers.broadcast import Hub, Subscription, SubscriptionEnded
from resolvers.connections import CLOSE_FORBIDDEN, CLOSE_SLOW_CONSUMER, Connection
from resolvers.events import Envelope
from resolvers.viewer import Viewer
from schema.context import Context
from schema.errors import subscription_ended
from schema.loaders import Loaders

if TYPE_CHECKING:
    from graphql.execution import Executor

    from schema.policy import OperationPolicy

log = logging.getLogger("senvault.fanout")

# The scope extension under which `schema.transport.WebSocketProtocol` offers its `FrameWriter`.
FRAME_WRITER = "senvault.frame_writer"

# Set in the operation's own task: by `SharedEventExecutor.build` (the executor graphql-core built
# for a subscription) and by `OperationPolicy.on_operation` (the extension instance that shapes the
# operation's results). `HANDOVER` is set by the graphql-transport-ws handler for each operation.
SUBSCRIPTION_EXECUTOR: ContextVar[Executor[Any] | None] = ContextVar(
    "senvault_subscription_executor", default=None
)
OPERATION_POLICY: ContextVar[OperationPolicy | None] = ContextVar("senvault_operation_policy", default=None)


class FrameWriter(Protocol):
    def write_frame(self, frame: bytes) -> bool:
        """Queue an encoded frame at once; False when the socket is closing."""

    def buffered(self) -> int:
        """Bytes written to the socket and not yet taken by the kernel."""


class Socket(Protocol):
    """What a member needs of the socket's protocol handler (`schema.transport.TransportWSHandler`)."""

    members: dict[str, Member]

    async def finish_operation(self, operation_id: str, payload: dict[str, object]) -> None:
        """Send a last `next` with `payload`, then `complete`, and free the operation's id."""


class Handover:
    """One graphql-transport-ws operation's way to the fanout: where its socket is, and once it has
    been handed over, its member."""

    __slots__ = ("member", "operation_id", "socket")

    def __init__(self, socket: Socket, operation_id: str) -> None:
        self.socket = socket
        self.operation_id = operation_id
        self.member: Member | None = None


HANDOVER: ContextVar[Handover | None] = ContextVar("senvault_handover", default=None)


class Member:
    """A subscription the fanout has taken over: a hub subscriber that queues nothing."""

    __slots__ = (
        "channel",
        "connection",
        "ended",
        "fanout",
        "group",
        "last",
        "operation_id",
        "socket",
        "writer",
    )

    def __init__(
        self,
        fanout: ChannelFanout,
        group: Group,
        socket: Socket,
        operation_id: str,
        writer: FrameWriter,
        connection: Connection,
        last: int,
    ) -> None:
        self.channel = fanout.channel
        self.fanout = fanout
        self.group = group
        self.socket = socket
        self.operation_id = operation_id
        self.writer = writer
        self.connection = connection
        self.last = last
        self.ended = False

    @property
    def queued(self) -> int:
        return 0

    def offer(self, envelope: Envelope) -> None:
        if not self.ended:  # the hub's pass may reach a member its fanout has just ended
            self.fanout.offer(envelope)

    def fail(self, failure: SubscriptionEnded) -> None:
        """Called by the hub (the broadcast was interrupted, access ended) and by the fanout."""
        self.end(failure)

    def end(self, reason: BaseException) -> None:
        """Stop delivering to this member and tell its client why, as the per-subscription path
        did: a `next` with the coded error, then `complete`."""
        if not self.leave():
            return
        payload = _shaped(self.group.policy, ExecutionResult(None, [_as_error(reason)]))
        task = asyncio.get_running_loop().create_task(
            self.socket.finish_operation(self.operation_id, payload)
        )
        _finishing.add(task)
        task.add_done_callback(_finishing.discard)

    def leave(self) -> bool:
        """Remove this member from everything that feeds it; False if it had already left."""
        if self.ended:
            return False
        self.ended = True
        self.fanout.hub.detach(self)
        self.fanout.leave(self)
        if self.socket.members.get(self.operation_id) is self:
            del self.socket.members[self.operation_id]
        metrics.SUBSCRIPTIONS_ACTIVE.dec()
        return True


_finishing: set[asyncio.Task[None]] = set()


def _shaped(policy: OperationPolicy, result: ExecutionResult) -> dict[str, object]:
    """A `next` payload as strawberry shapes a subscription's result: errors shown with a code or
    masked (`ErrorPolicy`), and the operation's extensions."""
    body: dict[str, object] = {"data": result.data}
    if result.errors:
        shown = ExecutionResult(result.data, list(result.errors))
        policy.errors._process_result(shown)
        body["errors"] = [error.formatted for error in shown.errors or ()]
    extensions = policy.get_results()
    if extensions:
        body["extensions"] = extensions
    return body


def _as_error(reason: BaseException) -> GraphQLError:
    if isinstance(reason, SubscriptionEnded):
        return subscription_ended(reason.code, reason.message, reason.retry_after)
    if isinstance(reason, GraphQLError):
        return reason
    return GraphQLError(str(reason), original_error=reason if isinstance(reason, Exception) else None)


class Group:
    """Members whose every event resolves to the same payload: one build, execution and encoding.

    It keeps the executor, result policy, `build` and context of the subscription that started it,
    for as long as it has members (they are the same for all of them but the socket)."""

    __slots__ = ("build", "context", "executor", "key", "kinds", "members", "policy", "viewer")

    def __init__(
        self,
        key: Hashable,
        viewer: Viewer,
        kinds: Container[str],
        build: Callable[[Envelope], Awaitable[object | None]],
        executor: Executor[Any],
        policy: OperationPolicy,
        context: Context,
    ) -> None:
        self.key = key
        self.viewer = viewer
        self.kinds = kinds
        self.build = build
        self.executor = executor
        self.policy = policy
        self.context = context
        self.members: dict[Member, None] = {}

    async def credential_ended(self) -> bool:
        """Whether the viewer's credential has ended (expired, or revoked where this process cannot
        hear revocations: then asked of the database, once for the group)."""
        services = self.context.services
        if accounts.has_expired(services, self.viewer):
            return True
        if services.connections.listening:
            return False  # a revocation closes the sockets: each member's connection tells
        return not await accounts.still_valid(services, self.viewer, None)

    async def payload(self, envelope: Envelope) -> bytes | None:
        """The JSON of this event's `next` payload for these members; None when not for them."""
        if await self.credential_ended():
            for member in list(self.members):
                member.connection.close_soon(CLOSE_FORBIDDEN, "Signed out or token revoked")
                member.end(SubscriptionEnded("UNAUTHENTICATED", "Your session has ended; sign in again."))
            return None
        # Fresh loaders for each event: the context lives as long as the group.
        self.context.loaders = Loaders()
        event = await self.build(envelope)
        if event is None:
            return None
        result: Any = self.executor.build_per_event_executor(event).execute_operation(False)
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        assert isinstance(result, ExecutionResult)
        body = _shaped(self.policy, result)
        try:
            return orjson.dumps(body)
        except orjson.JSONEncodeError:
            return json.dumps(body, separators=(",", ":")).encode()

    @staticmethod
    def frame(operation_id: str, payload: bytes) -> bytes:
        """The text frame of a `next` message. Made once per operation id per event
        (`_deliver_one`); nothing is kept per id, whose number a group's life does not bound (a
        client may give every subscription a new one)."""
        message = b'{"id":' + orjson.dumps(operation_id) + b',"type":"next","payload":' + payload + b"}"
        return Frame(Opcode.TEXT, message).serialize(mask=False)


class ChannelFanout:
    """Every member of one channel in this process, and the task that feeds them.

    The hub offers each event to every member, in one pass that never waits; the first to pass it on
    queues it here, and the rest find it last in the queue and stop there. Nothing else is kept of
    it: a channel whose queue is drained holds no event."""

    def __init__(self, hub: Hub, channel: str) -> None:
        self.hub = hub
        self.channel = channel
        self.groups: dict[Hashable, Group] = {}
        self._pending: deque[Envelope] = deque()
        self._task: asyncio.Task[None] | None = None

    def offer(self, envelope: Envelope) -> None:
        if self._pending and self._pending[-1] is envelope:
            return  # passed on already by another member, in the same pass of the hub
        if len(self._pending) >= self.hub.max_queue:
            # This process cannot keep up with the channel: every member resubscribes from its cursor.
            self._pending.clear()
            self._end_all(
                SubscriptionEnded(
                    "BROADCAST_INTERRUPTED", "Live delivery fell behind; resubscribe with `after`.", 1.0
                )
            )
            return
        self._pending.append(envelope)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    def group(self, key: Hashable, make: Callable[[], Group]) -> Group:
        found = self.groups.get(key)
        if found is None:
            found = self.groups[key] = make()
        return found

    def leave(self, member: Member) -> None:
        group = member.group
        group.members.pop(member, None)
        if not group.members and self.groups.get(group.key) is group:
            del self.groups[group.key]
            if not self.groups and self.hub.shared.get(self.channel) is self:
                del self.hub.shared[self.channel]

    def _end_all(self, reason: BaseException) -> None:
        for group in list(self.groups.values()):
            for member in list(group.members):
                member.end(reason)

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
                    self._end_all(exc)
        finally:
            self._task = None

    async def _deliver(self, envelope: Envelope) -> None:
        members = [m for g in self.groups.values() for m in g.members if m.last < envelope.seq]
        if not members:
            return
        # Concurrent transactions publish in any order, but every number below this one has
        # committed: a gap comes from the log, once for the whole channel.
        behind = min(m.last for m in members)
        if behind < envelope.seq - 1:
            try:
                async for earlier in events.catch_up(self.channel, behind, envelope.seq - 1):
                    await self._deliver_one(earlier)
            except events.CursorExpired as expired:
                # Those still behind must reload.
                for member in members:
                    if member.last < envelope.seq - 1:
                        member.end(SubscriptionEnded(events.CURSOR_EXPIRED, expired.message))
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
                if payload is None or member.connection.close_code is not None:
                    continue
                if member.writer.buffered() > limit:
                    # The peer has stopped reading: close the socket rather than buffer without end.
                    member.connection.close_soon(CLOSE_SLOW_CONSUMER, "Slow consumer")
                    member.end(SubscriptionEnded("SLOW_CONSUMER", "Too many undelivered events; reconnect."))
                    continue
                frame = frames.get(member.operation_id)
                if frame is None:
                    frame = frames[member.operation_id] = group.frame(member.operation_id, payload)
                member.writer.write_frame(frame)


def handover(
    context: Context,
    viewer: Viewer,
    kinds: Container[str],
    build: Callable[[Envelope], Awaitable[object | None]],
    key: Callable[[Executor[Any]], Hashable],
) -> Callable[[Subscription, int], bool] | None:
    """How this subscription hands its live phase to its channel's fanout, or None when it cannot
    (not a graphql-transport-ws socket served by `schema.transport.WebSocketProtocol`)."""
    slot = HANDOVER.get()
    executor = SUBSCRIPTION_EXECUTOR.get()
    policy = OPERATION_POLICY.get()
    connection = context.connection
    request = context.request
    if slot is None or executor is None or policy is None or connection is None:
        return None
    if not isinstance(request, WebSocket):
        return None
    writer: FrameWriter | None = request.scope.get("extensions", {}).get(FRAME_WRITER)
    if writer is None:
        return None
    group_key = (
        key(executor),
        build.__qualname__,
        frozenset(kinds) if isinstance(kinds, set) else id(kinds),
        viewer,
    )

    def hand_over(subscription: Subscription, last: int) -> bool:
        """Take the subscription over from `last` on; it must have nothing queued. Synchronous:
        nothing reaches the hub between its queue and the member taking its place."""
        if subscription.queued or subscription.failure is not None or connection.close_code is not None:
            return False
        hub = context.services.hub
        fanout: ChannelFanout | None = hub.shared.get(subscription.channel)
        if fanout is None:
            fanout = hub.shared[subscription.channel] = ChannelFanout(hub, subscription.channel)
        group = fanout.group(
            group_key, lambda: Group(group_key, viewer, kinds, build, executor, policy, context)
        )
        member = Member(fanout, group, slot.socket, slot.operation_id, writer, connection, last)
        group.members[member] = None
        hub.attach(member)
        slot.socket.members[slot.operation_id] = member
        slot.member = member
        return True

    return hand_over
