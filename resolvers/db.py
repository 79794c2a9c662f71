"""One database connection per HTTP request.

Through the ORM's pool every statement checks a connection out and back in, and asyncpg resets a
connection each time it goes back (a round trip of its own): a page of five statements made ten
round trips. Inside `request_scope()`, the PostgreSQL client (`RequestScopedClient`, the engine
`server.tortoise_config` names for PostgreSQL URLs) runs every statement of the request on one
connection: taken from the pool at the request's first statement, used one statement at a time,
and given back (and reset) once, when the request is answered. A transaction in the request runs
on that connection and has it to itself until it ends.

Going back to the pool, a connection's open transaction (if any) is rolled back, but asyncpg's
reset query (`pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`) is not sent: the service
keeps no state in a session (no advisory locks, cursors held outside a transaction, LISTEN or
session `SET`), so that round trip cleared nothing, on every request.

A request that sends no statement (`{ __typename }`, a refusal) takes no connection, and costs one
context variable. SQLite has one connection anyway: there the scope only marks the request
(`in_request`), which tests use to count a request's statements apart from the sweeper's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from typing import Any

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import TransactionalDBClient, TransactionContext
from tortoise.connection import connections
from tortoise.exceptions import TransactionManagementError
from tortoise.models import Model

from resolvers.apart import apart


class _Scope:
    """One request's connection: none until its first statement."""

    __slots__ = ("closed", "connection", "lock", "pool")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.connection: asyncpg.Connection | None = None
        self.pool: asyncpg.Pool | None = None
        # Once the request is answered: a task it left running goes back to the pool.
        self.closed = False

    async def hold(self, client: AsyncpgDBClient) -> asyncpg.Connection:
        """The request's connection, taken on first use. Call with `lock` held."""
        if self.connection is None:
            if client._pool is None:
                async with client._pool_init_lock:
                    if client._pool is None:
                        await client.create_connection(with_db=True)
            assert client._pool is not None
            self.pool = client._pool
            self.connection = await client._pool.acquire()
        return self.connection

    async def release(self) -> None:
        if self.connection is None and not self.lock.locked():
            self.closed = True  # no statement ran, and none is taking a connection
            return
        async with self.lock:
            self.closed = True
            connection, self.connection = self.connection, None
        if connection is not None and self.pool is not None:
            await self.pool.release(connection)


_scope: ContextVar[_Scope | None] = ContextVar("senvault_request_scope", default=None)


def in_request() -> bool:
    """Whether the current task serves an HTTP request (inside `request_scope`)."""
    return _scope.get() is not None


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The pool's reset of a connection it takes back, after asyncpg's own rollback of a stray
    transaction: nothing more (see the module's docstring)."""


async def _connect_apart(*args: Any, **kwargs: Any) -> asyncpg.Connection:
    """A new pooled connection, opened without the context of the operation that needed it: the
    connection outlives the operation (`resolvers.apart`)."""
    return await apart(asyncpg.connect(*args, **kwargs))


class RequestScopedClient(AsyncpgDBClient):
    """The ORM's PostgreSQL client: pooled, except inside `request_scope()`."""

    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        # Prepared statements stay cached (up to asyncpg's 100 a connection) without a lifetime:
        # the lifetime's timer would keep the context of the request that first prepared each
        # statement, and with it that request's socket, for five minutes (resolvers/collector.py).
        kwargs.setdefault("max_cached_statement_lifetime", 0)
        # Idle connections are not closed after five minutes, for the same reason: that timer is set
        # each time a connection goes back, in the context of the operation that gave it back. A
        # connection opened for a burst stays open (the pool holds at most `maxsize`).
        kwargs.setdefault("max_inactive_connection_lifetime", 0)
        return await asyncpg.create_pool(None, reset=_keep_session, connect=_connect_apart, **kwargs)

    def acquire_connection(self) -> Any:
        scope = _scope.get()
        if scope is None or scope.closed:
            return super().acquire_connection()
        return _Held(self, scope)

    def _in_transaction(self) -> TransactionContext:
        scope = _scope.get()
        if scope is None or scope.closed:
            return super()._in_transaction()
        return _ScopedTransaction(self, scope)


# The engine module Tortoise loads for PostgreSQL URLs (`server.tortoise_config`).
client_class = RequestScopedClient


class _Held:
    """The request's connection for one statement, one statement at a time. A statement that waited
    behind the scope's `release` runs on a connection of its own from the pool, given back after it:
    it must not take a connection into a scope that has closed, where nothing would give it back
    (or, after `release_scope`, where a subscription would hold it for as long as it is live)."""

    __slots__ = ("client", "pooled", "scope")

    def __init__(self, client: AsyncpgDBClient, scope: _Scope) -> None:
        self.client = client
        self.scope = scope
        self.pooled: AbstractAsyncContextManager[Any] | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        await self.scope.lock.acquire()
        if self.scope.closed:
            self.scope.lock.release()
            self.pooled = AsyncpgDBClient.acquire_connection(self.client)
            return await self.pooled.__aenter__()
        try:
            return await self.scope.hold(self.client)
        except BaseException:
            self.scope.lock.release()
            raise

    async def __aexit__(self, *exc: Any) -> None:
        if self.pooled is not None:
            await self.pooled.__aexit__(*exc)
            return
        self.scope.lock.release()


class _ScopedTransaction(TransactionContext):
    """A transaction on the request's connection, which it has to itself until it ends: the
    request's other statements (resolvers running alongside) wait rather than land inside it.
    (The pool's own transaction takes a second connection, and N requests holding N connections
    could then wait for ever on a pool of N.)"""

    def __init__(self, client: RequestScopedClient, scope: _Scope) -> None:
        self.pooled = client
        self.scope = scope
        self.connection_name = client.connection_name
        # The pool's own transaction, for one that waited behind the scope's `release` (as `_Held`).
        self.apart: TransactionContext | None = None

    async def __aenter__(self) -> TransactionalDBClient:
        await self.scope.lock.acquire()
        if self.scope.closed:
            self.scope.lock.release()
            self.apart = AsyncpgDBClient._in_transaction(self.pooled)
            return await self.apart.__aenter__()
        try:
            held = await self.scope.hold(self.pooled)
            # Its own lock: its statements run while the request's lock is held for it.
            client = TransactionWrapper(self.pooled)
            client._connection = held
            self.client = client
            self.token = connections.set(self.connection_name, client)
            try:
                await client.begin()
            except BaseException:
                connections.reset(self.token)
                raise
        except BaseException:
            self.scope.lock.release()
            raise
        return client

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        if self.apart is not None:
            await self.apart.__aexit__(exc_type, exc_val, exc_tb)
            return
        try:
            if not self.client._finalized:
                if exc_type is None:
                    await self.client.commit()
                elif exc_type is not TransactionManagementError:
                    await self.client.rollback()
        finally:
            connections.reset(self.token)
            self.scope.lock.release()


async def release_scope() -> None:
    """Give the current scope's connection back now: the task's later statements use the pool (a
    subscription that has replayed from the log and goes on live for hours)."""
    scope = _scope.get()
    if scope is not None and not scope.closed:
        await scope.release()


class request_scope:
    """Serve one request on one database connection (PostgreSQL), given back when it ends. (A
    class rather than a generator-based context manager: it runs on every request.)"""

    __slots__ = ("scope", "token")

    async def __aenter__(self) -> None:
        self.scope = _Scope()
        self.token = _scope.set(self.scope)

    async def __aexit__(self, *exc: object) -> None:
        _scope.reset(self.token)
        await self.scope.release()


async def rewrite_column(
    model: type[Model],
    column: str,
    change: Callable[[dict[str, Any]], str | None],
    *also: str,
    batch: int = 500,
) -> int:
    """Every row's `column`, where set, rewritten to what `change(row)` returns (None: left as it
    is; `row` holds the id, the column and the `also` columns), in id order a batch at a time. Each
    row is one conditional write, made only if the value is still the one read, so a run can be
    repeated or run beside a serving API (key rotation). Returns how many rows changed."""
    changed = 0
    after = 0
    while True:
        rows = (
            await model.filter(id__gt=after, **{f"{column}__isnull": False})
            .order_by("id")
            .limit(batch)
            .values("id", column, *also)
        )
        if not rows:
            return changed
        for row in rows:
            after = int(row["id"])
            fresh = change(row)
            if fresh is not None:
                changed += await model.filter(id=after, **{column: row[column]}).update(**{column: fresh})
