"""Graceful shutdown always ends (SPEC §12): `server.py serve` with open websockets and live
subscriptions on both protocols exits after SIGTERM, within uvicorn's `timeout_graceful_shutdown`
(GRACEFUL_SHUTDOWN_SECONDS). Repeated, since a hang showed in one run of four."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from contextlib import AsyncExitStack

import httpx
import pytest

import server
from tests.client import DEADLINE, LEGACY_WS, TRANSPORT_WS, GraphQLClient
from tests.factories import sign_up
from tests.servers import ROOT, free_port

NOTIFICATIONS = "subscription { notificationReceived { cursor } }"


async def _started(base: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=5) as probe:
        while True:
            assert proc.poll() is None, "the server exited while starting"
            try:
                if (await probe.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("run", range(3))
async def test_sigterm_with_open_subscriptions_ends_the_server(
    gql: GraphQLClient, settings: server.Settings, run: int
) -> None:
    account = await sign_up(gql)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "BROADCAST_URL": "memory://",
        "GRACEFUL_SHUTDOWN_SECONDS": "3",
        # The run's document store, not the working tree's default.
        "STORAGE_URL": settings.storage_url,
        "STORAGE_MASTER_KEY": settings.storage_master_key,
    }
    proc = subprocess.Popen(  # noqa: ASYNC220 - waited on below, in a thread
        [sys.executable, "server.py", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        await asyncio.wait_for(_started(base, proc), DEADLINE)
        async with httpx.AsyncClient(base_url=base, timeout=30) as http, AsyncExitStack() as sockets:
            served = GraphQLClient(http, base.replace("http", "ws") + "/graphql")
            for protocol in (TRANSPORT_WS, LEGACY_WS) * 3:
                sock = await sockets.enter_async_context(served.socket(account.token, protocol))
                await sock.ack()
                await sock.subscribe(NOTIFICATIONS)
                await sock.subscribe(NOTIFICATIONS)
            await sock.expect_silence(0.2)
            proc.send_signal(signal.SIGTERM)
            # Only a shutdown that never ends can fail this: the deadline is far past the timeout.
            code = await asyncio.wait_for(asyncio.to_thread(proc.wait), DEADLINE)
        # uvicorn re-raises the signal once it has shut down, so the exit status names SIGTERM.
        assert code in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
