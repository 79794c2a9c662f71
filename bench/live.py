"""Live delivery benchmark: fan-out, distinct viewers, the publisher's wait, churn and memory,
our server against a bare `websockets` server in the same run.

    .venv/bin/python bench/live.py [--sizes 100,1000,5000] [--events 10] [--churn-cycles 20000]
                                   [--postgres postgres://postgres@127.0.0.1:5432/postgres]
                                   [--redis redis://127.0.0.1:6379] [--write bench/RESULTS.md]
                                   [--rounds 5] [--only churn,distinct] [--profile /tmp/profiles]

`--only` runs some of the scenarios (memory, churn, fanout, distinct, publisher, revoked); each runs
on a fresh server process. `--profile DIR` records the server with py-spy (raw stacks, one file
per scenario, py-spy on the other core); a profiled run's numbers are not comparable.

Ours: one `server.py serve` process on a fresh PostgreSQL database and Redis broadcast, pinned to
CPU 0 with `taskset`; this process (the clients, and the publisher) runs on CPU 1. Accounts are
made in the database (as `tests/factories.py` does). Most events are published by this process as
a second server process would: a notification committed with its event through `unit_of_work`
and broadcast on Redis, so the server's CPU in those scenarios is delivery alone (the Redis
message, the subscriber's credential and access check, loading the notification, GraphQL
execution of the subscriber's selection, JSON, the socket). The bare server (`fanout.py`'s
`BASELINE_SERVER`, and a variant that sends each message to one socket) is the floor in Python.

1. Fan-out to N sockets of one family (one token, one document): latency from the event's
   `occurredAt` to the client reading it, and deliveries per CPU-second of the server process.
2. 1,000 sockets of 1,000 different families, one event each: deliveries per CPU-second.
3. The publisher's wait: `logIn` (which commits and publishes a NEW_SIGN_IN notification) through
   the API, its response time p50 with no subscriber and with 1,000 sockets of that family.
4. Churn: connect, `connection_init`, subscribe with `after` one event back, receive that replayed
   event, close; 8 loops at once for `--churn-cycles` cycles, after a warm-up of a twentieth as
   many the same way: cycles a second, server CPU per cycle, and the server's RSS growth across
   them (the steady state: a leak grows it, the allocator's first high-water mark does not).
   The client is `bench/wire.py` (frames encoded once, ~0.3–0.8 ms of CPU a cycle), so that each
   server, not the client, sets the pace. A third server answers the same messages as ours with a
   bare ASGI app under uvicorn as `serve` configures it: what the framework costs before our work.
5. Memory per idle subscribed socket: the slope of the server's RSS from 1,000 to 5,000 sockets.

6. `accessRevoked`: p99 from a family's `revokeVaultAccess` being sent to the advocate's socket
   reading the event, with no other socket open, and with `--idle` subscribed sockets of another
   family (each measured on a fresh server process), over `--revocations` (1,000: the p99 is the
   11th-slowest, which one stall cannot move).

Run by hand, never by the test suite; `--write` appends the results to a Markdown file.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from tortoise import Tortoise
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import wire
from bench.common import ROOT, append_results, free_port, fresh_database, wait_ready
from bench.fanout import (
    BASELINE_SERVER,
    Receivers,
    _baseline_stamp,
    _open_many,
    _rss_kib,
    cpu_seconds,
    open_subscribed,
)
from models.accounts import Role
from models.notifications import NotificationKind
from resolvers import events, notifications
from resolvers.broadcast import Hub
from resolvers.clock import Clock
from resolvers.services import Services
from server import tortoise_config
from tests.client import GraphQLClient
from tests.factories import PASSWORD, Account, account_in_database, db_id, user_cursor
from tests.test_vault import ACCESS_REVOKED, GRANT, REVOKE, _supported

NOTIFICATIONS = """
subscription($after: String) {
  notificationReceived(after: $after) { cursor occurredAt notification { id kind title } }
}
"""
LOG_IN = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }"
CHURN_LOOPS = 8

BASELINE_DISTINCT = r"""
import asyncio, json, sys, time
from websockets.asyncio.server import serve

by_name = {}

async def handler(ws):
    if ws.request.path == "/pub":
        async for message in ws:
            data = json.loads(message)
            target = by_name.get(data["to"])
            if target is not None:
                await target.send(json.dumps({"t": time.time(), "payload": data}))
        return
    if ws.request.path == "/churn":
        await ws.recv()
        await ws.send(json.dumps({"t": time.time(), "payload": {"replayed": True}}))
        await ws.wait_closed()
        return
    name = ws.request.path.rsplit("/", 1)[-1]
    by_name[name] = ws
    try:
        await ws.wait_closed()
    finally:
        by_name.pop(name, None)

async def main():
    async with serve(handler, "127.0.0.1", int(sys.argv[1]), compression=None):
        print("ready", flush=True)
        await asyncio.Future()

asyncio.run(main())
"""


# The same churn cycle's messages, answered by a bare ASGI app under uvicorn configured as `serve`
# configures it (uvloop, httptools, websockets-sansio, no compression, no access log): the floor the
# server framework sets, before any of the API's own work.
UVICORN_FLOOR = r"""
import sys, time, json, uvicorn

NEXT = {"id": "1", "type": "next", "payload": {"data": {"notificationReceived": {
    "cursor": "x" * 40, "occurredAt": "2026-12-07T00:00:00+00:00",
    "notification": {"id": "x" * 24, "kind": "NEW_SIGN_IN", "title": "Bench event"}}}}}

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept", "subprotocol": "graphql-transport-ws"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        kind = json.loads(message["text"])["type"]
        if kind == "connection_init":
            await send({"type": "websocket.send", "text": json.dumps({"type": "connection_ack"})})
        elif kind == "subscribe":
            await send({"type": "websocket.send", "text": json.dumps(NEXT)})

print("ready", flush=True)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), ws="websockets-sansio",
            ws_per_message_deflate=False, ws_ping_interval=20.0, ws_ping_timeout=20.0,
            access_log=False, log_level="warning")
"""


class _NoApp:
    """What `account_in_database` reads of a test client: no served app, so a real clock."""

    app = None


def _pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)]


def _stamp(message: dict[str, Any]) -> float | None:
    if message.get("type") != "next":
        return None
    occurred = message["payload"]["data"]["notificationReceived"]["occurredAt"]
    return datetime.fromisoformat(occurred).timestamp()


class Ours:
    """The server process, and this process acting as a second one that publishes events."""

    def __init__(self, database_url: str, redis_url: str, services: Services, port: int, pid: int) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.services = services
        self.port = port
        self.pid = pid

    async def family(self) -> tuple[Account, int]:
        account, _ = await account_in_database(_NoApp(), Role.FAMILY)  # type: ignore[arg-type]
        return account, db_id(account.user_id)

    async def notify(self, user_ids: list[int]) -> None:
        """One notification to each user, committed together and broadcast on Redis."""
        async with events.unit_of_work(self.services) as outbox:
            for user_id in user_ids:
                await notifications.notify(outbox, user_id, NotificationKind.NEW_SIGN_IN, "Bench event")

    async def open(self, token: str, after: str | None = None) -> ClientConnection:
        return await open_subscribed(self.port, token, NOTIFICATIONS, {"after": after} if after else None)


@asynccontextmanager
async def ours_server(
    postgres_url: str, redis_url: str, profile: Path | None = None
) -> AsyncIterator[Callable[[str], Any]]:
    """A fresh database, this process's publisher on it, and `serve()`: a new server process on that
    database each time it is entered (each memory reading starts from a process that has not yet
    held and freed thousands of sockets)."""
    async with fresh_database(postgres_url) as database_url:
        namespace = f"bench-live-{os.getpid()}"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "BROADCAST_URL": redis_url,
            "BROADCAST_NAMESPACE": namespace,
            "RATE_LIMIT_PER_MINUTE": "1000000000",
            "ANONYMOUS_RATE_LIMIT_PER_MINUTE": "1000000000",
            "MAX_SUBSCRIPTION_QUEUE": "100000",
            # Thousands of sockets of one credential are what is measured here.
            "MAX_SOCKETS_PER_CREDENTIAL": "1000000",
        }
        migrate = subprocess.run(  # noqa: ASYNC221 - setup, before anything is measured
            [sys.executable, "server.py", "migrate"], cwd=ROOT, env=env, capture_output=True
        )
        assert migrate.returncode == 0, migrate.stderr
        await Tortoise.init(config=tortoise_config(database_url))
        hub = Hub(redis_url, namespace=namespace)
        await hub.connect()
        services = Services(clock=Clock(), hub=hub)

        @asynccontextmanager
        async def serve(scenario: str) -> AsyncIterator[Ours]:
            port = free_port()
            proc = await asyncio.create_subprocess_exec(
                *_pin(0), sys.executable, "server.py", "serve", "--port", str(port),
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            spy = None
            try:
                await wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
                if profile is not None:
                    # py-spy's own CPU is on the other core (it samples from outside the process).
                    # Each sample pauses the server: at 1,000 a second the distinct-viewers scenario
                    # slowed until its deliveries timed out; 250 is enough for a profile.
                    os.makedirs(profile, exist_ok=True)
                    spy_command = [
                        *_pin(1), str(Path(sys.executable).parent / "py-spy"), "record",
                        "--pid", str(proc.pid), "--format", "raw", "--rate", "250",
                        "-o", str(profile / f"{scenario}.txt"),
                    ]  # fmt: skip
                    spy = await asyncio.create_subprocess_exec(
                        *spy_command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                    )
                # taskset execs the server: the pid is the server's.
                yield Ours(database_url, redis_url, services, port, proc.pid)
            finally:
                proc.terminate()
                await proc.wait()
                if spy is not None:
                    await spy.wait()

        try:
            yield serve
        finally:
            await hub.disconnect()
            await Tortoise.close_connections()


@asynccontextmanager
async def bare_server(code: str) -> AsyncIterator[tuple[str, int]]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *_pin(0), sys.executable, "-c", code, str(port), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert proc.stdout is not None
        await proc.stdout.readline()
        await _accepting(port)
        yield f"ws://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        await proc.wait()


async def _accepting(port: int) -> None:
    """Until the port takes connections (uvicorn says it is starting before it listens)."""
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise RuntimeError(f"nothing listens on port {port}")


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


# --- 1. fan-out to one viewer's sockets --------------------------------------------------------


async def fan_out_ours(ours: Ours, n: int, count: int) -> dict[str, float]:
    account, user_id = await ours.family()
    receivers = Receivers()
    try:
        for ws in await _open_many(n, lambda: ours.open(account.token)):
            receivers.start(ws, _stamp)
        await asyncio.sleep(2)
        cpu = 0.0
        for i in range(1, count + 1):
            start = cpu_seconds(ours.pid)
            await ours.notify([user_id])
            await receivers.wait_for(i)
            cpu += cpu_seconds(ours.pid) - start
        return {"p50": statistics.median(receivers.latencies), "last_p50": _last_p50(receivers, count),
                "per_cpu_s": n * count / max(cpu, 1e-3)}  # fmt: skip
    finally:
        await receivers.close()


def _last_p50(receivers: Receivers, count: int) -> float:
    """The median over events of the latency of the last socket to get each event."""
    n = len(receivers.sockets)
    per_event = [receivers.latencies[i * n : (i + 1) * n] for i in range(count)]
    return statistics.median(max(chunk) for chunk in per_event if chunk)


async def fan_out_bare(n: int, count: int) -> dict[str, float]:
    sample = json.dumps({"notification": {"id": "Tm90aWZpY2F0aW9uOjEyMw==", "kind": "NEW_SIGN_IN"}})
    receivers = Receivers()
    async with bare_server(BASELINE_SERVER) as (url, pid):
        try:
            for ws in await _open_many(n, lambda: connect(url + "/sub", compression=None)):
                receivers.start(ws, _baseline_stamp)
            await asyncio.sleep(1)
            cpu = 0.0
            async with connect(url + "/pub", compression=None) as publisher:
                for i in range(1, count + 1):
                    start = cpu_seconds(pid)
                    await publisher.send(sample)
                    await receivers.wait_for(i)
                    cpu += cpu_seconds(pid) - start
            return {"p50": statistics.median(receivers.latencies), "last_p50": _last_p50(receivers, count),
                    "per_cpu_s": n * count / max(cpu, 1e-3)}  # fmt: skip
        finally:
            await receivers.close()


# --- 2. distinct viewers ------------------------------------------------------------------------


async def distinct_ours(ours: Ours, n: int, rounds: int) -> dict[str, float]:
    """`rounds` bursts of one event to each of `n` families' sockets: the median round."""
    families = [await ours.family() for _ in range(n)]
    receivers = Receivers()
    try:
        sockets = await _open_many(n, _opener(ours, families))
        for ws in sockets:
            receivers.start(ws, _stamp)
        await asyncio.sleep(2)
        rates = []
        for burst in range(1, rounds + 1):
            start = cpu_seconds(ours.pid)
            await ours.notify([user_id for _, user_id in families])
            await receivers.wait_for(burst)
            rates.append(n / max(cpu_seconds(ours.pid) - start, 1e-3))
            await asyncio.sleep(0.2)
        return {"per_cpu_s": statistics.median(rates), "last": max(receivers.latencies)}
    finally:
        await receivers.close()


def _opener(ours: Ours, families: list[tuple[Account, int]]) -> Callable[[], Awaitable[ClientConnection]]:
    """Opens a socket for each new family in turn, subscribed from the start of its channel: one
    that is not live yet when a burst is published still gets its event (from the log)."""
    remaining = list(families)

    def open_next() -> Awaitable[ClientConnection]:
        account, user_id = remaining.pop()
        return ours.open(account.token, events.encode_cursor(events.user_channel(user_id), 0))

    return open_next


async def distinct_bare(n: int, rounds: int) -> dict[str, float]:
    receivers = Receivers()
    async with bare_server(BASELINE_DISTINCT) as (url, pid):
        names = iter(range(n))
        try:
            for ws in await _open_many(n, lambda: connect(f"{url}/sub/{next(names)}", compression=None)):
                receivers.start(ws, _baseline_stamp)
            await asyncio.sleep(1)
            rates = []
            async with connect(url + "/pub", compression=None) as publisher:
                for burst in range(1, rounds + 1):
                    start = cpu_seconds(pid)
                    for i in range(n):
                        await publisher.send(json.dumps({"to": str(i), "kind": "NEW_SIGN_IN", "id": i}))
                    await receivers.wait_for(burst)
                    rates.append(n / max(cpu_seconds(pid) - start, 1e-3))
                    await asyncio.sleep(0.2)
            return {"per_cpu_s": statistics.median(rates), "last": max(receivers.latencies)}
        finally:
            await receivers.close()


# --- 3. the publisher's wait --------------------------------------------------------------------


async def publisher_wait(ours: Ours, n: int, count: int) -> float:
    """p50 of `logIn`'s response time, the family having `n` subscribed sockets."""
    account, _ = await ours.family()
    receivers = Receivers()
    times: list[float] = []
    try:
        for ws in await _open_many(n, lambda: ours.open(account.token)):
            receivers.start(ws, _stamp)
        await asyncio.sleep(2)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ours.port}", timeout=60) as http:
            for i in range(1, count + 1):
                start = time.perf_counter()
                answer = await http.post(
                    "/graphql", json={"query": LOG_IN, "variables": {"e": account.email, "p": PASSWORD}}
                )
                times.append((time.perf_counter() - start) * 1000)
                assert answer.json()["data"]["logIn"]["token"]
                if n:
                    await receivers.wait_for(i)
                await asyncio.sleep(0.2)
        return statistics.median(times)
    finally:
        await receivers.close()


# --- 4. churn -----------------------------------------------------------------------------------


async def churn_ours(ours: Ours, cycles: int) -> dict[str, float]:
    return await _churn(await churn_cycle(ours), cycles, ours.pid)


async def churn_cycle(ours: Ours) -> Callable[[], Awaitable[None]]:
    """A family with two events, and one churn cycle against it: connect, subscribe with `after`
    the first, read the second as it is replayed, close."""
    account, user_id = await ours.family()
    await ours.notify([user_id])
    await ours.notify([user_id])
    head = await events.head(events.user_channel(user_id))
    after = events.encode_cursor(events.user_channel(user_id), head - 1)
    return _resume(ours.port, {"authorization": f"Bearer {account.token}"}, {"after": after})


def _resume(port: int, init: dict[str, str], variables: dict[str, str]) -> wire.Cycle:
    """A churn cycle in graphql-transport-ws: `connection_init`, its ack, the subscription, its
    first `next`, close."""
    subscribe = {"id": "1", "type": "subscribe", "payload": {"query": NOTIFICATIONS, "variables": variables}}
    steps = [
        (wire.text({"type": "connection_init", "payload": init}), b'"connection_ack"'),
        (wire.text(subscribe), b'"next"'),
    ]
    return wire.Cycle(port, "/graphql", steps, subprotocol="graphql-transport-ws")


async def churn_bare(cycles: int) -> dict[str, float]:
    async with bare_server(BASELINE_DISTINCT) as (url, pid):
        port = int(url.rsplit(":", 1)[1])
        cycle = wire.Cycle(port, "/churn", [(wire.text({"type": "subscribe"}), b'"replayed"')])
        return await _churn(cycle, cycles, pid)


async def churn_floor(cycles: int) -> dict[str, float]:
    async with bare_server(UVICORN_FLOOR) as (url, pid):
        return await _churn(_resume(int(url.rsplit(":", 1)[1]), {}, {}), cycles, pid)


async def in_loops(work: Callable[[], Awaitable[None]], count: int) -> None:
    """`work` `count` times, CHURN_LOOPS at once."""
    left = count

    async def loop() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await work()

    await asyncio.gather(*(loop() for _ in range(CHURN_LOOPS)))


async def _churn(cycle: Callable[[], Awaitable[None]], cycles: int, pid: int) -> dict[str, float]:
    # Warm up as measured (the same loops at once, a twentieth of the cycles): RSS growth is then
    # growth in the steady state, not the allocator's first reach for 8 cycles in flight.
    await in_loops(cycle, max(50, cycles // 20))
    await asyncio.sleep(1)
    rss_before = _rss_kib(pid)
    cpu_before = cpu_seconds(pid)
    client_before = time.process_time()
    started = time.perf_counter()
    await in_loops(cycle, cycles)
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    client = time.process_time() - client_before
    await asyncio.sleep(2)
    rss_after = _rss_kib(pid)
    return {
        "per_s": cycles / elapsed,
        "cpu_ms": cpu / cycles * 1000,
        "client_ms": client / cycles * 1000,
        "rss_growth": (rss_after - rss_before) / rss_before * 100,
    }


# --- 5. memory per idle subscriber --------------------------------------------------------------


async def memory_ours(ours: Ours, low: int, high: int) -> float:
    account, _ = await ours.family()
    return await _slope(lambda: ours.open(account.token), ours.pid, low, high)


async def memory_bare(low: int, high: int) -> float:
    async with bare_server(BASELINE_SERVER) as (url, pid):
        return await _slope(lambda: connect(url + "/sub", compression=None), pid, low, high)


async def _slope(opener: Callable[[], Awaitable[ClientConnection]], pid: int, low: int, high: int) -> float:
    sockets = await _open_many(low, opener)
    await asyncio.sleep(2)
    at_low = _rss_kib(pid)
    sockets += await _open_many(high - low, opener)
    await asyncio.sleep(2)
    at_high = _rss_kib(pid)
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return (at_high - at_low) / (high - low)


# --- 6. accessRevoked among idle sockets --------------------------------------------------------


async def access_revoked_p99(ours: Ours, idle: int, revocations: int) -> float:
    """p99 ms from `revokeVaultAccess` being sent to the advocate's socket reading `accessRevoked`,
    with `idle` subscribed sockets of another family open meanwhile."""
    base = f"http://127.0.0.1:{ours.port}"
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        gql = GraphQLClient(http, base.replace("http", "ws") + "/graphql")
        family, child, adv, _, relationship = await _supported(gql)
        bystander, _ = await ours.family()
        idle_sockets = await _open_many(idle, lambda: ours.open(bystander.token))
        # This process holds the other end of every idle socket: keep its own full collections
        # (which would stop the clock reading the latency) as short as the server's.
        gc.collect()
        gc.freeze()
        await asyncio.sleep(2)
        latencies: list[float] = []
        try:
            async with gql.socket(adv.token) as sock:
                await sock.ack()
                op = await sock.subscribe(ACCESS_REVOKED, {"after": await user_cursor(adv)})
                for _ in range(revocations):
                    grant = {"relationshipId": relationship, "scopes": ["EVIDENCE"], "childIds": [child]}
                    made = await gql.data(GRANT, {"input": grant}, family.token)
                    grant_id = made["grantVaultAccess"]["vaultGrant"]["id"]
                    start = time.perf_counter()
                    await gql.data(REVOKE, {"input": {"grantId": grant_id}}, family.token)
                    event = await sock.next_event(op)
                    latencies.append((time.perf_counter() - start) * 1000)
                    assert event["data"]["accessRevoked"]["vaultGrant"]["id"] == grant_id
        finally:
            await asyncio.gather(*(ws.close() for ws in idle_sockets), return_exceptions=True)
            gc.unfreeze()
    return _p(latencies, 0.99)


# --- the run ------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> list[str]:
    os.sched_setaffinity(0, {1})
    sizes = [int(s) for s in args.sizes.split(",")]
    rows: list[str] = []

    def row(*cells: object) -> None:
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")
        print(rows[-1], flush=True)

    rows += ["| scenario | ours | bare websockets | ratio |", "|---|---:|---:|---:|"]
    print("\n".join(rows), flush=True)
    only = set(args.only.split(",")) if args.only else set(SCENARIOS)
    async with ours_server(args.postgres, args.redis, args.profile) as serve:
        if "memory" in only:
            async with serve("memory") as ours:
                mine_kib = await memory_ours(ours, 1000, 5000)
            bare_kib = await memory_bare(1000, 5000)
            row("memory per idle subscribed socket (RSS slope, 1,000 → 5,000), KiB", f"{mine_kib:.1f}",
                f"{bare_kib:.1f}", f"{mine_kib / bare_kib:.2f}×")  # fmt: skip
        if "churn" in only:
            async with serve("churn") as ours:
                mine = await churn_ours(ours, args.churn_cycles)
            bare = await churn_bare(args.churn_cycles)
            row(f"churn, {args.churn_cycles:,} cycles: cycles per second", f"{mine['per_s']:,.0f}",
                f"{bare['per_s']:,.0f}", f"{mine['per_s'] / bare['per_s']:.2f}×")  # fmt: skip
            row("churn: server CPU ms per cycle", f"{mine['cpu_ms']:.2f}", f"{bare['cpu_ms']:.2f}",
                f"{mine['cpu_ms'] / bare['cpu_ms']:.1f}×")  # fmt: skip
            row("churn: the bench client's CPU ms per cycle (its own core)", f"{mine['client_ms']:.2f}",
                f"{bare['client_ms']:.2f}", "")  # fmt: skip
            floor = await churn_floor(args.churn_cycles)
            what = "churn: a bare ASGI app under uvicorn answering the same messages (in the ours column)"
            row(f"{what}: cycles per second", f"{floor['per_s']:,.0f}", f"{bare['per_s']:,.0f}",
                f"{floor['per_s'] / bare['per_s']:.2f}×")  # fmt: skip
            row(f"{what}: server CPU ms per cycle", f"{floor['cpu_ms']:.2f}", f"{bare['cpu_ms']:.2f}",
                f"{floor['cpu_ms'] / bare['cpu_ms']:.1f}×")  # fmt: skip
            row("churn: server RSS growth over the cycles", f"{mine['rss_growth']:+.1f}%",
                f"{bare['rss_growth']:+.1f}%", "")  # fmt: skip
        if "fanout" in only:
            async with serve("fanout") as ours:
                for n in sizes:
                    mine = await fan_out_ours(ours, n, args.events)
                    bare = await fan_out_bare(n, args.events)
                    slower = mine["last_p50"] / bare["last_p50"]
                    row(f"fan-out to {n:,} sockets of one family: last delivery, p50 ms",
                        f"{mine['last_p50']:.1f}", f"{bare['last_p50']:.1f}", f"{slower:.1f}×")  # fmt: skip
                    ratio = mine["per_cpu_s"] / bare["per_cpu_s"]
                    row(f"fan-out to {n:,}: deliveries per CPU-second", f"{mine['per_cpu_s']:,.0f}",
                        f"{bare['per_cpu_s']:,.0f}", f"{ratio:.2f}×")  # fmt: skip
        if "distinct" in only:
            async with serve("distinct") as ours:
                mine = await distinct_ours(ours, 1000, args.rounds)
            bare = await distinct_bare(1000, args.rounds)
            ratio = mine["per_cpu_s"] / bare["per_cpu_s"]
            what = f"1,000 different families, one event each (median of {args.rounds} rounds)"
            row(f"{what}: deliveries per CPU-second",
                f"{mine['per_cpu_s']:,.0f}", f"{bare['per_cpu_s']:,.0f}", f"{ratio:.2f}×")  # fmt: skip
        if "publisher" in only:
            async with serve("publisher") as ours:
                alone = await publisher_wait(ours, 0, args.events)
                crowded = await publisher_wait(ours, 1000, args.events)
            row("`logIn` (publishes) response p50 ms: no subscriber / 1,000 sockets of that family",
                f"{alone:.1f} / {crowded:.1f}", "", f"{crowded / alone:.2f}×")  # fmt: skip
        if "revoked" in only:
            async with serve("revoked-quiet") as ours:
                quiet = await access_revoked_p99(ours, 0, args.revocations)
            async with serve("revoked-busy") as ours:
                busy = await access_revoked_p99(ours, args.idle, args.revocations)
            row(f"`accessRevoked` p99 ms, revoke to delivery: no idle socket / {args.idle:,} idle sockets",
                f"{quiet:.1f} / {busy:.1f}", "", f"{busy / quiet:.2f}×")  # fmt: skip
    return rows


SCENARIOS = ("memory", "churn", "fanout", "distinct", "publisher", "revoked")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--churn-cycles", type=int, default=20000)
    parser.add_argument("--idle", type=int, default=10000, help="idle sockets for the accessRevoked scenario")
    parser.add_argument("--revocations", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5, help="bursts in the distinct-viewers scenario")
    parser.add_argument("--only", help=f"comma-separated scenarios, of {','.join(SCENARIOS)}")
    parser.add_argument(
        "--profile", type=Path, help="folder for a py-spy profile of the server in each scenario (not timed)"
    )
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    rows = asyncio.run(run(args))
    if args.write:
        append_results(args.write, "Live delivery", ("websockets", "redis"), rows)


if __name__ == "__main__":
    main()
