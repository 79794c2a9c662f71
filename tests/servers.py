"""Real server processes for tests: `python server.py serve` and a private `redis-server`."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from tests.client import GraphQLClient
from tests.conftest import TEST_MASTER_KEY, require_service

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Served:
    """A `serve` process tree: its client, and the identity (`host:pid`) of each worker process."""

    client: GraphQLClient
    workers: frozenset[str]
    log: IO[bytes]

    def output(self) -> str:
        """What the process has written so far (stdout and stderr, its log lines)."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


@asynccontextmanager
async def serve(env: dict[str, str], workers: int = 1) -> AsyncIterator[Served]:
    """`python server.py serve --workers N` with `env` added to ours, once every worker serves.

    Workers share one listening socket and start at their own pace: `/readyz` answering once says
    only that one of them is up. Each probe here is a new connection, which any idle worker may
    accept, and `/readyz` names the process that answered; the server counts as started when all
    N have answered `/readyz` (which names its process too) as ready.
    """
    port = free_port()
    files = tempfile.TemporaryDirectory(prefix="senvault-served-files-")
    full_env = {
        **os.environ,
        "RATE_LIMIT_PER_MINUTE": "1000000",
        "ANONYMOUS_RATE_LIMIT_PER_MINUTE": "1000000",
        # A document store of its own, so that no test writes into the working tree.
        "STORAGE_URL": f"file://{files.name}",
        "STORAGE_MASTER_KEY": TEST_MASTER_KEY,
        **env,
    }
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child; nothing here waits on it
        [sys.executable, "server.py", "serve", "--port", str(port), "--workers", str(workers)],
        cwd=ROOT,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        seen: set[str] = set()
        # No keep-alive: every probe is a fresh connection, so every worker gets its chance.
        fresh = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=fresh) as probe:
            deadline = time.monotonic() + 60
            while len(seen) < workers:
                try:
                    answer = await probe.get("/readyz")
                    if answer.status_code == 200:
                        seen.add(answer.json()["server"])
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(
                        f"{len(seen)} of {workers} workers started: {log.read().decode()[-2000:]}"
                    )
                await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            yield Served(GraphQLClient(http, base.replace("http", "ws") + "/graphql"), frozenset(seen), log)
    finally:
        _stop(proc)
        log.close()
        files.cleanup()


async def require_redis(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        await client.ping()
    except (OSError, RedisError) as exc:
        require_service("Redis", str(exc))
    finally:
        await client.aclose()


class PrivateRedis:
    """A `redis-server` of this test's own, on a free port, that the test may stop and start."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            require_service("redis-server", "the binary is not on PATH")
        self.binary = str(binary)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.proc = subprocess.Popen(  # noqa: ASYNC220 - stopped by stop()
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = aioredis.Redis.from_url(self.url)
        try:
            for _ in range(100):
                try:
                    await client.ping()
                    return
                except (OSError, RedisError):
                    await asyncio.sleep(0.05)
            raise RuntimeError("redis-server did not start")
        except BaseException:
            self.stop()
            raise
        finally:
            await client.aclose()

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None
