"""The shape every subscription shares: replay from the log after a cursor, then go live.

Error codes a subscription ends with (`extensions.code`), and what a client should do:
- BROADCAST_INTERRUPTED: live delivery stopped (the server lost Redis, or is shutting down).
  Wait `extensions.retryAfterMs` (jittered, see `resolvers.broadcast.retry_hint`), then resubscribe
  with `after` set to the last cursor received; retry while it is refused the same way.
- SLOW_CONSUMER: the client fell too far behind; the socket is closed with 4008. Reconnect and
  resubscribe with `after`.
- CURSOR_EXPIRED: the events after that cursor are older than the log keeps. Reload the current
  state (queries), then subscribe without `after`.
- UNAUTHENTICATED: the session or token has ended; the socket is closed with 4403. Sign in again.
- BAD_USER_INPUT: the cursor is not one of this subscription's.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Container, Hashable, Mapping
from contextvars import ContextVar
from functools import partial
from typing import Any, Generic, TypeVar

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    Visitor,
    visit,
)
from strawberry.dataloader import DataLoader
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from tortoise.models import Model

from resolvers import accounts, db, events, metrics
from resolvers.access import core
from resolvers.broadcast import Subscription, SubscriptionEnded
from resolvers.connections import CLOSE_FORBIDDEN, CLOSE_SLOW_CONSUMER
from resolvers.errors import UserError
from resolvers.events import Envelope
from resolvers.viewer import Viewer
from schema import event_plans, fanout
from schema.context import Info
from schema.documents import PerOperation
from schema.errors import subscription_ended
from schema.loaders import Loaders

T = TypeVar("T")
M = TypeVar("M", bound=Model)


async def stream(
    info: Info,
    viewer: Viewer,
    channel: str,
    after: str | None,
    kinds: Container[str],
    handover: Callable[[Subscription, int], bool] | None = None,
    on_page: Callable[[list[Envelope]], object] | None = None,
) -> AsyncIterator[Envelope]:
    """Events of `kinds` on `channel`: those after `after` from the log, then live, each once, in order.

    Before each event the viewer's credential is checked again (in memory for a socket, see
    `accounts.still_valid`) and the request's loaders are renewed, so nothing is delivered from a
    revoked session or out of a stale cache. With `handover` (`schema.fanout`), once the replay has
    caught up the subscription is handed to its channel's fanout, which delivers the live events,
    and this ends without another event. `on_page` is shown each page of events read from the log
    before its events are yielded (`events_for` starts their work together).
    """
    services = info.context.services
    try:
        after_seq = None if after is None else events.decode_cursor(after, channel)
    except UserError as exc:
        raise subscription_ended("BAD_USER_INPUT", exc.message) from exc
    await _authorise(info, viewer)
    connection = info.context.connection

    def overflowed() -> None:
        # The socket's sends are blocked (the peer stopped reading): close it from outside.
        if connection is not None:
            connection.close_soon(CLOSE_SLOW_CONSUMER, "Slow consumer")

    # Subscribe before reading the log: what commits meanwhile waits in the live queue, and the
    # sequence check below drops what the replay already delivered.
    metrics.SUBSCRIPTIONS_ACTIVE.inc()  # while it runs (`/metrics`); a fanout member takes it over
    handed_over = False
    try:
        async with services.hub.subscribe(channel, on_overflow=overflowed) as live:
            if after_seq is None:
                head = await events.head(channel)
                first: list[Envelope] = []
            else:
                head, first = await events.head_and_replay(channel, after_seq, events.REPLAY_PAGE)
            last = head
            if after_seq is not None:
                if after_seq > head:
                    raise subscription_ended(
                        "BAD_USER_INPUT", "This cursor does not belong to this subscription."
                    )
                last = after_seq
                async for envelope in _catch_up(channel, last, head, first, on_page):
                    last = envelope.seq
                    if envelope.kind in kinds:
                        await _authorise(info, viewer)
                        yield envelope
            # Caught up: the live phase may last all day, and holds no database connection.
            await db.release_scope()
            while True:
                if handover is not None and handover(live, last):
                    handed_over = True
                    return
                try:
                    envelope = await live.next()
                except SubscriptionEnded as exc:
                    raise subscription_ended(exc.code, exc.message, exc.retry_after) from exc
                if envelope.seq <= last:
                    continue
                if envelope.seq > last + 1:
                    # Concurrent transactions publish in any order, but every number below this one
                    # has committed (sequence order is commit order): take the gap from the log.
                    async for missed in _catch_up(channel, last, envelope.seq - 1, on_page=on_page):
                        last = missed.seq
                        if missed.kind in kinds:
                            await _authorise(info, viewer)
                            yield missed
                last = envelope.seq
                if envelope.kind in kinds:
                    await _authorise(info, viewer)
                    yield envelope
    finally:
        if not handed_over:
            metrics.SUBSCRIPTIONS_ACTIVE.dec()


# The live event the current subscription is about to have executed, and what this process's
# subscribers share of it: set by `events_for` just before it yields, read by `SharedEventExecutor`
# as graphql-core executes that yield (same task, nothing runs in between).
_delivering: ContextVar[tuple[object, dict[Hashable, Any]] | None] = ContextVar(
    "senvault_delivering", default=None
)


class SharedEventExecutor(StrawberryGraphQLCoreExecutionContext):
    """Executes a live event's selection once per (document, variables it uses, viewer).

    A thousand sockets of one advocate subscribed with one document get one execution and one
    result for each event; each subscriber's extensions still see the result on their own. The
    subscription's own arguments (`after`) do not count: only variables used below its root field
    change what an event resolves to."""

    def __copy__(self) -> SharedEventExecutor:
        # graphql-core copies the executor for every subscription event (`build_per_event_executor`):
        # the generic `copy.copy`, through `__reduce_ex__`, was 4% of a live event's CPU. The same
        # shallow copy, directly.
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        # graphql-core's copy shares the subscription's memo of collected subfields with every
        # event, keyed by the identity of field lists made anew for each event: it never hit after
        # the first level and kept ~26 objects per event delivered, for as long as the subscription
        # lived (a dashboard open all day; and the collector walked them all). Each event gets its
        # own memo (still shared within the event, where lists of values repeat its fields).
        executor._relevant_sub_fields = {}
        return executor

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        built = super().build(*args, **kwargs)
        if isinstance(built, SharedEventExecutor) and built.operation.operation is OperationType.SUBSCRIPTION:
            # For `schema.fanout`, which executes this subscription's later events itself.
            fanout.SUBSCRIPTION_EXECUTOR.set(built)
        return built

    def execute_operation(self, serially: bool | None = None) -> Any:
        delivering = _delivering.get()
        if delivering is None or delivering[0] is not self.root_value:
            return self._execute_event(serially)
        shared = delivering[1]
        key = ("result", _group_key(self), self.context_value.viewer)
        entry = shared.get(key)
        if entry is None or entry[0] is not self.operation:
            result = self._execute_event(serially)
            if not inspect.isawaitable(result):
                shared[key] = (self.operation, result)
                return result
            entry = shared[key] = (self.operation, _started(result))
        return _own_copy(entry[1])

    def _execute_event(self, serially: bool | None) -> Any:
        """An event by its document's plan (`schema.event_plans`) where it has one and nothing
        else takes part in executing it (no middleware, hooks or abort signal); by graphql-core
        otherwise, and whenever the plan gives up on the event."""
        manager = self.middleware_manager
        if (
            self.operation.operation is OperationType.SUBSCRIPTION
            and (manager is None or not manager.middlewares)
            and self.hooks is None
            and self.abort_signal is None
        ):
            plan = event_plans.plan_for(self)
            if plan is not None:
                try:
                    return ExecutionResult(plan(self.root_value), None)
                except Exception:  # the plan gave up, or a read raised: graphql-core reports it
                    pass
        return super().execute_operation(serially)


def _group_key(executor: Any) -> Hashable:
    """What an event's execution depends on besides the event and the viewer: the operation, the
    variables used below its root fields, and the address the client reached this server at (a
    URL in the payload, such as a download link, is built from it)."""
    request = getattr(executor.context_value, "request", None)
    # Starlette keeps a connection's base URL once made: not worked out again for every event.
    base = str(request.base_url) if request is not None else ""
    variables = executor.variable_values.coerced
    used = _selection_variables(executor.operation, executor.fragment_definitions)
    if not used:  # most selections: no variable below the root field
        return (id(executor.operation), "{}", base)
    used_values = json.dumps({k: variables.get(k) for k in sorted(used)}, default=str)
    return (id(executor.operation), used_values, base)


async def _own_copy(shared: Any) -> ExecutionResult:
    result = await asyncio.shield(shared) if isinstance(shared, asyncio.Future) else shared
    # Extensions may add to the errors of the result they are given: each subscriber gets its own.
    return ExecutionResult(result.data, list(result.errors) if result.errors else None, result.extensions)


_variables_of: PerOperation[frozenset[str]] = PerOperation()


def _selection_variables(
    operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> frozenset[str]:
    """The variables an event's execution can depend on: those below the root fields, in the
    root fields' directives and in the document's fragments; not the root fields' arguments."""
    return _variables_of.get(operation, _variables_below_root, operation, fragments)


def _variables_below_root(
    operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> frozenset[str]:
    names: set[str] = set()

    class Collect(Visitor):
        def enter_variable(self, node: VariableNode, *_: Any) -> None:
            names.add(node.name.value)

    for selection in operation.selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.selection_set is not None:
                visit(selection.selection_set, Collect())
            for directive in selection.directives or ():
                visit(directive, Collect())
        else:
            visit(selection, Collect())
    for fragment in fragments.values():
        visit(fragment, Collect())
    return frozenset(names)


class LiveRows(Generic[M]):
    """The rows live events name, for every subscriber of this process that asks in the same moment
    (one event reaching many viewers, or a burst of events) in one query; each row is shown only to
    a viewer the access module's `rule` lets see it (`resolvers.access.core.fetch_each`)."""

    def __init__(self, model: type[M], rule: Callable[[Viewer | None, M], bool], *related: str) -> None:
        self._model = model
        self._rule = rule
        self._related = related
        self._loader: DataLoader[tuple[Viewer, object], M | None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def get(self, viewer: Viewer, raw_id: object) -> M | None:
        loop = asyncio.get_running_loop()
        if self._loader is None or self._loop is not loop:
            self._loader = DataLoader(self._load, cache=False, max_batch_size=500)
            self._loop = loop
        return await self._loader.load((viewer, raw_id))

    async def _load(self, wanted: list[tuple[Viewer, object]]) -> list[M | None]:
        return await core.fetch_each(self._model, wanted, self._rule, *self._related)


async def events_for(
    info: Info,
    viewer: Viewer,
    channel: str,
    after: str | None,
    kinds: Container[str],
    build: Callable[[Envelope], Awaitable[T | None]],
) -> AsyncIterator[T]:
    """`stream`'s events, each made into what the subscription yields by `build` (None: not for
    this viewer). A live event's `build` runs once per viewer in this process, however many
    sockets that viewer has subscribed: every one of them is sent the same object."""
    park = fanout.handover(info.context, viewer, kinds, build, _group_key)
    key = (build.__qualname__, viewer)

    def start_page(page: list[Envelope]) -> None:
        # A page read from the log (a resume, a gap): every event's `build` starts now, so the rows
        # they name are read together (`LiveRows`: one statement a page, not one an event). Each is
        # still sent only after the credential is checked again before it.
        for envelope in page:
            if envelope.kind in kinds and key not in envelope.shared:
                envelope.shared[key] = _started(build(envelope))

    async for envelope in stream(info, viewer, channel, after, kinds, park, start_page):
        event = await once(envelope, key, partial(build, envelope))
        if event is not None:
            # Not reset in a `finally`: the stream may be closed from another task.
            _delivering.set((event, envelope.shared))
            yield event
            _delivering.set(None)


async def once(envelope: Envelope, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
    """`compute()` for the first subscriber asking with `key`; the others await its result.

    It runs in a task of its own, so a subscriber cancelled meanwhile (its socket closed) cancels
    only its own wait, never the others'."""
    task: asyncio.Future[T] | None = envelope.shared.get(key)
    if task is None:
        task = envelope.shared[key] = _started(compute())
    return await asyncio.shield(task)


def _started(work: Awaitable[T]) -> asyncio.Future[T]:
    """Shared work in a task of its own, its outcome retrieved even when every subscriber waiting
    for it has gone (no "exception was never retrieved")."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(_retrieve)
    return task


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def _catch_up(
    channel: str,
    after_seq: int,
    upto: int,
    first: list[Envelope] | None = None,
    on_page: Callable[[list[Envelope]], object] | None = None,
) -> AsyncIterator[Envelope]:
    """`events.catch_up`, its CursorExpired as the subscription's CURSOR_EXPIRED."""
    try:
        async for envelope in events.catch_up(channel, after_seq, upto, first, on_page):
            yield envelope
    except events.CursorExpired as exc:
        raise subscription_ended(events.CURSOR_EXPIRED, exc.message) from exc


async def _authorise(info: Info, viewer: Viewer) -> None:
    if not await accounts.still_valid(info.context.services, viewer, info.context.connection):
        if info.context.connection is not None:
            info.context.connection.close_soon(CLOSE_FORBIDDEN, "Signed out or token revoked")
        raise subscription_ended("UNAUTHENTICATED", "Your session has ended; sign in again.")
    info.context.loaders = Loaders()
