"""Rate limits in cost points per credential (or client address), on every transport.

A token bucket per key (GCRA: one number per key, the time at which its bucket will be full
again): it refills at `RATE_LIMIT_PER_MINUTE / 60` points a second and holds `capacity` points, a
sixth of a minute's points but at least what the costliest allowed query draws (`burst_capacity`).
So a client's points are spent as they come rather than all at the start of a minute, and an
attacker's work is spread over time instead of arriving in one burst every minute.

Buckets are shared by every server process through Redis, one script call (a single round trip)
at a time. A call takes the operation's points and, where the bucket has them to spare, a small
reservation more (a thirty-second of its capacity, at most `MAX_RESERVE` points) that this process
then spends on the same key's next operations without asking Redis, for `RESERVE_SECONDS`: a busy
credential (a dashboard's reconnect, a page of queries) asks Redis about once in every few
operations. A reservation is never taken from points the operation itself needs, so near the limit
every operation asks Redis and is refused exactly where it would be without one; with several
processes, points reserved by one (at most `MAX_RESERVE` a key) are not there for the others until
spent or the bucket refills, and points left unspent when a reservation runs out are not given
back. Buckets of under 32 points (a limit of a few operations a minute) never reserve. Redis is
given `REDIS_PATIENCE` seconds at most; when it does not answer, this
process counts on its own (in memory) and leaves Redis alone for `REDIS_BACKOFF` seconds, so no
request waits on a hung Redis more than once per back-off period, and never longer than the
patience. With the in-process broadcast (`memory://`) the limiter is in memory from the start.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis import asyncio as aioredis

from resolvers.apart import open_connections_apart
from resolvers.viewer import Viewer

log = logging.getLogger("senvault.rate_limits")

REDIS_PATIENCE = 0.2
REDIS_BACKOFF = 5.0
# Keys one process remembers in memory before it forgets the full buckets (bounds its memory).
MAX_LOCAL_KEYS = 100_000
# A bucket holds a sixth of a minute's points (ten seconds' worth)...
BURST_FRACTION = 6
# Points a process may take ahead for a key's next operations: a thirty-second of the bucket, at
# most this many, for at most this long.
RESERVE_FRACTION = 32
MAX_RESERVE = 16
RESERVE_SECONDS = 1.0

# KEYS[1]: the bucket; ARGV: now, seconds per point, capacity in seconds, cost, points to reserve.
# Returns {allowed, the bucket's full-again time after this operation and what it reserved (or
# unchanged if refused), the points reserved}: as many of those asked for as the bucket holds
# beyond the operation's cost.
_GCRA = """
local tat = tonumber(redis.call('GET', KEYS[1]))
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local span = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local reserve = tonumber(ARGV[5])
if tat == nil or tat < now then tat = now end
local new_tat = tat + cost * interval
if new_tat - now <= span then
  local spare = math.floor((span - (new_tat - now)) / interval + 1e-9)
  if spare < reserve then reserve = spare end
  if reserve < 0 then reserve = 0 end
  new_tat = new_tat + reserve * interval
  redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
  return {1, string.format('%.6f', new_tat), reserve}
end
return {0, string.format('%.6f', tat), 0}
"""


@dataclass
class _Reserve:
    """Points of a key's shared bucket this process took ahead, and what the bucket was then."""

    points: int
    tat: float  # the bucket's full-again time once they were taken
    interval: float
    span: float
    until: float  # monotonic time after which what is left is not spent


@dataclass(frozen=True)
class LimitSettings:
    """What the server configured; the defaults are for a schema run without the server."""

    max_query_cost: int = 10_000
    rate_limit_per_minute: int = 600
    anonymous_rate_limit_per_minute: int = 120


def burst_capacity(per_minute: int, max_points: int) -> int:
    """Points a bucket holds: a sixth of a minute's, but enough for the costliest allowed query
    (`max_points`), and never more than a minute's."""
    return max(1, min(per_minute, max(math.ceil(per_minute / BURST_FRACTION), max_points)))


@dataclass(frozen=True)
class Verdict:
    """A key's bucket after an operation was counted (or refused)."""

    allowed: bool
    limit: int  # the bucket's capacity, in points
    cost: int
    remaining: int
    full_at: float  # seconds since the epoch: when the bucket is full again (`resetAt`)
    retry_at: float  # when this operation's cost would fit (now, when allowed)
    next_point_at: float  # when at least one point is free

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.retry_at - now))

    def reset_after(self, now: float) -> int:
        return max(0, math.ceil(self.full_at - now))


def credential_key(viewer: Viewer) -> str:
    """The budget a signed-in caller draws on: its session or API token, on every transport."""
    if viewer.api_token_id is not None:
        return f"api-token:{viewer.api_token_id}"
    if viewer.session_id is not None:
        return f"session:{viewer.session_id}"
    return f"user:{viewer.user_id}"


class RateLimiter:
    def __init__(
        self,
        redis_url: str | None,
        namespace: str,
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.namespace = namespace
        self._now = now
        self._monotonic = monotonic
        self._local: dict[str, float] = {}
        self._redis: aioredis.Redis | None = None
        self._script: object | None = None
        if redis_url and redis_url.startswith(("redis://", "rediss://")):
            # Bounded by `asyncio.timeout` around each call, not by redis-py's per-write
            # `wait_for`, which on Python 3.11 can drop the cancellation of the request it serves.
            self._redis = aioredis.Redis.from_url(
                redis_url, socket_timeout=None, socket_connect_timeout=REDIS_PATIENCE
            )
            open_connections_apart(self._redis)
            self._script = self._redis.register_script(_GCRA)
        self._redis_down_until = 0.0
        self.fallbacks = 0
        # What this process has learnt, so that a caller past its budget is refused before its
        # request is authenticated or parsed: budget key -> the refusal, until a point is free;
        # bearer-token digest -> budget key (remembered once the token has authenticated).
        self._refused: dict[str, Verdict] = {}
        self._token_keys: dict[str, str] = {}
        # Points taken ahead from shared buckets, by key (see the module's docstring).
        self._reserves: dict[str, _Reserve] = {}
        # Round trips to Redis made (for `bench/` and the tests: reservations save them).
        self.shared_calls = 0

    def remember_token(self, digest: str, key: str) -> None:
        if len(self._token_keys) >= MAX_LOCAL_KEYS:
            self._token_keys.clear()
        self._token_keys[digest] = key

    def key_for_token(self, digest: str) -> str | None:
        return self._token_keys.get(digest)

    def refused(self, key: str) -> Verdict | None:
        """The refusal `key` got while its bucket is still empty; O(1), no I/O."""
        verdict = self._refused.get(key)
        if verdict is None:
            return None
        if self._now() >= verdict.next_point_at:
            del self._refused[key]
            return None
        return verdict

    async def charge(self, key: str, cost: int, per_minute: int, capacity: int) -> Verdict:
        """Take `cost` points from `key`'s bucket (refilling at `per_minute`, holding `capacity`);
        refused, taking nothing, when they are not there."""
        now = self._now()
        interval = 60.0 / max(1, per_minute)
        span = capacity * interval
        reserve = self._held(key, interval, span)
        held = reserve.points if reserve is not None else 0
        if reserve is not None and held >= cost:
            reserve.points -= cost
            self._reserves[key] = reserve
            allowed, tat, left = True, reserve.tat, reserve.points
            need = 0
        else:
            # What the reserve holds pays for part: the bucket is asked for the rest.
            need = cost - held
            outcome = await self._take_shared(key, now, interval, span, need, capacity // RESERVE_FRACTION)
            if outcome is None:
                outcome = self._take_local(key, now, interval, span, need)
            allowed, tat, left = outcome
            if not allowed and reserve is not None:
                self._reserves[key] = reserve  # refused: kept for an operation it can pay for
                left = held
        verdict = Verdict(
            allowed=allowed,
            limit=capacity,
            cost=cost,
            # What the bucket holds and what this process holds of it. (To within a thousandth
            # of a point: times pass through Redis as text.)
            remaining=min(capacity, max(0, math.floor((span - (tat - now)) / interval + 1e-3)) + left),
            full_at=max(tat, now),
            retry_at=now if allowed else tat + need * interval - span,
            next_point_at=tat + interval - span,
        )
        if not allowed and verdict.next_point_at > now:
            if len(self._refused) >= MAX_LOCAL_KEYS:
                self._refused.clear()
            self._refused[key] = verdict
        return verdict

    def _held(self, key: str, interval: float, span: float) -> _Reserve | None:
        """What this process holds of `key`'s bucket, taken out of the reserves (the caller puts it
        back, or replaces it), if it is still in time and for the same limit."""
        reserve = self._reserves.pop(key, None)
        if reserve is None or self._monotonic() >= reserve.until:
            return None
        if reserve.interval != interval or reserve.span != span:
            return None
        return reserve

    def _take_local(
        self, key: str, now: float, interval: float, span: float, cost: int
    ) -> tuple[bool, float, int]:
        if len(self._local) >= MAX_LOCAL_KEYS:
            # Full buckets need no memory: forget them.
            self._local = {k: t for k, t in self._local.items() if t > now}
        tat = max(self._local.get(key, now), now)
        new_tat = tat + cost * interval
        if new_tat - now <= span:
            self._local[key] = new_tat
            return True, new_tat, 0
        return False, tat, 0

    async def _take_shared(
        self, key: str, now: float, interval: float, span: float, cost: int, reserve: int
    ) -> tuple[bool, float, int] | None:
        if self._redis is None or self._script is None or self._monotonic() < self._redis_down_until:
            return None
        reserve = min(reserve, MAX_RESERVE)
        try:
            self.shared_calls += 1
            async with asyncio.timeout(REDIS_PATIENCE):
                allowed, tat, reserved = await self._script(  # type: ignore[operator]
                    keys=[f"{self.namespace}:rate:{key}"], args=[now, interval, span, cost, reserve]
                )
            taken, full_at, ahead = bool(int(allowed)), float(tat), int(reserved)
            if ahead > 0:
                if len(self._reserves) >= MAX_LOCAL_KEYS:
                    self._reserves.clear()
                until = self._monotonic() + RESERVE_SECONDS
                self._reserves[key] = _Reserve(ahead, full_at, interval, span, until)
            return taken, full_at, ahead
        except Exception:
            self._redis_down_until = self._monotonic() + REDIS_BACKOFF
            self.fallbacks += 1
            log.warning(
                "rate limiter: Redis did not answer within %.0f ms; counting in this process for %.0f s",
                REDIS_PATIENCE * 1000,
                REDIS_BACKOFF,
                exc_info=True,
            )
            return None

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
