"""The cyclic garbage collector, kept from stopping the process for long while sockets pile up.

CPython 3.11 runs a full (generation 2) collection each time the objects that survived the young
collections have grown by a quarter since the last one, and a full collection walks every tracked
object while the whole process waits. An open subscribed socket is about a hundred tracked objects
(uvicorn's protocol, the websockets parser, the ASGI task and its contexts, the fanout member), so
with 10,000 sockets open one full collection stood the server still for 0.5–0.8 s on the benchmark
machine, and twenty of them ran while those sockets were opened (bench/RESULTS.md, run 6). Every
request, delivery and `accessRevoked` that met one waited for it.

What survives a full collection is long-lived, sockets above all. So when a full collection took
longer than `slow_seconds`, what survived it is frozen (`gc.freeze()`): the next full collections
walk only what came after, and stay short however many sockets are open.

The price: a frozen object freed by its reference count is freed as usual, but one that dies in a
reference cycle is not (only the collector frees cycles, and it skips frozen objects). A closed
socket leaves about a hundred objects in cycles (uvicorn's HTTP and websocket protocols, the parser
generator, the uvloop transport, the ASGI task's context, graphql-core's executor of its
subscription). So the sockets closed since the last freeze are counted, and once they are a
quarter of the sockets that were open at the last freeze (and at least `min_closes`), the frozen
objects are given back (`gc.unfreeze()`) and collected, a second after the close that made them
due (the closed sockets' tasks have ended by then): one full pause, after which what is still alive
is frozen again. A reconnect storm of every socket costs about four such pauses; opening sockets,
and holding them open all day, cost none. (How many objects are frozen is not read: in CPython
3.11 `gc.get_freeze_count()` walks every one of them, a pause of its own.)

The pauses are always measured; the freezing is off unless `GC_FREEZE_SLOW_MS` is set, because
closed sockets are not all garbage when they close (docs/decisions.md, "The garbage collector and
thousands of sockets").

The collector's callbacks can run in any thread and in the middle of any allocation, so they only
note what happened; the Prometheus numbers (`resolvers.metrics`) are updated from the event loop.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

from resolvers import metrics

log = logging.getLogger("senvault.collector")

# Below this many closed sockets, frozen garbage is not worth a full pause to give back.
MIN_CLOSES = 500
# A second after the closes that call for it: the closed sockets' tasks have ended by then.
RECLAIM_DELAY_SECONDS = 1.0
REPORT_SECONDS = 5.0


class Collector:
    """The process's policy for the cyclic collector; one per process (`COLLECTOR`)."""

    def __init__(self) -> None:
        self.slow_seconds: float | None = None
        self.min_closes = MIN_CLOSES
        # Closed sockets' frozen garbage is given back once they are this share of the sockets open
        # at the last freeze (a quarter: the growth of long-lived objects at which CPython runs a
        # full collection; an open socket and a closed one's garbage are both about 100 objects).
        self.reclaim_share = 0.25
        self.reclaim_delay = RECLAIM_DELAY_SECONDS
        self.sockets_open = 0
        self.closed_since_freeze = 0
        self.closes_due = MIN_CLOSES
        self.freezes = 0
        self.reclaims = 0
        # Whether this policy has frozen anything (the start-up freeze holds no sockets).
        self.holding = False
        self._reclaiming = False
        self._started_at: float | None = None
        self._pauses: list[float] = []
        self._reported_freezes = 0
        self._reported_reclaims = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reclaim: asyncio.TimerHandle | None = None
        self._report: asyncio.TimerHandle | None = None

    @property
    def installed(self) -> bool:
        return self._loop is not None

    @property
    def reclaim_due(self) -> bool:
        """Whether enough sockets have closed that a reclaim is on its way."""
        return self._reclaim is not None

    def install(self, slow_seconds: float | None) -> None:
        """Start the policy on the running loop; `slow_seconds` None only measures the pauses."""
        self.uninstall()
        self.slow_seconds = slow_seconds
        self._loop = asyncio.get_running_loop()
        gc.callbacks.append(self._on_collection)
        self._report = self._loop.call_later(REPORT_SECONDS, self._report_soon)

    def uninstall(self) -> None:
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)
        for handle in (self._reclaim, self._report):
            if handle is not None:
                handle.cancel()
        self._reclaim = self._report = None
        self._loop = None
        self.report()

    # --- the sockets ---------------------------------------------------------------------------

    def socket_opened(self) -> None:
        self.sockets_open += 1

    def socket_closed(self) -> None:
        self.sockets_open -= 1
        if self._loop is None or not self.holding:
            return
        self.closed_since_freeze += 1
        # Not put off by the closes that follow: a steady stream of them still gets its reclaims.
        if self.closed_since_freeze >= self.closes_due and self._reclaim is None:
            self._reclaim = self._loop.call_later(self.reclaim_delay, self.reclaim)

    def reclaim(self) -> None:
        """Give back what is frozen, collect it all once, and freeze what is still alive."""
        if self._reclaim is not None:
            self._reclaim.cancel()
            self._reclaim = None
        self._reclaiming = True
        try:
            gc.unfreeze()
            collected = gc.collect()
        finally:
            self._reclaiming = False
        gc.freeze()
        self.closed_since_freeze = 0
        self._frozen()
        self.reclaims += 1
        log.debug("gave frozen objects back to the collector: %d collected", collected)
        self.report()

    # --- the collector's callback ---------------------------------------------------------------

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started_at = time.perf_counter()
            return
        if self._started_at is None:
            return
        took = time.perf_counter() - self._started_at
        self._started_at = None
        self._pauses.append(took)
        if self.slow_seconds is not None and took > self.slow_seconds and not self._reclaiming:
            # Everything reachable now has just survived a full collection: nothing unreachable is
            # left to be frozen with it.
            gc.freeze()
            self.freezes += 1
            self._frozen()

    def _frozen(self) -> None:
        # The sockets closed before a freeze are still counted: their garbage is still frozen.
        # (Not `gc.get_freeze_count()`: it walks every frozen object, a pause of its own.)
        self.holding = True
        self.closes_due = max(self.min_closes, int(self.sockets_open * self.reclaim_share))

    # --- numbers for operators -------------------------------------------------------------------

    def _report_soon(self) -> None:
        self.report()
        if self._loop is not None:
            self._report = self._loop.call_later(REPORT_SECONDS, self._report_soon)

    def report(self) -> None:
        """Move what the callbacks noted into the Prometheus metrics (from the event loop)."""
        pauses, self._pauses = self._pauses, []
        for took in pauses:
            metrics.GC_FULL_PAUSE.observe(took)
        metrics.GC_FREEZES.inc(self.freezes - self._reported_freezes)
        metrics.GC_RECLAIMS.inc(self.reclaims - self._reported_reclaims)
        self._reported_freezes, self._reported_reclaims = self.freezes, self.reclaims
        metrics.GC_CLOSED_FROZEN.set(self.closed_since_freeze)


COLLECTOR = Collector()
