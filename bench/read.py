"""Read-path benchmark: the API against its baselines, side by side in one run, on PostgreSQL.

    apt install wrk; (cd bench/js && npm ci)      # once: the load tool and PostGraphile
    .venv/bin/python bench/read.py [--seconds 10] [--connections 32] [--rounds 2]
                                   [--postgres postgres://postgres@127.0.0.1:5432/postgres]
                                   [--write bench/RESULTS.md]

A fresh PostgreSQL database is migrated and filled through the API: one advocate with 60 tickets
(every other request accepted with a message; two checklist items each) from one family with 60
children. Every server is pinned to CPU 0 with `taskset`; the load (wrk, 1 thread) runs on CPU 1.
Each scenario is measured `--rounds` times, the API and its baselines taking turns, and the best
round of each is kept (the machine is shared: the best round is the least disturbed one).

1. `{ __typename }` over HTTP against a bare Starlette route (`bench/baselines.py`, same uvicorn).
2. The advocate's dashboard, `DASHBOARD_PAGE` of `tests/test_read_path.py` with 50 tickets, against
   PostGraphile 4.14 on the same database (the same fields through its generated schema; it does
   no authentication and no access rules), and against a hand-written asyncpg + orjson endpoint
   that answers the same bytes (checked before timing). Then each server's p99 latency at 70% of
   its own maximum, from an open-loop client (latency counted from each request's scheduled time).
3. The family's SPA home page (`FAMILY_HOME`, 20 items), the API alone.

Not part of the test suite: run by hand. `--write` appends the results to a Markdown file.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, free_port, fresh_database, machine, p99, wait_ready
from tests.factories import (
    ADD_CHILD,
    REQUEST_VERIFICATION,
    SEND_REQUEST,
    SIGN_UP,
    UPDATE_PROFILE,
    VERIFY,
)
from tests.test_read_path import DASHBOARD_PAGE, FAMILY_HOME
from tests.test_support_requests import ACCEPT
from tests.test_tickets import ADD_ITEM

PASSWORD = "bench-password-123"
TICKETS = 60
PAGE = 50
HOME_PAGE = 20
LOG_IN = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }"
TICKET_OF = "query($r: ID!) { node(id: $r) { ... on SupportRequest { ticket { id } } } }"
# The dashboard's fields through PostGraphile's generated schema (default inflection).
POSTGRAPHILE_DASHBOARD = """
query($n: Int, $advocate: BigInt) {
  allTickets(first: $n, condition: {advocateId: $advocate}, orderBy: [NEXT_SLA_DUE_AT_ASC, ID_ASC]) {
    pageInfo { hasNextPage endCursor }
    edges { node {
      id status nextSlaDueAt nextSlaAtRiskFrom
      familyByFamilyId { userByUserId { displayName } }
      checklistItemsByTicketId(orderBy: [POSITION_ASC, ID_ASC]) { nodes { id text done } }
      supportRequestByRequestId {
        id childDisplayName childAgeYears ehcpStage
        childByChildId { id displayName }
        threadByThreadId {
          messagesByThreadId(first: 5, orderBy: [ID_ASC]) { nodes { id body createdAt authorId } }
        }
      }
    } }
  }
}
"""


@dataclass
class Load:
    """One wrk run."""

    rps: float
    p50_ms: float
    p99_ms: float


@dataclass
class Target:
    name: str
    url: str
    body: dict[str, Any]
    headers: dict[str, str]


def _ms(text: str) -> float:
    value = float(re.sub(r"[a-z]+$", "", text))
    unit = re.sub(r"^[0-9.]+", "", text)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(target: Target, seconds: int, connections: int) -> Load:
    """Closed-loop maximum: wrk on CPU 1, `connections` connections, one thread."""
    body = json.dumps(target.body)
    headers = {"Content-Type": "application/json", **target.headers}
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{body}]==]"]
    lines += [f'wrk.headers["{k}"] = [==[{v}]==]' for k, v in headers.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    try:
        out = subprocess.run(
            [
                *_pin(1),
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "30s",
                "--latency",
                "-s",
                script.name,
                target.url,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        os.unlink(script.name)
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"{target.name}: errors under load:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99_ = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    return Load(rps, p50, p99_)


async def open_loop(target: Target, rate: float, seconds: float) -> tuple[float, int, float]:
    """p99 latency (ms) at a fixed arrival rate, counted from each request's scheduled start; the
    failures; and the rate this client achieved (below the target rate, the client was the limit)."""
    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:

        async def one(scheduled: float) -> None:
            nonlocal failures
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            answer = await http.post(target.url, json=target.body, headers=target.headers)
            if answer.status_code != 200:
                failures += 1
            latencies.append((time.perf_counter() - scheduled) * 1000)

        start = time.perf_counter() + 0.2
        count = int(rate * seconds)
        await asyncio.gather(*(one(start + i / rate) for i in range(count)))
        achieved = count / (time.perf_counter() - start)
    return p99(latencies), failures, achieved


def _pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") else []


@contextmanager
def process(command: list[str], env: dict[str, str], cwd: Path = ROOT) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _data(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None = None
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = (
        await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    ).json()
    if answer.get("errors"):
        raise RuntimeError(f"setup failed: {answer['errors']}")
    return answer["data"]


async def build_world(http: httpx.AsyncClient, env: dict[str, str]) -> tuple[str, str, int]:
    """Returns the advocate's token, the family's token and the advocate's row id."""

    async def sign_up(role: str, email: str) -> str:
        data = await _data(
            http,
            SIGN_UP,
            {
                "input": {
                    "email": email,
                    "password": PASSWORD,
                    "displayName": f"Bench {role.title()}",
                    "role": role,
                }
            },
        )
        token: str = data["signUp"]["token"]
        return token

    advocate = await sign_up("ADVOCATE", "advocate@bench.test")
    family = await sign_up("FAMILY", "family@bench.test")
    subprocess.run(  # noqa: ASYNC221 - setup, before anything is measured
        [sys.executable, "server.py", "create-admin", "--email", "admin@bench.test"],
        cwd=ROOT,
        env={**env, "SENVAULT_ADMIN_PASSWORD": PASSWORD},
        check=True,
        capture_output=True,
    )
    admin = (await _data(http, LOG_IN, {"e": "admin@bench.test", "p": PASSWORD}))["logIn"]["token"]
    profile = {
        "bio": "Independent SEND advocate.",
        "specialisms": ["EHC_NEEDS_ASSESSMENT"],
        "areas": ["Leeds"],
        "capacity": 200,
    }
    advocate_id = (await _data(http, UPDATE_PROFILE, {"input": profile}, advocate))["updateAdvocateProfile"][
        "advocate"
    ]["id"]
    await _data(http, REQUEST_VERIFICATION, {}, advocate)
    await _data(http, VERIFY, {"input": {"advocateId": advocate_id, "decision": "VERIFIED"}}, admin)
    for i in range(TICKETS):
        child = {"displayName": f"Child {i}", "dateOfBirth": "2015-05-01", "ehcpStage": "ASSESSING"}
        child_id = (await _data(http, ADD_CHILD, {"input": child}, family))["addChild"]["child"]["id"]
        request = {
            "advocateId": advocate_id,
            "childId": child_id,
            "message": f"We need help with an EHC needs assessment for child {i}.",
            "supportTypes": ["EHC_NEEDS_ASSESSMENT"],
        }
        sent = await _data(http, SEND_REQUEST, {"input": request}, family)
        request_id = sent["sendSupportRequest"]["supportRequest"]["id"]
        if i % 2 == 0:
            await _data(
                http, ACCEPT, {"input": {"requestId": request_id, "message": "Happy to help."}}, advocate
            )
        ticket_id = (await _data(http, TICKET_OF, {"r": request_id}, advocate))["node"]["ticket"]["id"]
        for text in ("Read the EHCP draft", "Call the SEN officer"):
            await _data(http, ADD_ITEM, {"input": {"ticketId": ticket_id, "text": text}}, advocate)
    row_id = int(base64.b64decode(advocate_id).decode().split(":")[1])
    return advocate, family, row_id


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt install wrk")
    postgraphile = ROOT / "bench" / "js" / "node_modules" / ".bin" / "postgraphile"
    async with fresh_database(args.postgres) as url:
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "BROADCAST_URL": "memory://",
            # Rate limits measure clients; here one client is the load.
            "RATE_LIMIT_PER_MINUTE": "1000000000",
            "ANONYMOUS_RATE_LIMIT_PER_MINUTE": "1000000000",
        }
        subprocess.run(  # noqa: ASYNC221 - setup, before anything is measured
            [sys.executable, "server.py", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        ours_port, base_port, pg_port = free_port(), free_port(), free_port()
        ours = f"http://127.0.0.1:{ours_port}"
        with (
            process([*_pin(0), sys.executable, "server.py", "serve", "--port", str(ours_port)], env) as api,
        ):
            await wait_ready(f"{ours}/readyz", api)
            async with httpx.AsyncClient(base_url=ours, timeout=60) as http:
                advocate, family, advocate_row = await build_world(http, env)
                page = await http.post(
                    "/graphql",
                    json={"query": DASHBOARD_PAGE, "variables": {"n": PAGE}},
                    headers={"Authorization": f"Bearer {advocate}"},
                )
            ours_bytes = page.content
            extensions = json.loads(ours_bytes)["extensions"]
            base_env = {**env, "BASELINE_EXTENSIONS": json.dumps(extensions, separators=(",", ":"))}
            uvicorn = [sys.executable, "-m", "uvicorn", "bench.baselines:app", "--port", str(base_port)]
            graphile = [
                "node", str(postgraphile), "-c", url, "--host", "127.0.0.1", "--port", str(pg_port),
                "--disable-query-log", "--no-setof-functions-contain-nulls",
            ]  # fmt: skip
            with (
                process([*_pin(0), *uvicorn, "--log-level", "info"], base_env) as base,
                process([*_pin(0), *graphile], env, cwd=ROOT / "bench" / "js") as graph,
            ):
                await _wait_post(f"http://127.0.0.1:{base_port}/bare", base)
                await _wait_post(f"http://127.0.0.1:{pg_port}/graphql", graph, {"query": "{ __typename }"})
                targets = _targets(ours, base_port, pg_port, advocate, family, advocate_row)
                async with httpx.AsyncClient(timeout=30) as http:
                    theirs = await http.post(
                        targets["dashboard, hand-written"].url,
                        json=targets["dashboard, hand-written"].body,
                        headers=targets["dashboard, hand-written"].headers,
                    )
                    check = await http.post(
                        targets["dashboard, PostGraphile"].url, json=targets["dashboard, PostGraphile"].body
                    )
                if theirs.content != ours_bytes:
                    raise SystemExit(
                        "the hand-written dashboard does not answer the API's bytes:\n"
                        f"API:  {ours_bytes[:600]!r}\nhand: {theirs.content[:600]!r}"
                    )
                graph_page = check.json()
                if graph_page.get("errors") or len(graph_page["data"]["allTickets"]["edges"]) != PAGE:
                    raise SystemExit(f"PostGraphile's page is not right: {check.text[:600]}")
                best: dict[str, Load] = {}
                chosen = {
                    name: target
                    for name, target in targets.items()
                    if not args.only or any(name.startswith(prefix) for prefix in args.only.split(","))
                }
                for _ in range(args.rounds):
                    for name, target in chosen.items():
                        load = wrk(target, args.seconds, args.connections)
                        print(f"{name}: {load.rps:.1f} req/s, p99 {load.p99_ms:.1f} ms", flush=True)
                        if name not in best or load.rps > best[name].rps:
                            best[name] = load
                at_70: dict[str, tuple[float, int, float]] = {}
                for name in ("dashboard, API", "dashboard, PostGraphile", "dashboard, hand-written"):
                    if name not in best:
                        continue
                    rate = 0.7 * best[name].rps
                    at_70[name] = await open_loop(targets[name], rate, args.seconds)
                    print(f"{name} at {rate:.0f} req/s: p99 {at_70[name][0]:.1f} ms", flush=True)
    return {"best": best, "at_70": at_70, "bytes": len(ours_bytes)}


async def _wait_post(url: str, proc: subprocess.Popen[bytes], body: dict[str, Any] | None = None) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{url}: the server exited: {proc.stderr.read()[-2000:] if proc.stderr else ''!r}"
                )
            try:
                if (await http.post(url, json=body or {})).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never answered")


def _targets(
    ours: str, base_port: int, pg_port: int, advocate: str, family: str, advocate_row: int
) -> dict[str, Target]:
    signed_in = {"Authorization": f"Bearer {advocate}"}
    dashboard = {"query": DASHBOARD_PAGE, "variables": {"n": PAGE}}
    return {
        "__typename, API": Target("__typename, API", f"{ours}/graphql", {"query": "{ __typename }"}, {}),
        "__typename, bare route": Target(
            "__typename, bare route", f"http://127.0.0.1:{base_port}/bare", {"query": "{ __typename }"}, {}
        ),
        "__typename, strawberry alone": Target(
            "__typename, strawberry alone",
            f"http://127.0.0.1:{base_port}/strawberry",
            {"query": "{ __typename }"},
            {},
        ),
        "dashboard, API": Target("dashboard, API", f"{ours}/graphql", dashboard, signed_in),
        "dashboard, PostGraphile": Target(
            "dashboard, PostGraphile",
            f"http://127.0.0.1:{pg_port}/graphql",
            {"query": POSTGRAPHILE_DASHBOARD, "variables": {"n": PAGE, "advocate": str(advocate_row)}},
            {},
        ),
        "dashboard, hand-written": Target(
            "dashboard, hand-written", f"http://127.0.0.1:{base_port}/dashboard", dashboard, signed_in
        ),
        "family home, API": Target(
            "family home, API",
            f"{ours}/graphql",
            {"query": FAMILY_HOME, "variables": {"n": HOME_PAGE}},
            {"Authorization": f"Bearer {family}"},
        ),
    }


def _ratio(best: dict[str, Load], name: str, baseline: str) -> str:
    if name not in best or baseline not in best:
        return ""
    return f"{best[name].rps / best[baseline].rps:.2f}×"


def report(result: dict[str, Any], args: argparse.Namespace, command: str) -> list[str]:
    best: dict[str, Load] = result["best"]
    at_70: dict[str, tuple[float, int, float]] = result["at_70"]

    def row(name: str, baseline: str | None) -> str:
        if name not in best or (baseline is not None and baseline not in best):
            return f"| {name} | not run | | | |"
        load = best[name]
        ratio = f"{load.rps / best[baseline].rps:.2f}×" if baseline else ""
        return f"| {name} | {load.rps:,.0f} | {load.p50_ms:.1f} | {load.p99_ms:.1f} | {ratio} |"

    return [
        f"## Read path ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Command: `{command}`",
        "",
        *machine(("asyncpg", "orjson")),
        f"- PostgreSQL on 127.0.0.1; servers pinned to CPU 0, wrk (1 thread, {args.connections} "
        f"connections, {args.seconds} s) on CPU 1; best of {args.rounds} rounds, taken in turns.",
        "",
        "| scenario | req/s | p50 ms | p99 ms | ratio |",
        "|---|---:|---:|---:|---:|",
        row("__typename, bare route", None),
        row("__typename, strawberry alone", "__typename, bare route"),
        row("__typename, API", "__typename, bare route"),
        row("dashboard, PostGraphile", None),
        row("dashboard, hand-written", None),
        row("dashboard, API", "dashboard, PostGraphile"),
        f"| (API / hand-written) | | | | {_ratio(best, 'dashboard, API', 'dashboard, hand-written')} |",
        row("family home, API", None),
        "",
        f"p99 at 70% of each server's own maximum (open loop, {args.seconds} s):",
        "",
        *(
            f"- {name}: {ms:.1f} ms at {0.7 * best[name].rps:.0f} req/s ({failed} failed)"
            if achieved >= 0.95 * 0.7 * best[name].rps
            else f"- {name}: not measured: this Python client reached only {achieved:.0f} of "
            f"{0.7 * best[name].rps:.0f} req/s"
            for name, (ms, failed, achieved) in at_70.items()
        ),
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--write", type=Path)
    parser.add_argument("--only", help="scenarios whose names start so, comma-separated (e.g. __typename)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        # This process (the open-loop client) stays off the servers' CPU.
        os.sched_setaffinity(0, {1})
    result = asyncio.run(run(args))
    lines = report(result, args, "python bench/read.py " + " ".join(sys.argv[1:]))
    print("\n".join(lines))
    if args.write:
        with args.write.open("a") as out:
            out.write("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
