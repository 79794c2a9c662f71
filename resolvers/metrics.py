"""What the server counts for operators, served as Prometheus text on `/metrics`.

Counted where it happens, never with personal data in a label: HTTP requests by route and status
(with their duration), GraphQL errors by code, open websockets, live subscriptions, whether this
process hears the broadcast, and the garbage collector's pauses. Labels take a handful of values
each (routes are the app's own four paths, anything else is `other`), so the series stay few.

With `serve --workers N`, each worker is a process of its own: `server.py` then points
`PROMETHEUS_MULTIPROC_DIR` at a fresh folder before the workers start, every worker writes its
numbers there, and whichever worker answers `/metrics` reports them all (prometheus-client's
multiprocess mode). The live gauges of a worker that died are let go of when `/metrics` is read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

ROUTES = frozenset({"/graphql", "/healthz", "/readyz", "/metrics"})

HTTP_REQUESTS = Counter(
    "senvault_http_requests_total",
    "HTTP requests answered, by route, method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "senvault_http_request_duration_seconds",
    "Time to answer an HTTP request, by route.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
GRAPHQL_ERRORS = Counter(
    "senvault_graphql_errors_total",
    "GraphQL errors answered, by code (INTERNAL_SERVER_ERROR is ours).",
    ["code"],
)
WEBSOCKETS_OPEN = Gauge(
    "senvault_websockets_open",
    "Websockets open on this process (all processes: summed).",
    multiprocess_mode="livesum",
)
SUBSCRIPTIONS_ACTIVE = Gauge(
    "senvault_subscriptions_active", "Live subscriptions running.", multiprocess_mode="livesum"
)
BROADCAST_LISTENING = Gauge(
    "senvault_broadcast_listening",
    "1 while a process hears the broadcast's control channel (credentials ending), else 0.",
    multiprocess_mode="liveall",
)

# The cyclic garbage collector (resolvers/collector.py): how long full collections stood the
# process still, and how often the long-lived objects were frozen out of them or given back.
GC_FULL_PAUSE = Histogram(
    "senvault_gc_full_collection_seconds",
    "Time this process stood still in full (generation 2) garbage collections.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
GC_FREEZES = Counter(
    "senvault_gc_freezes_total",
    "Times what survived a slow full collection was frozen out of the next ones.",
)
GC_RECLAIMS = Counter(
    "senvault_gc_reclaims_total",
    "Times frozen objects were given back and collected, after enough sockets had closed.",
)
GC_CLOSED_FROZEN = Gauge(
    "senvault_gc_closed_sockets_frozen",
    "Sockets closed since frozen objects were last given back (their garbage waits), by process.",
    multiprocess_mode="liveall",
)


def route_of(path: str) -> str:
    return path if path in ROUTES else "other"


# The labelled series by (path, method, status): `labels()` looks them up under a lock each time.
_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(path: str, method: str, status: int, seconds: float) -> None:
    key = (path, method, status)
    series = _series.get(key)
    if series is None:
        route = route_of(path)
        known = method if method in ("GET", "POST", "OPTIONS") else "other"
        series = (HTTP_REQUESTS.labels(route, known, str(status)), HTTP_DURATION.labels(route))
        if route != "other" and len(_series) < 1000:  # any path may come: only ours are kept
            _series[key] = series
    series[0].inc()
    series[1].observe(seconds)


def forget_dead_workers(folder: str) -> None:
    """Let go of the live gauges of workers that have died (uvicorn starts another in their place):
    without this, the sockets a killed worker had open would be counted for ever."""
    for path in Path(folder).glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(int(pid), folder)  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, another user's


def exposition() -> tuple[bytes, str]:
    """The metrics as Prometheus text, and its content type: every worker's in multiprocess mode."""
    if folder := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        forget_dead_workers(folder)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
