"""The garbage collector's policy (resolvers/collector.py) in the served app: after a slow full
collection, what survived it (idle sockets above all) is frozen out of the next ones; a closed
socket's objects, frozen in reference cycles, are given back and freed once enough sockets have
closed; and operators see both on `/metrics`.

The app runs in this process (tests/conftest.py), so the test looks at the collector's own lists:
a frozen object is in none of the generations `gc.get_objects()` walks."""

from __future__ import annotations

import asyncio
import gc
import types
import weakref
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager

from tortoise import connections
from websockets.http11 import Request

from resolvers.collector import COLLECTOR
from schema.transport import TransportWSHandler, WebSocketProtocol, _HandshakeLinesAtDebug
from tests.client import GraphQLClient, Socket, eventually
from tests.factories import PASSWORD, Account, sign_up, user_cursor
from tests.test_metrics import _scrape, _value
from tests.test_multiprocess import LOG_IN, NOTIFICATIONS

SOCKETS = 8
DUE = 4


@contextmanager
def _policy(slow_seconds: float | None) -> Iterator[None]:
    """The installed policy with a threshold the test decides and a reclaim after `DUE` closes."""
    saved = (COLLECTOR.slow_seconds, COLLECTOR.min_closes, COLLECTOR.reclaim_share, COLLECTOR.reclaim_delay)
    COLLECTOR.slow_seconds, COLLECTOR.min_closes, COLLECTOR.reclaim_share = slow_seconds, DUE, 0.0
    COLLECTOR.closed_since_freeze = 0
    try:
        yield
    finally:
        (COLLECTOR.slow_seconds, COLLECTOR.min_closes, COLLECTOR.reclaim_share, COLLECTOR.reclaim_delay) = (
            saved
        )
        # The later tests of this process run with nothing held for a reclaim, as with the policy
        # off: their closes are not counted towards an unfreeze and a full collection.
        if COLLECTOR.reclaim_due:  # the test failed between the due close and its reclaim
            COLLECTOR.reclaim()
        COLLECTOR.holding = False
        COLLECTOR.closed_since_freeze = 0
        COLLECTOR.closes_due = COLLECTOR.min_closes


def _walked_protocols() -> list[WebSocketProtocol]:
    """The websocket protocols in the generations a full collection walks (not the frozen ones)."""
    # By type: `isinstance` on a weak proxy whose object has gone raises.
    return [o for o in gc.get_objects() if issubclass(type(o), WebSocketProtocol)]


async def _live_sockets(
    gql: GraphQLClient, stack: AsyncExitStack, family: Account, cursor: str
) -> list[Socket]:
    """SOCKETS sockets of the family, each with a live subscription that has caught up."""
    sockets: list[Socket] = []
    operations: list[str] = []
    for _ in range(SOCKETS):
        sock = await stack.enter_async_context(gql.socket(family.token))
        await sock.ack()
        operations.append(await sock.subscribe(NOTIFICATIONS, {"after": cursor}))
        sockets.append(sock)
    # A sign-in notifies the family: every subscription has caught up and is live.
    await gql.data(LOG_IN, {"e": family.email, "p": PASSWORD})
    for sock, op in zip(sockets, operations, strict=True):
        await sock.next_event(op)
    return sockets


async def test_idle_sockets_are_frozen_out_of_full_collections_and_closed_ones_given_back(
    gql: GraphQLClient,
) -> None:
    assert COLLECTOR.installed
    family = await sign_up(gql)
    cursor = await user_cursor(family)
    before = await _scrape(gql)
    async with AsyncExitStack() as stack:
        sockets = await _live_sockets(gql, stack, family, cursor)
        with _policy(None):
            gc.collect()  # no freeze: only measured
            protocols = [p for p in _walked_protocols() if not p.transport.is_closing()]
            assert len(protocols) == SOCKETS
            closing = sockets[:DUE]
            # uvicorn's tasks that run the app, one a socket (or request) until it has ended.
            server_tasks: set[asyncio.Task[None]] = protocols[0].tasks
            running = len(server_tasks)

            async def ended(count: int) -> bool:
                return len(server_tasks) <= running - count

            alive = [weakref.ref(p) for p in protocols]
            del protocols
            freezes = COLLECTOR.freezes

            # A slow full collection (here: any) freezes what survived it, these sockets included.
            COLLECTOR.slow_seconds = 0.0
            gc.collect()
            assert COLLECTOR.freezes == freezes + 1
            assert _walked_protocols() == []
            assert all(ref() is not None for ref in alive)

            # Closing fewer sockets than are due schedules nothing.
            COLLECTOR.slow_seconds = None
            # Run by the test once the server has finished with the closed sockets.
            COLLECTOR.reclaim_delay = 3600
            for sock in closing[: DUE - 1]:
                await sock.ws.close()
            await eventually(lambda: ended(DUE - 1), "the server has finished with three sockets")
            assert COLLECTOR.closed_since_freeze == DUE - 1
            assert not COLLECTOR.reclaim_due

            # The close that is due schedules a reclaim: everything given back, collected, frozen again.
            await closing[DUE - 1].ws.close()
            await eventually(lambda: ended(DUE), "the server has finished with four sockets")
            assert COLLECTOR.reclaim_due
            reclaims = COLLECTOR.reclaims
            COLLECTOR.reclaim()
            assert not COLLECTOR.reclaim_due
            assert COLLECTOR.reclaims == reclaims + 1
            assert COLLECTOR.closed_since_freeze == 0
            # What is still alive is frozen again: the open sockets, and any closed one something
            # still holds for a moment (a cancelled timer until its moment: docs/decisions.md).
            assert _walked_protocols() == []
            still = [ref() for ref in alive]
            still_open = [p for p in still if p is not None and not p.transport.is_closing()]
            assert len(still_open) == SOCKETS - DUE
            del still, still_open
            after = await _scrape(gql)

    assert _value(after, "senvault_gc_freezes_total") >= _value(before, "senvault_gc_freezes_total") + 1
    assert _value(after, "senvault_gc_reclaims_total") >= _value(before, "senvault_gc_reclaims_total") + 1
    assert _value(after, "senvault_gc_full_collection_seconds_count") >= (
        _value(before, "senvault_gc_full_collection_seconds_count") + 3
    )
    # Given back at the reclaim; the sockets still open close after this.
    assert _value(after, "senvault_gc_closed_sockets_frozen") == 0


async def test_an_idle_socket_keeps_nothing_of_its_finished_work(gql: GraphQLClient) -> None:
    """Objects every full collection walks, for as long as a socket is open. Once `connection_init`
    is acknowledged, the handler lets go of the timer that would have closed it (kept, the
    cancelled task held its CancelledError, two tracebacks and two frames). Once a subscription is
    handed over to the fanout, it lets go of the operation's finished task (and its context)."""
    family = await sign_up(gql)
    async with AsyncExitStack() as stack:
        await _live_sockets(gql, stack, family, await user_cursor(family))
        gc.collect()
        handlers = [
            o for o in gc.get_objects() if isinstance(o, TransportWSHandler) and o.connection_acknowledged
        ]
        assert len(handlers) >= SOCKETS
        assert [h for h in handlers if h.connection_init_timeout_task is not None] == []
        # One logger adapter for uvicorn's logger and one for the websockets library's, whatever
        # the number of sockets.
        assert len([o for o in gc.get_objects() if isinstance(o, _HandshakeLinesAtDebug)]) <= 2
        members = [(h, op_id) for h in handlers for op_id in h.members]
        assert len(members) >= SOCKETS
        assert [op_id for h, op_id in members if h.operations[op_id].task is not None] == []
        held = [
            o
            for o in gc.get_objects()
            if isinstance(o, asyncio.CancelledError)
            and o.__traceback__ is not None
            and o.__traceback__.tb_frame.f_code.co_name == "handle_connection_init_timeout"
        ]
        assert held == []
        # Sockets wait under no layer that is not theirs: not Starlette's app and middleware, not
        # Starlette's `receive_text` and `receive` (schema/transport.SocketAdapter reads the ASGI
        # `receive` itself).
        waiting = [
            o.cr_code.co_qualname
            for o in gc.get_objects()
            if isinstance(o, types.CoroutineType)
            and o.cr_frame is not None
            and o.cr_code.co_qualname
            in {"Starlette.__call__", "GraphQL.__call__", "WebSocket.receive", "WebSocket.receive_text"}
        ]
        assert waiting == []
        # The websockets parser keeps the handshake's request for as long as the socket is open:
        # its headers are emptied once the socket is accepted (the scope has its own copy).
        protocols = [p for p in _walked_protocols() if p.handshake_complete]
        parsers = [p.conn.parser for p in protocols]
        frames = [g.gi_frame for g in parsers if isinstance(g, types.GeneratorType) and g.gi_frame]
        handshakes = [r for r in (f.f_locals.get("request") for f in frames) if isinstance(r, Request)]
        assert len(handshakes) >= SOCKETS
        assert [dict(o.headers) for o in handshakes if len(o.headers)] == []


async def test_a_closed_socket_is_garbage_once_the_server_has_finished_with_it(gql: GraphQLClient) -> None:
    """Nothing the process keeps after a socket's operations keeps their context, which reaches the
    socket: not a pooled PostgreSQL or Redis connection one of them opened (its transport runs its
    callbacks in the context it was opened in), not the pool's timer for a connection given back
    (`resolvers.apart`). The pool's connections are replaced first, so that the sockets'
    subscriptions open new ones."""
    family = await sign_up(gql)
    cursor = await user_cursor(family)
    pool = getattr(connections.get("default"), "_pool", None)
    if pool is not None:  # PostgreSQL
        await pool.expire_connections()
    earlier = _walked_protocols()
    async with AsyncExitStack() as stack:
        await _live_sockets(gql, stack, family, cursor)
        protocols = [p for p in _walked_protocols() if not any(p is e for e in earlier)]
        assert len(protocols) == SOCKETS
        server_tasks: set[asyncio.Task[None]] = protocols[0].tasks
        running = len(server_tasks)
        mine = [weakref.ref(p) for p in protocols]
        del protocols

    async def finished() -> bool:
        return len(server_tasks) <= running - SOCKETS

    await eventually(finished, "the server has finished with the sockets")

    async def collected() -> bool:
        # A cancelled timer keeps its context until its moment (asyncio's own loop; uvloop lets go
        # at once): those set by the sockets' operations are due within moments. A pooled
        # connection would keep its context for as long as it is open.
        gc.collect()
        return all(ref() is None for ref in mine)

    await eventually(collected, "the closed sockets are collected")
