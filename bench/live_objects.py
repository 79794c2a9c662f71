"""What the server keeps, and what its garbage collector costs, while it delivers live events, turns
sockets over and answers requests.

    .venv/bin/python bench/live_objects.py [--only distinct,fanout,churn,http] [--sockets 1000]
                                           [--bursts 10] [--cycles 5000] [--requests 4000]
                                           [--postgres URL] [--redis URL]

The server is `server.py serve` on a fresh PostgreSQL database and Redis, as `bench/live.py` starts
it, with `bench/gc_probe` on its PYTHONPATH: that folder's `sitecustomize` times every collection
(`gc.callbacks`) and, when signalled, reports them with the objects that survive a full collection.
Each scenario warms up, takes a report, does its work, and takes another:

- distinct: `--sockets` families, one subscribed socket each, `--bursts` bursts of one event each;
- fanout: `--sockets` sockets of one family, `--bursts` events;
- churn: `--cycles` of connect, subscribe with `after`, the replayed event, close (8 at once);
- http: `--requests` small authenticated queries (8 at once).

In a steady state the live objects stay flat: growth that follows the work is a leak (run 9 of
`bench/RESULTS.md`: graphql-core's per-event memo kept about 26 objects for every event a
subscription delivered). The collections' time is given as a share of the server's CPU over the
work. Not timed against a baseline: what it measures is growth and a share, which do not depend on
how fast this machine is today. Run by hand, never by the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine
from bench.fanout import Receivers, _open_many, cpu_seconds
from bench.live import Ours, _opener, _stamp, churn_cycle, in_loops, ours_server

SCENARIOS = ("distinct", "fanout", "churn", "http")
PROBE = Path(__file__).resolve().parent / "gc_probe"
QUERY = "query { viewer { __typename } }"


class Probe:
    """The reports of one server process."""

    def __init__(self, base: str, pid: int) -> None:
        self.base = base
        self.pid = pid
        self.taken = 0

    async def report(self) -> dict[str, Any]:
        path = Path(f"{self.base}.{self.pid}.{self.taken}")
        self.taken += 1
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 60
        while not await asyncio.to_thread(path.exists):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no report from the server at {path}")
            await asyncio.sleep(0.1)
        report: dict[str, Any] = json.loads(await asyncio.to_thread(path.read_text))
        return report


async def distinct(ours: Ours, args: argparse.Namespace, probe: Probe) -> tuple[str, int, dict[str, Any]]:
    families = [await ours.family() for _ in range(args.sockets)]
    receivers = Receivers()
    try:
        for ws in await _open_many(args.sockets, _opener(ours, families)):
            receivers.start(ws, _stamp)
        await asyncio.sleep(2)
        users = [user_id for _, user_id in families]
        await ours.notify(users)  # the warm-up burst
        await receivers.wait_for(1)
        # A burst is one event to each family: `--sockets` deliveries.
        return await _measured(ours, probe, "bursts", args.bursts, _bursts(ours, receivers, users))
    finally:
        await receivers.close()


async def fanout(ours: Ours, args: argparse.Namespace, probe: Probe) -> tuple[str, int, dict[str, Any]]:
    account, user_id = await ours.family()
    receivers = Receivers()
    try:
        for ws in await _open_many(args.sockets, lambda: ours.open(account.token)):
            receivers.start(ws, _stamp)
        await asyncio.sleep(2)
        await ours.notify([user_id])
        await receivers.wait_for(1)
        # An event reaches every socket: `--sockets` deliveries.
        return await _measured(ours, probe, "events", args.bursts, _bursts(ours, receivers, [user_id]))
    finally:
        await receivers.close()


def _bursts(ours: Ours, receivers: Receivers, users: list[int]) -> Callable[[int], Awaitable[None]]:
    """Bursts of one event to each of `users`, each waited for, counted from the warm-up's one."""
    done = [1]

    async def bursts(count: int) -> None:
        for _ in range(count):
            done[0] += 1
            await ours.notify(users)
            await receivers.wait_for(done[0])
            await asyncio.sleep(0.2)

    return bursts


async def churn(ours: Ours, args: argparse.Namespace, probe: Probe) -> tuple[str, int, dict[str, Any]]:
    cycle = await churn_cycle(ours)
    await in_loops(cycle, max(50, args.cycles // 4))
    return await _measured(ours, probe, "cycles", args.cycles, lambda n: in_loops(cycle, n))


async def http(ours: Ours, args: argparse.Namespace, probe: Probe) -> tuple[str, int, dict[str, Any]]:
    account, _ = await ours.family()
    headers = {"Authorization": f"Bearer {account.token}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ours.port}", headers=headers) as client:

        async def request() -> None:
            answer = await client.post("/graphql", json={"query": QUERY})
            assert answer.status_code == 200, answer.text

        await in_loops(request, max(50, args.requests // 4))
        return await _measured(ours, probe, "requests", args.requests, lambda n: in_loops(request, n))


async def _measured(
    ours: Ours, probe: Probe, unit: str, units: int, work: Callable[[int], Awaitable[None]]
) -> tuple[str, int, dict[str, Any]]:
    """`work` in two equal halves, with a report before, between and after: a leak grows the live
    objects in the second half as in the first; caches filling up grow them in the first only."""
    await asyncio.sleep(1)
    reports = [await probe.report()]
    cpu = cpu_seconds(ours.pid)
    for _ in range(2):
        await work(units // 2)
        reports.append(await probe.report())
    cpu = cpu_seconds(ours.pid) - cpu
    first, _, last = reports
    collected = {
        g: [last["stats"][g][i] - first["stats"][g][i] for i in range(2)]
        + [max(r["stats"][g][2] for r in reports[1:])]
        for g in ("0", "1", "2")
    }
    grown = {k: last["types"].get(k, 0) - reports[1]["types"].get(k, 0) for k in last["types"]}
    top = sorted(((v, k) for k, v in grown.items() if v > 0), reverse=True)[:3]
    return unit, units // 2 * 2, {
        "live": [r["live"] for r in reports], "cpu": cpu, "collected": collected, "top": top,
    }  # fmt: skip


async def run(args: argparse.Namespace) -> None:
    chosen = args.only.split(",") if args.only else list(SCENARIOS)
    scenarios = {"distinct": distinct, "fanout": fanout, "churn": churn, "http": http}
    with tempfile.TemporaryDirectory() as folder:
        # Read by the server processes `ours_server` starts (it copies the environment on entry).
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROBE), os.environ.get("PYTHONPATH")]))
        os.environ["GC_PROBE_OUT"] = f"{folder}/report"
        async with ours_server(args.postgres, args.redis) as serve:
            for name in chosen:
                async with serve(name) as ours:
                    probe = Probe(f"{folder}/report", ours.pid)
                    unit, units, found = await scenarios[name](ours, args, probe)
                print(_row(name, unit, units, found), flush=True)


def _row(name: str, unit: str, units: int, found: dict[str, Any]) -> str:
    start, half, end = found["live"]
    cpu = max(found["cpu"], 1e-9)
    shares = " / ".join(f"{100 * found['collected'][g][1] / cpu:.1f}%" for g in ("0", "1", "2"))
    full = found["collected"]["2"]
    top = ", ".join(f"{k} +{v:,}" for v, k in found["top"]) or "none"
    return (
        f"| {name} | {units:,} {unit} | {start:,} → {half:,} → {end:,} | {(end - half) / (units / 2):+.2f}"
        f" | {shares} | {int(full[0])}, longest {1000 * full[2]:.0f} ms | {top} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", help=f"comma-separated scenarios, of {','.join(SCENARIOS)}")
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--bursts", type=int, default=10)
    parser.add_argument("--cycles", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    args = parser.parse_args()
    for line in machine():
        print(line)
    print(
        "| scenario | work | live objects: start → half → end | per unit, second half"
        " | collections' share of CPU (gen 0 / 1 / 2) | full collections | grew most, second half |"
    )
    print("|---|---|---|---:|---|---|---|")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
