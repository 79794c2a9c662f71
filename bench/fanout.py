"""Fan-out benchmark: N websocket subscribers, one publisher, our server against raw websockets.

    .venv/bin/python bench/fanout.py [--sizes 100,500,1000] [--events 10]
                                     [--broadcast-url memory://] [--write bench/RESULTS.md]

Ours: `server.py serve` (one process, SQLite in a temporary directory, the given broadcast) with N
sockets of one family, each with a `notificationReceived` subscription; the publisher signs that
family in through the API (`logIn`), which commits a notification and publishes it. Each delivery
goes through the whole path: the per-event credential check, loading the notification, GraphQL
execution and serialisation. Latency is the time from the event's `occurredAt` (taken by the server
when the transaction starts) to the client reading it, on the same machine clock.

Baseline: a bare `websockets` server in its own process that stamps each message from the publisher
and hands it to `websockets.broadcast` for N subscribers: the floor for fan-out in Python.

Memory per idle subscriber: the server process's RSS after opening N subscribed, idle sockets,
minus its RSS before, divided by N. Clients run in this process; with many sockets their own
scheduling is part of the latency, for both servers alike. Not part of the test suite: run by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, free_port, fresh_database, machine, wait_ready

NOTIFICATIONS = "subscription { notificationReceived { cursor occurredAt notification { id kind title } } }"
SIGN_UP = """
mutation($input: SignUpInput!) { signUp(input: $input) { token userErrors { code } } }
"""
LOG_IN = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }"
PASSWORD = "bench-password-123"


@dataclass
class Result:
    server: str
    subscribers: int
    latencies_ms: list[float]
    rss_per_subscriber_kib: float
    # The server process's CPU time (user + system) while the events were delivered.
    cpu_seconds: float = 0.0

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def cpu_seconds(pid: int) -> float:
    """CPU time all of a process's threads have run so far (the scheduler's nanoseconds, not ticks)."""
    return (
        sum(int((task / "schedstat").read_text().split()[0]) for task in Path(f"/proc/{pid}/task").iterdir())
        / 1e9
    )


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Receivers:
    """N sockets, each read by its own task that stamps every message on arrival."""

    def __init__(self) -> None:
        self.sockets: list[ClientConnection] = []
        self.latencies: list[float] = []
        self.counts: list[int] = []
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, ws: ClientConnection, stamp: Callable[[dict[str, Any]], float | None]) -> None:
        index = len(self.sockets)
        self.sockets.append(ws)
        self.counts.append(0)

        async def read() -> None:
            async for raw in ws:
                arrived = time.time()
                sent = stamp(json.loads(raw))
                if sent is not None:
                    self.latencies.append((arrived - sent) * 1000)
                    self.counts[index] += 1

        self._tasks.append(asyncio.create_task(read()))

    async def wait_for(self, count: int, timeout: float = 60) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while min(self.counts) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {sum(c >= count for c in self.counts)} sockets got event {count}")
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        for task in self._tasks:
            task.cancel()


async def _open_many(n: int, opener: Callable[[], Awaitable[ClientConnection]]) -> list[ClientConnection]:
    opened: list[ClientConnection] = []
    for start in range(0, n, 50):
        opened.extend(await asyncio.gather(*(opener() for _ in range(min(50, n - start)))))
    return opened


# --- ours -----------------------------------------------------------------------------------


async def open_subscribed(
    port: int, token: str, query: str, variables: dict[str, Any] | None = None
) -> ClientConnection:
    """A graphql-transport-ws socket to our server, acknowledged, with one subscription sent."""
    ws = await connect(
        f"ws://127.0.0.1:{port}/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        compression=None,
        max_size=None,
    )
    await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    payload = {"query": query, "variables": variables or {}}
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    return ws


def _ours_stamp(message: dict[str, Any]) -> float | None:
    if message.get("type") != "next":
        return None
    occurred = message["payload"]["data"]["notificationReceived"]["occurredAt"]
    return datetime.fromisoformat(occurred).timestamp()


async def run_ours(n: int, events: int, broadcast_url: str, postgres_url: str | None) -> Result:
    port = free_port()
    async with fresh_database(postgres_url) as database_url:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "BROADCAST_URL": broadcast_url,
            "BROADCAST_NAMESPACE": f"bench-{os.getpid()}",
            "RATE_LIMIT_PER_MINUTE": "1000000",
            "ANONYMOUS_RATE_LIMIT_PER_MINUTE": "1000000",
            "MAX_SUBSCRIPTION_QUEUE": "10000",
            # The bench holds N sockets with one credential; the per-credential cap protects
            # real servers from one client's sockets, not what is measured here.
            "MAX_SOCKETS_PER_CREDENTIAL": str(n + 10),
        }
        migrate = await asyncio.create_subprocess_exec(
            sys.executable, "server.py", "migrate", cwd=ROOT, env=env, stdout=subprocess.DEVNULL
        )
        assert await migrate.wait() == 0
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "server.py",
            "serve",
            "--port",
            str(port),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        receivers = Receivers()
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_ready(base + "/readyz", proc)
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                email = f"bench{port}@example.test"
                signed = await http.post(
                    "/graphql",
                    json={
                        "query": SIGN_UP,
                        "variables": {
                            "input": {
                                "email": email,
                                "password": PASSWORD,
                                "displayName": "Bench",
                                "role": "FAMILY",
                            }
                        },
                    },
                )
                token = signed.json()["data"]["signUp"]["token"]

                async def open_one() -> ClientConnection:
                    return await open_subscribed(port, token, NOTIFICATIONS)

                await _open_many(2, open_one)  # warm up imports and caches before measuring
                await asyncio.sleep(1)
                before = _rss_kib(proc.pid)
                for ws in await _open_many(n, open_one):
                    receivers.start(ws, _ours_stamp)
                await asyncio.sleep(2)
                after = _rss_kib(proc.pid)
                for i in range(1, events + 1):
                    await http.post(
                        "/graphql", json={"query": LOG_IN, "variables": {"e": email, "p": PASSWORD}}
                    )
                    await receivers.wait_for(i)
            return Result("ours", n, receivers.latencies, (after - before) / n)
        finally:
            await receivers.close()
            proc.terminate()
            await proc.wait()


# --- baseline -------------------------------------------------------------------------------

BASELINE_SERVER = r"""
import asyncio, json, sys, time
from websockets.asyncio.server import broadcast, serve

subscribers = set()

async def handler(ws):
    if ws.request.path == "/pub":
        async for message in ws:
            broadcast(subscribers, json.dumps({"t": time.time(), "payload": message}))
        return
    subscribers.add(ws)
    try:
        await ws.wait_closed()
    finally:
        subscribers.discard(ws)

async def main():
    async with serve(handler, "127.0.0.1", int(sys.argv[1]), compression=None):
        print("ready", flush=True)
        await asyncio.Future()

asyncio.run(main())
"""


def _baseline_stamp(message: dict[str, Any]) -> float | None:
    return float(message["t"])


async def run_baseline(n: int, events: int, sample_payload: str) -> Result:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", BASELINE_SERVER, str(port), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    receivers = Receivers()
    try:
        assert proc.stdout is not None
        await proc.stdout.readline()
        url = f"ws://127.0.0.1:{port}"

        async def open_one() -> ClientConnection:
            return await connect(url + "/sub", compression=None)

        warm = await _open_many(2, open_one)
        await asyncio.sleep(1)
        before = _rss_kib(proc.pid)
        for ws in await _open_many(n, open_one):
            receivers.start(ws, _baseline_stamp)
        await asyncio.sleep(2)
        after = _rss_kib(proc.pid)
        cpu = 0.0
        async with connect(url + "/pub", compression=None) as publisher:
            for i in range(1, events + 1):
                start = cpu_seconds(proc.pid)
                await publisher.send(sample_payload)
                await receivers.wait_for(i)
                cpu += cpu_seconds(proc.pid) - start
                await asyncio.sleep(0.05)
        for ws in warm:
            await ws.close()
        return Result("websockets.broadcast", n, receivers.latencies, (after - before) / n, cpu)
    finally:
        await receivers.close()
        proc.terminate()
        await proc.wait()


# --- report ---------------------------------------------------------------------------------


def _table(results: list[tuple[Result, Result]]) -> list[str]:
    lines = [
        "| subscribers | server | p50 ms | p99 ms | KiB per idle subscriber |",
        "| ---: | --- | ---: | ---: | ---: |",
    ]
    for ours, base in results:
        for r in (ours, base):
            lines.append(
                f"| {r.subscribers} | {r.server} | {r.p50:.1f} | {r.p99:.1f} "
                f"| {r.rss_per_subscriber_kib:.1f} |"
            )
        memory_ratio = ours.rss_per_subscriber_kib / max(base.rss_per_subscriber_kib, 0.1)
        lines.append(
            f"| {ours.subscribers} | ratio ours / baseline | {ours.p50 / base.p50:.1f}x | "
            f"{ours.p99 / base.p99:.1f}x | {memory_ratio:.1f}x |"
        )
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100,500,1000")
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--broadcast-url", default="memory://")
    parser.add_argument(
        "--postgres-url", default=None, help="run our server on PostgreSQL (a database is made and dropped)"
    )
    parser.add_argument("--write", type=Path, default=None, help="write the results as Markdown here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    sample = json.dumps({"notification": {"id": "Tm90aWZpY2F0aW9uOjEyMw==", "kind": "NEW_SIGN_IN"}})
    results = []
    for n in sizes:
        ours = await run_ours(n, args.events, args.broadcast_url, args.postgres_url)
        base = await run_baseline(n, args.events, sample)
        results.append((ours, base))
        print(
            f"N={n}: ours p50 {ours.p50:.1f} ms p99 {ours.p99:.1f} ms {ours.rss_per_subscriber_kib:.1f} KiB; "
            f"baseline p50 {base.p50:.1f} ms p99 {base.p99:.1f} ms {base.rss_per_subscriber_kib:.1f} KiB"
        )
    table = _table(results)
    print("\n".join(table))
    if args.write:
        command = " ".join(["python bench/fanout.py", *sys.argv[1:]])
        args.write.write_text(
            "\n".join(
                [
                    "# Fan-out benchmark",
                    "",
                    f"Run on {datetime.now().astimezone():%Y-%m-%d %H:%M %Z} with `{command}`"
                    f" ({args.events} events per size; our server on "
                    f"{'PostgreSQL' if args.postgres_url else 'SQLite'}, broadcast `{args.broadcast_url}`).",
                    "",
                    *machine(("websockets",)),
                    "",
                    *table,
                    "",
                ]
            )
        )


if __name__ == "__main__":
    asyncio.run(main())
