"""Rate limits in cost points per credential (or client address) per minute, on every transport.

A fixed window per key: one `INCRBY` + `EXPIRE` round trip to Redis per operation, shared by every
server process. Redis is given `REDIS_PATIENCE` seconds at most; when it does not answer, this
process counts on its own (in memory) and leaves Redis alone for `REDIS_BACKOFF` seconds, so no
request waits on a hung Redis more than once per back-off period, and never longer than the
patience. With the in-process broadcast (`memory://`) the limiter is in memory from the start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis import asyncio as aioredis

from resolvers.viewer import Viewer

log = logging.getLogger("senvault.rate_limits")

WINDOW_SECONDS = 60
REDIS_PATIENCE = 0.2
REDIS_BACKOFF = 5.0
# Keys one process remembers in memory per window before it starts afresh (bounds its memory).
MAX_LOCAL_KEYS = 100_000


@dataclass(frozen=True)
class LimitSettings:
    """What the server configured; the defaults are for a schema run without the server."""

    max_query_cost: int = 10_000
    rate_limit_per_minute: int = 600
    anonymous_rate_limit_per_minute: int = 120


@dataclass(frozen=True)
class Verdict:
    """The state of one key's budget after an operation was counted."""

    allowed: bool
    limit: int
    cost: int
    used: int
    reset_at: float  # seconds since the epoch

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def retry_after(self, now: float) -> int:
        return max(1, int(self.reset_at - now + 0.999))


class _Local:
    """This process's own counts, for the current window only."""

    def __init__(self) -> None:
        self.window = -1
        self.counts: dict[str, int] = {}

    def incr(self, key: str, window: int, cost: int) -> int:
        if window != self.window or len(self.counts) >= MAX_LOCAL_KEYS:
            self.window = window
            self.counts = {}
        used = self.counts.get(key, 0) + cost
        self.counts[key] = used
        return used


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
        self._local = _Local()
        self._redis: aioredis.Redis | None = None
        if redis_url and redis_url.startswith(("redis://", "rediss://")):
            self._redis = aioredis.Redis.from_url(
                redis_url, socket_timeout=REDIS_PATIENCE, socket_connect_timeout=REDIS_PATIENCE
            )
        self._redis_down_until = 0.0
        self.fallbacks = 0
        # What this process has learnt, so that a caller past its budget is refused before its
        # request is authenticated or parsed: budget key -> the refusal, until its window resets;
        # bearer-token digest -> budget key (remembered once the token has authenticated).
        self._refused: dict[str, Verdict] = {}
        self._token_keys: dict[str, str] = {}

    def remember_token(self, digest: str, key: str) -> None:
        if len(self._token_keys) >= MAX_LOCAL_KEYS:
            self._token_keys.clear()
        self._token_keys[digest] = key

    def key_for_token(self, digest: str) -> str | None:
        return self._token_keys.get(digest)

    def refused(self, key: str) -> Verdict | None:
        """The refusal `key` got in the current window, if it got one; O(1), no I/O."""
        verdict = self._refused.get(key)
        if verdict is None:
            return None
        if self._now() >= verdict.reset_at:
            del self._refused[key]
            return None
        return verdict

    @property
    def shared(self) -> bool:
        """Whether counts are shared through Redis right now (False while falling back)."""
        return self._redis is not None and self._monotonic() >= self._redis_down_until

    async def charge(self, key: str, cost: int, limit: int) -> Verdict:
        """Count `cost` points against `key`; refused when the window's total passes `limit`.

        A refused operation still counts: a client that keeps going past its budget stays refused
        until the window resets.
        """
        now = self._now()
        window = int(now // WINDOW_SECONDS)
        reset_at = float((window + 1) * WINDOW_SECONDS)
        used = await self._incr_shared(key, window, cost)
        if used is None:
            used = self._local.incr(key, window, cost)
        verdict = Verdict(allowed=used <= limit, limit=limit, cost=cost, used=used, reset_at=reset_at)
        if not verdict.allowed:
            if len(self._refused) >= MAX_LOCAL_KEYS:
                self._refused.clear()
            self._refused[key] = verdict
        return verdict

    async def _incr_shared(self, key: str, window: int, cost: int) -> int | None:
        if self._redis is None or self._monotonic() < self._redis_down_until:
            return None
        name = f"{self.namespace}:rate:{key}:{window}"
        try:
            async with asyncio.timeout(REDIS_PATIENCE):
                pipe = self._redis.pipeline(transaction=False)
                pipe.incrby(name, cost)
                pipe.expire(name, 2 * WINDOW_SECONDS)
                used, _ = await pipe.execute()
            return int(used)
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
