"""One database connection per HTTP request.

Through the ORM's pool every statement checks a connection out and back in, and asyncpg resets a
connection each time it goes back (a round trip of its own): a page of five statements made ten
round trips. Inside `request_scope()` the ORM's default connection is a `_PinnedClient`: the first
statement takes one connection from the pool, every later statement and transaction of the request
runs on it, one at a time, and it goes back (and is reset) once, when the request is answered.

A request that sends no statement (`{ __typename }`, a refusal) takes no connection. SQLite has one
connection anyway, so there the scope only marks the request (`in_request`), which tests use to
count a request's statements apart from the sweeper's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import TransactionContext
from tortoise.connection import connections
from tortoise.exceptions import TransactionManagementError

ALIAS = "default"

_in_request: ContextVar[bool] = ContextVar("senvault_in_request", default=False)


def in_request() -> bool:
    """Whether the current task serves an HTTP request (inside `request_scope`)."""
    return _in_request.get()


class _PinnedClient(AsyncpgDBClient):
    """The pool's client, bound to one connection from its first statement until `release`."""

    def __init__(self, pooled: AsyncpgDBClient) -> None:
        # The pooled client's settings, pool and executor, without running its constructor.
        self.__dict__.update(pooled.__dict__)
        self._pooled = pooled
        self._lock = asyncio.Lock()
        self._connection = None
        self._released = False

    def acquire_connection(self) -> Any:
        # After release (a task the request started and left running): back to the pool.
        return self._pooled.acquire_connection() if self._released else _Held(self)

    def _in_transaction(self) -> TransactionContext:
        return self._pooled._in_transaction() if self._released else _PinnedTransaction(self)

    async def hold(self) -> asyncpg.Connection:
        """The request's connection, taken from the pool on first use. Call with `_lock` held."""
        if self._connection is None:
            async with _Held(self._pooled):
                pass  # creates the pool if it was closed (the database came back)
            pool = self._pooled._pool
            assert pool is not None
            self._connection = await pool.acquire()
        return self._connection

    async def release(self) -> None:
        async with self._lock:
            self._released = True
            connection, self._connection = self._connection, None
        pool = self._pooled._pool
        if connection is not None and pool is not None:
            await pool.release(connection)


class _Held:
    """`acquire_connection()` of a pinned client: its one connection, one statement at a time.
    On the pooled client: creates the pool if needed (as the ORM's own wrapper does)."""

    def __init__(self, client: AsyncpgDBClient) -> None:
        self.client = client

    async def __aenter__(self) -> asyncpg.Connection | None:
        client = self.client
        if not isinstance(client, _PinnedClient):
            if client._pool is None:
                async with client._pool_init_lock:
                    if client._pool is None:
                        await client.create_connection(with_db=True)
            return None
        await client._lock.acquire()
        try:
            return await client.hold()
        except BaseException:
            client._lock.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        if isinstance(self.client, _PinnedClient):
            self.client._lock.release()


class _PinnedTransaction(TransactionContext):
    """A transaction on the request's connection, which it has to itself until it ends: the
    request's other statements (resolvers running alongside) wait rather than land inside it.
    (The pool's own transaction takes a second connection, and N requests holding N connections
    could then wait for ever on a pool of N.)"""

    def __init__(self, pinned: _PinnedClient) -> None:
        self.pinned = pinned
        self.connection_name = pinned.connection_name

    async def __aenter__(self) -> TransactionWrapper:
        await self.pinned._lock.acquire()
        try:
            await self.pinned.hold()
            # Its own lock: its statements run while the request's lock is held for it.
            client = TransactionWrapper(self.pinned)
            self.client = client
            self.token = connections.set(self.connection_name, client)
            try:
                await client.begin()
            except BaseException:
                connections.reset(self.token)
                raise
        except BaseException:
            self.pinned._lock.release()
            raise
        return client

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        try:
            if not self.client._finalized:
                if exc_type is None:
                    await self.client.commit()
                elif exc_type is not TransactionManagementError:
                    await self.client.rollback()
        finally:
            connections.reset(self.token)
            self.pinned._lock.release()


@asynccontextmanager
async def request_scope() -> AsyncIterator[None]:
    """Serve one request on one database connection (PostgreSQL), released when it ends."""
    marker = _in_request.set(True)
    pinned: _PinnedClient | None = None
    token = None
    try:
        pooled = connections.get(ALIAS)
        if isinstance(pooled, AsyncpgDBClient) and not isinstance(pooled, TransactionWrapper):
            pinned = _PinnedClient(pooled)
            token = connections.set(ALIAS, pinned)
        yield
    finally:
        if token is not None:
            connections.reset(token)
        if pinned is not None:
            await pinned.release()
        _in_request.reset(marker)
