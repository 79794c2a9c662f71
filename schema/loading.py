"""Resolvers that answer at once from what the request has already loaded.

graphql-core runs every awaitable a resolver returns as a task of its own: a page of 50 tickets
whose nested fields were `async def` made about 300 tasks, most of them for rows the page's own
resolver had already fetched. A resolver written with `now_or_later` returns its value directly
when the request's loader holds it (a list resolver prefetched it with the page, `prefetch`), and
an awaitable only when the value still has to be loaded; both behave alike for the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, TypeVar, cast

from strawberry.dataloader import DataLoader

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
R = TypeVar("R")


def now_or_later(loader: DataLoader[K, V], key: K, build: Callable[[V], R]) -> R:
    """`build(value)` now when `loader` already holds the value for `key`; else an awaitable of
    it, which graphql-core awaits like an async resolver's result (typed as `R` for that reason).
    A load that failed is awaited, so its error reaches the field as it always did."""
    future = loader.cache_map.get(key)
    if future is not None and future.done() and not future.cancelled() and future.exception() is None:
        return build(future.result())

    async def later() -> R:
        return build(await loader.load(key))

    return cast(R, later())


async def prefetch(loads: Iterable[tuple[DataLoader[Any, Any], Iterable[Any]]]) -> None:
    """Load these keys now, each loader in one batch, so the page's nested fields answer at once.
    A batch that fails is left in its loader for the nested field to raise, as it would have."""
    waits: list[Awaitable[Any]] = [loader.load_many(list(keys)) for loader, keys in loads]
    if waits:
        await asyncio.gather(*waits, return_exceptions=True)
