"""The database going away (SPEC §12): requests get JSON 503 SERVICE_UNAVAILABLE with Retry-After, and
the same server process serves again by itself once the database is back.

The database is a PostgreSQL cluster of this test's own (initdb on a free port, from the installed
PostgreSQL binaries), stopped and started by the test while `server.py serve` runs on it. Without
the binaries the test skips locally and fails on CI.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.client import DEADLINE
from tests.conftest import require_service
from tests.factories import sign_up_via_api
from tests.servers import ROOT, Served, free_port, serve


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (trust authentication, no fsync) that a test stops and starts."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        pg_ctl = found[-1] if found else shutil.which("pg_ctl")
        if pg_ctl is None:
            require_service("PostgreSQL binaries", "no pg_ctl under /usr/lib/postgresql/*/bin or on PATH")
        self.bin = Path(str(pg_ctl)).parent
        self.folder = Path(tempfile.mkdtemp(prefix="senvault-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/senvault"
        # PostgreSQL will not run as root: run it as the `postgres` account when we are root.
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                require_service("runuser", "PostgreSQL cannot run as root and runuser is missing")
            self.as_user = [str(runuser), "-u", "postgres", "--"]
            shutil.chown(self.folder, "postgres")

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def initdb(self) -> None:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.folder / "log")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
async def on_private_postgres() -> AsyncIterator[tuple[Served, PrivatePostgres]]:
    postgres = PrivatePostgres()
    try:
        await asyncio.to_thread(postgres.initdb)
        await asyncio.to_thread(postgres.start)
        create = [*postgres.as_user, str(postgres.bin / "createdb"), "-h", "127.0.0.1"]
        await asyncio.to_thread(
            subprocess.run, [*create, "-p", str(postgres.port), "-U", "postgres", "senvault"], check=True
        )
        env = {"DATABASE_URL": postgres.url, "BROADCAST_URL": "memory://"}
        await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "server.py", "migrate"],
            cwd=ROOT,
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        async with serve(env) as served:
            yield served, postgres
    finally:
        await asyncio.to_thread(postgres.remove)


VIEWER = "{ viewer { id } }"
ADVOCATES = "{ advocates(first: 5) { edges { node { id } } } }"
LOG_IN = 'mutation { logIn(input: {email: "nobody@example.test", password: "x"}) { token } }'


def _unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert int(response.headers["retry-after"]) > 0
    codes = [e["extensions"]["code"] for e in response.json()["errors"]]
    assert codes == ["SERVICE_UNAVAILABLE"], response.text
    # The reference an operator looks for in the logs is the one the answer's header gives.
    assert response.json()["errors"][0]["extensions"]["requestId"] == response.headers["x-request-id"]


async def test_database_down_is_a_json_503_and_the_server_recovers_by_itself(
    on_private_postgres: tuple[Served, PrivatePostgres],
) -> None:
    served, postgres = on_private_postgres
    gql = served.client
    family = await sign_up_via_api(gql)
    assert (await gql.data(VIEWER, token=family.token))["viewer"]["id"] == family.user_id
    answered_by = (await gql.http.get("/healthz")).json()["server"]

    await asyncio.to_thread(postgres.stop)
    for _ in range(2):  # not only the first request after the loss
        for query, token in ((VIEWER, family.token), (ADVOCATES, None), (LOG_IN, None)):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            _unavailable(await gql.http.post("/graphql", json={"query": query}, headers=headers))
    assert (await gql.http.get("/readyz")).status_code == 503

    await asyncio.to_thread(postgres.start)

    async def back() -> dict[str, object]:
        while True:
            response = await gql.http.post(
                "/graphql", json={"query": VIEWER}, headers={"Authorization": f"Bearer {family.token}"}
            )
            if response.status_code != 503:
                body: dict[str, object] = response.json()
                return body
            await asyncio.sleep(0.1)

    recovered = await asyncio.wait_for(back(), DEADLINE)
    assert not recovered.get("errors"), recovered
    assert recovered["data"] == {"viewer": {"id": family.user_id}}
    assert (await gql.http.get("/readyz")).status_code == 200
    # The same process, not a restarted one.
    assert (await gql.http.get("/healthz")).json()["server"] == answered_by
