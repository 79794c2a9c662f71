"""One app per test run, served by uvicorn on a free local port, on a database of its own.

DATABASE_URL and BROADCAST_URL choose PostgreSQL and Redis, as for the server; by default the run
uses a fresh SQLite file and the in-process broadcast. With CI=true a configured PostgreSQL or Redis
that cannot be reached fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import inspect
import io
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import asyncpg
import httpx
import pytest
import uvicorn
from tortoise import Tortoise
from tortoise.connection import get_connection
from tortoise.context import get_current_context

import server
from resolvers.clock import Clock
from tests.client import DEADLINE, GraphQLClient

IN_CI = os.environ.get("CI", "").lower() == "true"

# Mail from every server of this run (in this process, and the `serve` processes it starts, which
# inherit the environment) goes to a folder of the run's own, not the checkout's ./senvault-mail.
MAIL_FOLDER = Path(tempfile.mkdtemp(prefix="senvault-mail-"))
os.environ.setdefault("MAIL_URL", f"console://{MAIL_FOLDER}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_database(url: str, name: str) -> str:
    parts = urlparse(url)
    return urlunparse(parts._replace(path="/" + name))


async def _admin_connect(url: str) -> asyncpg.Connection:
    parts = urlparse(url)
    return await asyncpg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        # The maintenance database, which every cluster has: the one named in the URL need not exist.
        database="postgres",
    )


@pytest.fixture(scope="session")
def redis_url() -> str | None:
    """A Redis for tests that need one: BROADCAST_URL if it is Redis, else the local default."""
    url = os.environ.get("BROADCAST_URL", "")
    return url if url.startswith("redis") else os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    configured = os.environ.get("DATABASE_URL")
    if configured and configured.startswith(("postgres://", "postgresql://")):
        name = f"senvault_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        try:
            admin = await _admin_connect(configured)
        except OSError as exc:
            raise RuntimeError(f"PostgreSQL at DATABASE_URL is not reachable: {exc}") from exc
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield _with_database(configured, name)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    else:
        with tempfile.TemporaryDirectory(prefix="senvault-test-") as tmp:
            yield f"sqlite://{Path(tmp) / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def storage_root() -> Iterator[Path]:
    """The served app's document store: a folder of its own for the run."""
    with tempfile.TemporaryDirectory(prefix="senvault-files-") as tmp:
        yield Path(tmp)


# A fixed test master key (32 bytes, base64), never a real one.
TEST_MASTER_KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture(scope="session")
def settings(database_url: str, storage_root: Path) -> server.Settings:
    return server.Settings.from_env(
        {
            **os.environ,
            "DATABASE_URL": database_url,
            "BROADCAST_URL": os.environ.get("BROADCAST_URL", "memory://"),
            # Its own channels on a shared Redis, so concurrent test runs do not hear each other.
            "BROADCAST_NAMESPACE": f"senvault-test-{uuid.uuid4().hex[:8]}",
            "RATE_LIMIT_PER_MINUTE": "1000000",
            "ANONYMOUS_RATE_LIMIT_PER_MINUTE": "1000000",
            # The served default (5 s): no test here needs the served app to notice a dead Redis
            # (tests/test_faults.py and test_redis_paused.py run servers of their own for that), and
            # at 0.5 s a second's stall of a loaded CI machine was taken for a lost link, ending
            # every live subscription of the test running then.
            "BROADCAST_HEARTBEAT_SECONDS": "5",
            "SWEEP_SECONDS": "0.1",
            # The single-page app of tests/test_cors.py, served from another origin.
            "CORS_ALLOWED_ORIGINS": "https://app.example.test",
            "STORAGE_URL": f"file://{storage_root}",
            "STORAGE_MASTER_KEY": TEST_MASTER_KEY,
            # Small enough that the size limit is tested without sending 25 MiB.
            "MAX_DOCUMENT_BYTES": str(1024 * 1024),
        }
    )


@pytest.fixture(scope="session")
def clock() -> Clock:
    return Clock()


@dataclass
class Live:
    url: str
    app: Any

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/graphql"


@pytest.fixture(scope="session")
async def live_server(settings: server.Settings, clock: Clock) -> AsyncIterator[Live]:
    """The real app under uvicorn, in this event loop."""
    await server.migrate(settings)
    app = server.create_app(settings, clock)
    port = _free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws="schema.transport:WebSocketProtocol",
        ws_per_message_deflate=False,
    )
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve())
    while not uv.started:
        if task.done():
            task.result()
            raise RuntimeError("the server did not start")
        await asyncio.sleep(0.02)
    # The tests' own queries run in this task, not the server's: give them the ORM too.
    if get_current_context() is None:
        await Tortoise.init(config=server.tortoise_config(settings.database_url))
    try:
        yield Live(f"http://127.0.0.1:{port}", app)
    finally:
        uv.should_exit = True
        try:
            async with asyncio.timeout(DEADLINE):
                await task
        except TimeoutError:
            # Something the tests left open kept the server from stopping: fail with what it was,
            # instead of hanging the run.
            stacks = io.StringIO()
            _describe_tasks(stacks)
            uv.force_exit = True
            raise AssertionError(
                f"the served app did not stop within {DEADLINE:.0f} s:\n{stacks.getvalue()}"
            ) from None
        finally:
            await Tortoise.close_connections()


def _describe_tasks(out: io.StringIO) -> None:
    """Every other task's stack; for a task being cancelled, what it awaits, through the async
    generators it is inside (a task's own stack stops at the first one)."""
    for task in asyncio.all_tasks():
        if task is asyncio.current_task():
            continue
        task.print_stack(limit=6, file=out)
        if not task.cancelling():
            continue
        awaited: object = task.get_coro()
        for _ in range(20):
            print("  awaits:", repr(awaited)[:200], file=out)
            following = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
            if following is None and type(awaited).__name__ == "async_generator_asend":
                generators = [r for r in gc.get_referents(awaited) if inspect.isasyncgen(r)]
                if generators:
                    frame = generators[0].ag_frame
                    where = f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame else "finished"
                    print("  in generator", generators[0].__qualname__, where, file=out)
                    following = generators[0].ag_await
            if following is None:
                break
            awaited = following


async def _truncate() -> None:
    conn = get_connection("default")
    tables = [m._meta.db_table for app_models in (Tortoise.apps or {}).values() for m in app_models.values()]
    if conn.capabilities.dialect == "postgres":
        await conn.execute_script(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    else:
        await conn.execute_script(
            "PRAGMA foreign_keys = OFF;"
            + "".join(f"DELETE FROM {t};" for t in tables)
            + "PRAGMA foreign_keys = ON;"
        )


@pytest.fixture(autouse=True)
async def clean_state(request: pytest.FixtureRequest, clock: Clock) -> None:
    """Each test starts on empty tables with the clock at real time."""
    if "live_server" in request.fixturenames or "gql" in request.fixturenames:
        live: Live = request.getfixturevalue("live_server")
        # Not while the app's background sweep is in a transaction: TRUNCATE's locks and the sweep's
        # would deadlock on PostgreSQL.
        async with live.app.state.services.sweeping:
            await _truncate()
    clock.offset = clock.offset * 0


@pytest.fixture
async def gql(live_server: Live) -> AsyncIterator[GraphQLClient]:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        yield GraphQLClient(http, live_server.ws_url, live_server.app)


def require_service(name: str, reason: str) -> None:
    """Skip a test whose service is missing, except on CI, where that is a failure."""
    if IN_CI:
        pytest.fail(f"{name} is required on CI: {reason}")
    pytest.skip(f"{name} not available: {reason}")
