"""The rate limiter's reservations (resolvers/rate_limits.py), against a real Redis with the
limiter's clocks held still: a busy key asks Redis once in several operations, and the points a
process takes ahead never let a key past its bucket, in one process or in two."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from resolvers.rate_limits import MAX_RESERVE, RESERVE_FRACTION, RESERVE_SECONDS, RateLimiter
from tests.servers import require_redis

NOW = 1_800_000_000.0
# 64 points a second, a point every 1/64 s: exact in binary and in the six decimals Redis keeps.
# The clocks stand still, so nothing refills.
PER_MINUTE = 3_840


class Clocks:
    def __init__(self) -> None:
        self.wall = NOW
        self.monotonic = 1000.0


@pytest.fixture
async def clocks() -> Clocks:
    return Clocks()


@pytest.fixture
async def limiters(redis_url: str, clocks: Clocks) -> AsyncIterator[tuple[RateLimiter, RateLimiter]]:
    """Two processes' limiters on one namespace of a real Redis."""
    await require_redis(redis_url)
    namespace = f"reserve-{uuid.uuid4().hex[:8]}"
    pair = tuple(
        RateLimiter(redis_url, namespace, now=lambda: clocks.wall, monotonic=lambda: clocks.monotonic)
        for _ in range(2)
    )
    try:
        yield pair[0], pair[1]
    finally:
        for limiter in pair:
            await limiter.close()


async def test_a_busy_key_asks_redis_once_in_several_operations(
    limiters: tuple[RateLimiter, RateLimiter],
) -> None:
    limiter, _ = limiters
    capacity = 320
    reserve = min(MAX_RESERVE, capacity // RESERVE_FRACTION)
    remaining = []
    for _ in range(reserve + 1):
        verdict = await limiter.charge("session:1", 1, PER_MINUTE, capacity)
        assert verdict.allowed
        remaining.append(verdict.remaining)
    # One round trip took the first operation's point and the reserve the next ones spent; each
    # answer still reports the budget after that operation, point by point.
    assert limiter.shared_calls == 1
    assert remaining == list(range(capacity - 1, capacity - reserve - 2, -1))
    await limiter.charge("session:1", 1, PER_MINUTE, capacity)
    assert limiter.shared_calls == 2
    # Another key has a reserve of its own.
    await limiter.charge("session:2", 1, PER_MINUTE, capacity)
    assert limiter.shared_calls == 3


async def test_a_reserve_left_unspent_runs_out(
    limiters: tuple[RateLimiter, RateLimiter], clocks: Clocks
) -> None:
    limiter, _ = limiters
    await limiter.charge("session:1", 1, PER_MINUTE, 320)
    clocks.monotonic += RESERVE_SECONDS
    await limiter.charge("session:1", 1, PER_MINUTE, 320)
    assert limiter.shared_calls == 2


@pytest.mark.parametrize("cost", [1, 3])
async def test_one_process_allows_exactly_what_the_bucket_holds(
    limiters: tuple[RateLimiter, RateLimiter], cost: int
) -> None:
    limiter, _ = limiters
    verdicts = [await limiter.charge("api-token:7", cost, PER_MINUTE, 64) for _ in range(64)]
    allowed = [v for v in verdicts if v.allowed]
    assert len(allowed) == 64 // cost
    assert verdicts[: len(allowed)] == allowed, "allowed again after a refusal, with no time passing"
    assert [v.remaining for v in allowed] == [64 - cost * n for n in range(1, len(allowed) + 1)]
    assert all(v.remaining == 64 % cost for v in verdicts[len(allowed) :])


@pytest.mark.parametrize("cost", [1, 3])
async def test_two_processes_together_never_allow_more_than_the_bucket_holds(
    limiters: tuple[RateLimiter, RateLimiter], cost: int
) -> None:
    capacity = 64
    reserve = min(MAX_RESERVE, capacity // RESERVE_FRACTION)
    allowed = 0
    for turn in range(2 * capacity):
        if (await limiters[turn % 2].charge("api-token:7", cost, PER_MINUTE, capacity)).allowed:
            allowed += 1
    # What the other process holds in its reserve (at most `reserve` points) is not there for this one.
    assert (capacity - reserve) // cost <= allowed <= capacity // cost


async def test_a_small_bucket_never_reserves(limiters: tuple[RateLimiter, RateLimiter]) -> None:
    limiter, _ = limiters
    for _ in range(4):
        assert (await limiter.charge("session:1", 1, 24, 4)).allowed
    assert limiter.shared_calls == 4
    assert not (await limiter.charge("session:1", 1, 24, 4)).allowed
