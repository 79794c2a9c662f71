"""Abuse benchmark: an ordinary signed-in query's p99, alone and while attackers send their worst.

    .venv/bin/python bench/abuse.py [--samples 300] [--seconds 65] [--attackers 2] [--flood]
                                    [--write bench/RESULTS.md]

One `server.py serve` process (SQLite in a temporary directory, `memory://` broadcast, the default
limits, the demo data from `seed-demo`), pinned to CPU 0 with `taskset` when it is available; this
client process runs on the other CPUs. The measured client sends `--samples` ordinary queries,
evenly spread over `--seconds` (longer than the one-minute rate-limit window, so the attackers'
budgets are renewed at least once inside the phase), each phase as a fresh family account, and takes
the p99 of their latency, twice in the same run:

1. with no attacker;
2. while attackers send as fast as they can, each from `--attackers` concurrent loops:
   anonymous fragment bombs (190 fragments, each spreading the previous one twice, under the token
   limit), and, as one signed-in account, the most costly query allowed (cost 9,901 of 10,000,
   executed while the account has points) and the 30-alias directory query (cost 129,030, refused).
   Each request names its operation anew, so that no cache keyed on the text can help the server.
   Past their budget they get 429s and wait the `Retry-After` they are given ("as fast as it is
   allowed"); with `--flood` they ignore it and keep sending, a raw request flood.

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
import socket
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

ROOT = Path(__file__).resolve().parent.parent
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


async def _wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError("the server exited")
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("the server did not start")


async def _sign_up(http: httpx.AsyncClient, name: str) -> str:
    email = f"{name}-{os.getpid()}-{time.time_ns()}@example.test"
    variables = {"input": {"email": email, "password": PASSWORD, "displayName": name, "role": "FAMILY"}}
    answer = await http.post("/graphql", json={"query": SIGN_UP, "variables": variables})
    token: str = answer.json()["data"]["signUp"]["token"]
    return token


async def measure(http: httpx.AsyncClient, token: str, samples: int, seconds: float) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    begin = time.perf_counter()
    for n in range(samples):
        await asyncio.sleep(max(0.0, begin + n * seconds / samples - time.perf_counter()))
        started = time.perf_counter()
        answer = await http.post("/graphql", json={"query": ORDINARY}, headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.text
        assert not answer.json().get("errors"), answer.text
    return latencies


async def attack(
    base: str, query: str, token: str | None, stop: asyncio.Event, seen: Counter[str], flood: bool
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + ATTACK_SECONDS
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for sent in range(ATTACK_REQUESTS):
            if stop.is_set() or time.monotonic() > deadline:
                return
            answer = await http.post("/graphql", json={"query": varied(query, sent)}, headers=headers)
            body = answer.json()
            errors = body.get("errors") or []
            seen[f"{answer.status_code} {errors[0]['extensions']['code'] if errors else 'ok'}"] += 1
            if answer.status_code == 429 and not flood:
                wait = float(answer.headers["Retry-After"])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=min(wait, deadline - time.monotonic()))


async def run(samples: int, seconds: float, attackers: int, kinds: set[str], flood: bool) -> dict[str, Any]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
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
        try:
            await _wait_ready(base, proc)
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                alone_token = await _sign_up(http, "Alone")
                attacked_token = await _sign_up(http, "Attacked")
                attacker_token = await _sign_up(http, "Attacker")
                await measure(http, alone_token, 20, 1.0)  # warm up
                loads = [os.getloadavg()[0]]
                alone = await measure(http, alone_token, samples, seconds)
                loads.append(os.getloadavg()[0])
                stop = asyncio.Event()
                seen: Counter[str] = Counter()
                loops = [
                    asyncio.create_task(attack(base, query, token, stop, seen, flood))
                    for kind, query, token in (
                        ("bomb", fragment_bomb(), None),
                        ("maximal", MAXIMAL, attacker_token),
                        ("costly", TOO_COSTLY, attacker_token),
                    )
                    if kind in kinds
                    for _ in range(attackers)
                ]
                # Measured from the attack's first request: the attackers' budgets are spent
                # inside the measured phase, and then they are refused.
                await asyncio.sleep(0)
                attacked = await measure(http, attacked_token, samples, seconds)
                loads.append(os.getloadavg()[0])
                stop.set()
                await asyncio.gather(*loops)
        finally:
            proc.terminate()
            proc.wait(10)
    return {
        "alone": alone,
        "attacked": attacked,
        "seen": seen,
        "pinned": bool(pin),
        "flood": flood,
        "kinds": sorted(kinds),
        "loads": loads,
    }


def report(result: dict[str, Any], samples: int, attackers: int, command: str) -> list[str]:
    alone, attacked = result["alone"], result["attacked"]
    ratio = p99(attacked) / p99(alone)
    seen: Counter[str] = result["seen"]
    packages = ", ".join(
        f"{p} {__import__('importlib.metadata').metadata.version(p)}"
        for p in ("strawberry-graphql", "starlette", "uvicorn", "graphql-core")
    )
    return [
        "## Abuse: an ordinary query while attackers send their worst",
        "",
        f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `{command}`: how it is measured is in the "
        "docstring of [`abuse.py`](abuse.py). Server on SQLite, `memory://`, default limits, "
        + ("pinned to CPU 0 with `taskset`." if result["pinned"] else "not pinned (no `taskset`)."),
        "",
        f"- Machine: {os.cpu_count()} CPUs, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; {packages}",
        "",
        "| phase | samples | p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: |",
        f"| alone | {len(alone)} | {statistics.median(alone):.1f} | {p99(alone):.1f} |",
        f"| with {attackers}×{len(result['kinds'])} attack loops ({', '.join(result['kinds'])}), "
        + ("ignoring 429 (flood)" if result["flood"] else "honouring Retry-After")
        + f" | {len(attacked)} | {statistics.median(attacked):.1f} | {p99(attacked):.1f} |",
        f"| ratio | | {statistics.median(attacked) / statistics.median(alone):.2f}x | {ratio:.2f}x |",
        "",
        "The machine's 1-minute load average before, between and after the phases (other work on "
        "this shared machine is noise in both phases): " + ", ".join(f"{x:.2f}" for x in result["loads"]),
        "",
        "What the attackers got back while the ordinary query was measured (status, code: count): "
        + ", ".join(f"{k}: {v}" for k, v in sorted(seen.items())),
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=65.0)
    parser.add_argument("--flood", action="store_true", help="attackers ignore Retry-After")
    parser.add_argument("--attackers", type=int, default=2)
    parser.add_argument(
        "--kinds", default="bomb,maximal,costly", help="which attacks to run (comma-separated)"
    )
    parser.add_argument("--write", type=Path, help="append the results to this Markdown file")
    args = parser.parse_args()
    if args.samples > 550:
        parser.error("--samples above 550 would spend the measured account's own budget (600 a minute)")
    if shutil.which("taskset"):
        # This client on the other CPUs, so it does not compete with the server for CPU 0.
        others = set(range(os.cpu_count() or 1)) - {0}
        if others:
            os.sched_setaffinity(0, others)
    if args.seconds > 300:
        parser.error("--seconds is at most 300")
    kinds = set(args.kinds.split(","))
    result = asyncio.run(run(args.samples, args.seconds, args.attackers, kinds, args.flood))
    command = "python bench/abuse.py " + " ".join(sys.argv[1:])
    lines = report(result, args.samples, args.attackers, command.strip())
    print("\n".join(lines))
    if args.write:
        with args.write.open("a") as out:
            out.write("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
