"""What the benchmarks share: ports, a fresh database, waiting for a server, the machine's description."""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


async def wait_ready(url: str, proc: subprocess.Popen[bytes] | asyncio.subprocess.Process) -> None:
    """Until `url` answers 200; fails at once if the process exits, and after 60 s."""
    async with httpx.AsyncClient(timeout=5) as http:
        for _ in range(1200):
            exited = proc.poll() if isinstance(proc, subprocess.Popen) else proc.returncode
            if exited is not None:
                raise RuntimeError(f"the server exited ({exited}) before {url} answered")
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} never became ready")


@asynccontextmanager
async def fresh_database(postgres_url: str | None) -> AsyncIterator[str]:
    """A fresh database: a SQLite file, or a new PostgreSQL database dropped afterwards."""
    if postgres_url is None:
        with tempfile.TemporaryDirectory(prefix="senvault-bench-") as tmp:
            yield f"sqlite://{tmp}/bench.sqlite3"
        return
    import asyncpg

    parts = urlparse(postgres_url)
    name = f"senvault_bench_{os.getpid()}_{time.monotonic_ns()}"
    admin = await asyncpg.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        database=parts.path.lstrip("/") or "postgres",
    )
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunparse(parts._replace(path="/" + name))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def machine(packages: tuple[str, ...] = ()) -> list[str]:
    """Markdown lines naming the machine and the versions measured."""
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    names = ("strawberry-graphql", "graphql-core", "starlette", "uvicorn", "tortoise-orm", *packages)
    listed = ", ".join(f"{p} {version(p)}" for p in names)
    return [
        f"- Machine: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"{mem_kib / 1024 / 1024:.1f} GiB memory, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}; {listed}",
    ]


def append_results(path: Path, title: str, packages: tuple[str, ...], rows: list[str]) -> None:
    """A run's table appended to a results file (`--write`): a dated heading, the command that
    made it, the machine and the versions measured, then the rows."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join([f"python bench/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    lines = ["", f"### {title} ({when})", "", f"`{command}`", "", *machine(packages), "", *rows, ""]
    with path.open("a") as out:
        out.write("\n".join(lines) + "\n")
