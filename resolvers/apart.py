"""Work that outlives the operation that starts it, done without that operation's context.

What the event loop keeps runs in the context it was made in: a connection's transport runs its
callbacks there for as long as it is open, and a timer keeps its context until its moment, even
once cancelled. An operation's context reaches its socket (the subscription's hand-over, its
executor and request), so a pooled connection a subscription happened to open kept that socket,
closed or not, for as long as the pool kept the connection. Work started through `apart` makes
those things in an empty context instead.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection

T = TypeVar("T")


async def apart(work: Coroutine[Any, Any, T]) -> T:
    """`work`'s result, `work` run in a task with an empty context (cancelled with the caller)."""
    return await asyncio.get_running_loop().create_task(work, context=contextvars.Context())


_redis_classes: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def open_connections_apart(client: Redis) -> None:
    """Have `client`'s pool open its connections through `apart`: a subclass of the connection
    class redis-py chose for the URL (TCP, TLS or a Unix socket), made once per class."""
    pool = client.connection_pool
    base = pool.connection_class
    made = _redis_classes.get(base)
    if made is None:

        class Apart(base):  # type: ignore[valid-type,misc]
            async def _connect(self) -> None:
                await apart(super()._connect())

        Apart.__name__ = Apart.__qualname__ = f"{base.__name__}Apart"
        made = _redis_classes[base] = Apart
    pool.connection_class = made
