"""Several server processes sharing events through Redis: `serve --workers 2`."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from redis import asyncio as aioredis

import server
from tests.client import GraphQLClient, Socket
from tests.conftest import require_service
from tests.factories import add_child, advocate, send_request, sign_up
from tests.test_live_requests import NEW_REQUESTS
from tests.test_support_requests import ACCEPT
from tests.test_vault import ACCESS_REVOKED, END, GRANT

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def two_workers(
    live_server: object, settings: server.Settings, redis_url: str
) -> AsyncIterator[GraphQLClient]:
    """`python server.py serve --workers 2` on Redis, on the test run's database."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.ping()
    except OSError as exc:
        require_service("Redis", str(exc))
    finally:
        await client.aclose()
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "BROADCAST_URL": redis_url,
        "BROADCAST_NAMESPACE": settings.broadcast_namespace,
        "RATE_LIMIT_PER_MINUTE": "1000000",
        "ANONYMOUS_RATE_LIMIT_PER_MINUTE": "1000000",
    }
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child; nothing here waits on it
        [sys.executable, "server.py", "serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"server did not start: {log.read().decode()[-2000:]}")
                await asyncio.sleep(0.2)
            yield GraphQLClient(http, base.replace("http", "ws") + "/graphql")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def test_a_new_request_reaches_the_advocate_on_either_process_within_a_second(
    two_workers: GraphQLClient,
) -> None:
    gql = two_workers
    adv = await advocate(gql)
    family = await sign_up(gql)
    children = [await add_child(gql, family, displayName=f"Child {i}") for i in range(4)]
    async with AsyncExitStack() as stack:
        # Open sockets until both processes hold some: the kernel spreads connections between them.
        sockets: list[tuple[Socket, str]] = []
        processes: set[str] = set()
        while len(processes) < 2 or len(sockets) < 4:
            assert len(sockets) < 40, "connections never reached both processes"
            sock = await stack.enter_async_context(gql.socket(adv.token))
            ack = await sock.receive()
            assert ack["type"] == "connection_ack"
            processes.add(ack["payload"]["server"])
            sockets.append((sock, await sock.subscribe(NEW_REQUESTS)))
        await asyncio.sleep(0.3)
        for child in children:
            # A fresh HTTP connection each time, so the sends land on both processes too.
            async with httpx.AsyncClient(base_url=str(gql.http.base_url), timeout=30) as fresh:
                started = time.monotonic()
                sent = await send_request(GraphQLClient(fresh, gql.ws_url), family, adv.advocate_id, child)
                request_id = sent["supportRequest"]["id"]
                for sock, op in sockets:
                    event = (await sock.next_event(op, timeout=1.0))["data"]["newSupportRequest"]
                    assert event["supportRequest"]["id"] == request_id
                assert time.monotonic() - started < 1.5


async def test_access_revoked_reaches_the_advocate_on_either_process_within_a_second(
    two_workers: GraphQLClient,
) -> None:
    gql = two_workers
    adv = await advocate(gql)
    family = await sign_up(gql)
    child = await add_child(gql, family)
    request_id = (await send_request(gql, family, adv.advocate_id, child))["supportRequest"]["id"]
    accepted = await gql.data(ACCEPT, {"input": {"requestId": request_id}}, adv.token)
    relationship = accepted["acceptSupportRequest"]["supportRequest"]["relationship"]["id"]
    grant = await gql.data(
        GRANT,
        {"input": {"relationshipId": relationship, "scopes": ["EVIDENCE"], "childIds": [child]}},
        family.token,
    )
    grant_id = grant["grantVaultAccess"]["vaultGrant"]["id"]
    async with AsyncExitStack() as stack:
        sockets: list[tuple[Socket, str]] = []
        processes: set[str] = set()
        while len(processes) < 2:
            assert len(sockets) < 40, "connections never reached both processes"
            sock = await stack.enter_async_context(gql.socket(adv.token))
            ack = await sock.receive()
            assert ack["type"] == "connection_ack"
            processes.add(ack["payload"]["server"])
            sockets.append((sock, await sock.subscribe(ACCESS_REVOKED)))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        ended = await gql.data(
            END,
            {
                "input": {
                    "relationshipId": relationship,
                    "reason": "RESOLVED",
                    "note": "Case resolved, EHCP finalised",
                }
            },
            family.token,
        )
        assert ended["endSupportRelationship"]["userErrors"] == []
        for sock, op in sockets:
            event = (await sock.next_event(op, timeout=1.0))["data"]["accessRevoked"]
            assert event["reason"] == "RELATIONSHIP_ENDED"
            assert event["vaultGrant"]["id"] == grant_id
        assert time.monotonic() - started < 1.5
