"""Abuse benchmark: an ordinary signed-in query's p99, alone and while attackers send their worst.

    .venv/bin/python bench/abuse.py [--blocks 12] [--block-seconds 10] [--rate 5] [--attackers 2]
                                    [--flood] [--write bench/RESULTS.md]

One `server.py serve` process (SQLite in a temporary directory, `memory://` broadcast, the default
limits, the demo data from `seed-demo`), pinned to CPU 0 with `taskset` when it is available; this
client process runs on the other CPUs. One signed-in family sends an ordinary query `--rate` times a
second for the whole run. The run is cut into `--blocks` blocks of `--block-seconds`, alternately
without and with attackers, so that both sides of the comparison see the same background (this
machine is shared): the p99 of the ordinary query's latency in the blocks with attackers is compared
with its p99 in the blocks without. Samples in the first half second after a switch are not counted.

The attackers, each from `--attackers` concurrent loops, send as fast as they are allowed:
anonymous fragment bombs (190 fragments, each spreading the previous one twice, under the token
limit), and, as one signed-in account, the most costly query allowed (cost 9,901 of 10,000,
executed while the account has points) and the 30-alias directory query (cost 129,030, refused).
Each request names its operation anew, so that no cache keyed on the text can help the server.
Past their budget they get 429s and wait the `Retry-After` they are given; with `--flood` they
ignore it and keep sending, a raw request flood. Their buckets refill while they are paused, so
each attacked block starts with a burst.

The ratio p99(with attackers) / p99(alone) is what SPEC §12 bounds (at most 2). Every loop is bounded
in count and time; only 127.0.0.1 is used. Not part of the test suite: run by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    free_port,
    p99,
    wait_ready,
)

PASSWORD = "bench-password-123"
SIGN_UP = "mutation($input: SignUpInput!) { signUp(input: $input) { token userErrors { code } } }"
ORDINARY = "{ viewer { id displayName } notifications(first: 10) { edges { node { id kind } } } }"
MAXIMAL = (
    "{ advocates(first: 100) { edges { node { id displayName "
    "reviews(first: 48) { edges { node { rating text } } } } } } }"
)
TOO_COSTLY = (
    "{ "
    + " ".join(
        f"a{i}: advocates(first: 100) {{ edges {{ node {{ id "
        "reviews { edges { node { text } } } } } }"
        for i in range(30)
    )
    + " }"
)
# Attack loops stop after this long or this many requests each, whichever comes first.
ATTACK_SECONDS = 320
ATTACK_REQUESTS = 100_000


def fragment_bomb(fragments: int = 190) -> str:
    parts = ["fragment F0 on Query { viewer { id } }"]
    parts += [f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, fragments)]
    return f"query {{ ...F{fragments - 1} }} " + " ".join(parts)


def varied(query: str, n: int) -> str:
    """The same operation under a new name each time, so no cache on the server can help."""
    if query.startswith("query {"):
        return f"query Q{n} " + query.removeprefix("query ")
    return f"query Q{n} " + query


async def _sign_up(http: httpx.AsyncClient, name: str) -> str:
    email = f"{name}-{os.getpid()}-{time.time_ns()}@example.test"
    variables = {"input": {"email": email, "password": PASSWORD, "displayName": name, "role": "FAMILY"}}
    answer = await http.post("/graphql", json={"query": SIGN_UP, "variables": variables})
    token: str = answer.json()["data"]["signUp"]["token"]
    return token


async def attack(
    base: str,
    query: str,
    token: str | None,
    go: asyncio.Event,
    stop: asyncio.Event,
    seen: Counter[str],
    flood: bool,
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + ATTACK_SECONDS
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for sent in range(ATTACK_REQUESTS):
            await go.wait()
            if stop.is_set() or time.monotonic() > deadline:
                return
            answer = await http.post("/graphql", json={"query": varied(query, sent)}, headers=headers)
            errors = answer.json().get("errors") or []
            seen[f"{answer.status_code} {errors[0]['extensions']['code'] if errors else 'ok'}"] += 1
            if answer.status_code == 429 and not flood:
                wait = float(answer.headers["Retry-After"])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=min(wait, deadline - time.monotonic()))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    kinds = set(args.kinds.split(","))
    with tempfile.TemporaryDirectory(prefix="senvault-abuse-") as tmp:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite://{Path(tmp) / 'bench.sqlite3'}",
            "BROADCAST_URL": "memory://",
        }
        for command in ("migrate", "seed-demo"):
            subprocess.run(  # noqa: ASYNC221 - setup, before anything is measured
                [sys.executable, "server.py", command], cwd=ROOT, env=env, check=True, capture_output=True
            )
        pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
        proc = subprocess.Popen(  # noqa: ASYNC220 - the server under test, stopped below
            [*pin, sys.executable, "server.py", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        alone: list[float] = []
        attacked: list[float] = []
        seen: Counter[str] = Counter()
        go, stop = asyncio.Event(), asyncio.Event()
        loops: list[asyncio.Task[None]] = []
        try:
            await wait_ready(f"{base}/readyz", proc)
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                token = await _sign_up(http, "Measured")
                attacker_token = await _sign_up(http, "Attacker")
                headers = {"Authorization": f"Bearer {token}"}
                loops = [
                    asyncio.create_task(attack(base, query, who, go, stop, seen, args.flood))
                    for kind, query, who in (
                        ("bomb", fragment_bomb(), None),
                        ("maximal", MAXIMAL, attacker_token),
                        ("costly", TOO_COSTLY, attacker_token),
                    )
                    if kind in kinds
                    for _ in range(args.attackers)
                ]
                for _ in range(20):  # warm up
                    await http.post("/graphql", json={"query": ORDINARY}, headers=headers)
                begin = time.perf_counter()
                interval = 1.0 / args.rate
                for n in range(int(args.blocks * args.block_seconds * args.rate)):
                    await asyncio.sleep(max(0.0, begin + n * interval - time.perf_counter()))
                    elapsed = time.perf_counter() - begin
                    block, into = divmod(elapsed, args.block_seconds)
                    under_attack = int(block) % 2 == 1
                    if under_attack != go.is_set():
                        if under_attack:
                            go.set()
                        else:
                            go.clear()
                    started = time.perf_counter()
                    answer = await http.post("/graphql", json={"query": ORDINARY}, headers=headers)
                    took = (time.perf_counter() - started) * 1000
                    assert answer.status_code == 200, answer.text
                    assert not answer.json().get("errors"), answer.text
                    if into >= 0.5:
                        (attacked if under_attack else alone).append(took)
        finally:
            stop.set()
            go.set()
            await asyncio.gather(*loops, return_exceptions=True)
            proc.terminate()
            proc.wait(10)
    return {
        "alone": alone,
        "attacked": attacked,
        "seen": seen,
        "pinned": bool(pin),
        "flood": args.flood,
        "kinds": sorted(kinds),
    }


def report(result: dict[str, Any], args: argparse.Namespace, command: str) -> list[str]:
    alone, attacked = result["alone"], result["attacked"]
    ratio = p99(attacked) / p99(alone)
    seen: Counter[str] = result["seen"]
    packages = ", ".join(
        f"{p} {__import__('importlib.metadata').metadata.version(p)}"
        for p in ("strawberry-graphql", "starlette", "uvicorn", "graphql-core")
    )
    mode = "ignoring 429 (flood)" if result["flood"] else "honouring Retry-After"
    return [
        f"### {args.attackers} loops each of {', '.join(result['kinds'])}, {mode}",
        "",
        f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `{command}`. Server on SQLite, `memory://`, "
        "default limits, "
        + ("pinned to CPU 0 with `taskset`." if result["pinned"] else "not pinned (no `taskset`)."),
        f"Machine: {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, load average "
        f"{os.getloadavg()[0]:.1f} at the end (shared with other work); Python {platform.python_version()}; "
        f"{packages}.",
        "",
        "| ordinary query | samples | p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: |",
        f"| blocks without attackers | {len(alone)} | {statistics.median(alone):.1f} | {p99(alone):.1f} |",
        f"| blocks with attackers | {len(attacked)} | {statistics.median(attacked):.1f} "
        f"| {p99(attacked):.1f} |",
        f"| ratio | | {statistics.median(attacked) / statistics.median(alone):.2f}x | **{ratio:.2f}x** |",
        "",
        "What the attackers got back (status, code: count): "
        + ", ".join(f"{k}: {v}" for k, v in sorted(seen.items())),
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--block-seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=5.0, help="ordinary queries a second")
    parser.add_argument("--flood", action="store_true", help="attackers ignore Retry-After")
    parser.add_argument("--attackers", type=int, default=2)
    parser.add_argument(
        "--kinds", default="bomb,maximal,costly", help="which attacks to run (comma-separated)"
    )
    parser.add_argument("--write", type=Path, help="append the results to this Markdown file")
    args = parser.parse_args()
    if args.rate > 9:
        parser.error("--rate above 9 would spend the measured account's own budget (600 a minute)")
    if args.blocks * args.block_seconds > 300:
        parser.error("the run is at most 300 seconds")
    if shutil.which("taskset"):
        # This client on the other CPUs, so it does not compete with the server for CPU 0.
        others = set(range(os.cpu_count() or 1)) - {0}
        if others:
            os.sched_setaffinity(0, others)
    result = asyncio.run(run(args))
    command = ("python bench/abuse.py " + " ".join(sys.argv[1:])).strip()
    lines = report(result, args, command)
    print("\n".join(lines))
    if args.write:
        with args.write.open("a") as out:
            out.write("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
