"""Subscriptions over Server-Sent Events (GraphQL over SSE, distinct connections mode), for
integrators behind proxies that break websockets.

A `POST /graphql` with `Accept: text/event-stream` and a subscription streams `event: next`
messages and ends with `event: complete` (strawberry's SSE transport). Everything a websocket
subscription has, it has too: the same resolvers, cursors (`after`) and access checks, since it
runs the same subscription fields. What a websocket gets from its connection, a stream gets here:
it counts against `MAX_SOCKETS_PER_CREDENTIAL`, and it is registered as a connection of its
credential (`resolvers/connections.py`), so a sign-out or a revoked token anywhere ends it at once,
with an `UNAUTHENTICATED` error as its last message, as it closes a socket with 4403.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from graphql import GraphQLError
from strawberry.types import ExecutionResult

from resolvers.connections import CLOSE_FORBIDDEN, CLOSE_SLOW_CONSUMER, Connection
from resolvers.viewer import Viewer
from schema.context import Context

# Why a stream was ended from outside, by the close code a websocket would have been given.
ENDED = {
    CLOSE_FORBIDDEN: ("Your session has ended; sign in again.", "UNAUTHENTICATED"),
    CLOSE_SLOW_CONSUMER: (
        "Events were not read fast enough; subscribe again with `after` to resume.",
        "SLOW_CONSUMER",
    ),
}


class StreamConnection(Connection):
    """An SSE stream in the registry of open connections: closing it ends the stream."""

    def __init__(self, viewer: Viewer) -> None:
        self.ended = asyncio.Event()

        async def end(code: int, reason: str) -> None:
            self.ended.set()

        super().__init__(viewer, end)


async def until_closed(
    results: AsyncIterator[Any], connection: StreamConnection, context: Context
) -> AsyncGenerator[Any, None]:
    """The stream's results until it ends by itself or its connection is closed; registered as
    a connection of its credential meanwhile."""
    registry = context.services.connections
    registry.add(connection)
    ended = asyncio.ensure_future(connection.ended.wait())
    try:
        while True:
            following = asyncio.ensure_future(anext(results))
            await asyncio.wait({following, ended}, return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await following
                message, code = ENDED.get(connection.close_code or CLOSE_FORBIDDEN, ENDED[CLOSE_FORBIDDEN])
                yield ExecutionResult(data=None, errors=[GraphQLError(message, extensions={"code": code})])
                return
            try:
                yield following.result()
            except StopAsyncIteration:
                return
    finally:
        ended.cancel()
        registry.discard(connection)
        aclose = getattr(results, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
