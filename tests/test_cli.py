"""The command line: migrate, serve's refusal of an unmigrated database, create-admin, seed-demo."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_MASTER_KEY

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str], database: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "server.py", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": f"sqlite://{database}",
            "BROADCAST_URL": "memory://",
            # The demo's PDF goes to a store beside the database, never into the working tree.
            "STORAGE_URL": f"file://{database.parent / 'files'}",
            "STORAGE_MASTER_KEY": TEST_MASTER_KEY,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "cli.sqlite3"


def test_serve_refuses_an_unmigrated_database(database: Path) -> None:
    result = _run(["serve", "--port", "1"], database)
    assert result.returncode == 2
    assert "Run `python server.py migrate` first" in result.stderr


@pytest.mark.parametrize("command", [["migrate"], ["seed-demo"], ["serve", "--port", "1"]])
def test_a_sqlite_file_in_a_missing_folder_is_refused_at_once(tmp_path: Path, command: list[str]) -> None:
    result = _run(command, tmp_path / "no-such-folder" / "db.sqlite3")
    assert result.returncode == 2
    assert f"folder of the SQLite database ({tmp_path / 'no-such-folder'}) does not exist" in result.stderr
    assert not (tmp_path / "no-such-folder").exists()


def test_migrate_then_seed_demo_twice_then_create_admin(database: Path) -> None:
    first = _run(["migrate"], database)
    assert first.returncode == 0, first.stderr
    migrations = len(list((ROOT / "migrations").glob("[0-9][0-9][0-9][0-9]_*.py")))
    assert f"Applied {migrations} migration(s)." in first.stdout
    assert "Database is up to date." in _run(["migrate"], database).stdout

    seeded = _run(["seed-demo"], database)
    assert seeded.returncode == 0, seeded.stderr
    assert "family@demo.senvault.test" in seeded.stdout
    again = _run(["seed-demo"], database)
    assert "Demo data is already there." in again.stdout

    made = _run(["create-admin", "--email", "ops@example.test"], database, SENVAULT_ADMIN_PASSWORD="x" * 12)
    assert made.returncode == 0, made.stderr
    duplicate = _run(
        ["create-admin", "--email", "OPS@example.test"], database, SENVAULT_ADMIN_PASSWORD="y" * 12
    )
    assert duplicate.returncode != 0
    assert "already exists" in duplicate.stderr
    weak = _run(["create-admin", "--email", "weak@example.test"], database, SENVAULT_ADMIN_PASSWORD="short")
    assert weak.returncode != 0
    assert "at least 10 characters" in weak.stderr


def test_seed_demo_refuses_a_database_with_accounts_of_its_own(database: Path) -> None:
    """The demo's accounts share a published password, one of them an admin's: never added beside
    someone's real accounts."""
    assert _run(["migrate"], database).returncode == 0
    made = _run(["create-admin", "--email", "ops@example.test"], database, SENVAULT_ADMIN_PASSWORD="x" * 12)
    assert made.returncode == 0, made.stderr
    refused = _run(["seed-demo"], database)
    assert refused.returncode != 0
    assert "accounts other than the demo's" in refused.stderr
    assert "family@demo.senvault.test" not in refused.stdout


# A database as it stood at migration 0006, with a row in each table that later migrations rebuild or
# that points at one (column order as 0006 made them).
AT_0006 = """
INSERT INTO users VALUES
    (1,'a@x','a@x','h','Fam','FAMILY','2026-01-01',NULL,0,NULL,NULL,'',NULL,NULL,NULL);
INSERT INTO users VALUES
    (2,'b@x','b@x','h','Adv','ADVOCATE','2026-01-01',NULL,0,NULL,NULL,'',NULL,NULL,NULL);
INSERT INTO families VALUES
    (1,'2026-01-01',1);
INSERT INTO children VALUES
    (1,'C','2015-01-01','ASSESSING','','2026-01-01','2026-01-01',1);
INSERT INTO sessions VALUES
    (1,'t1','2026-01-01','2027-01-01',NULL,1,NULL,'');
INSERT INTO advocates VALUES
    (1,'A','','INDEPENDENT','','','VERIFIED','',NULL,'ACCEPTING',5,1,NULL,48,24,'2026-01-01','
    2026-01-01',2);
INSERT INTO threads VALUES
    (1,'2026-01-01',NULL,1,1);
INSERT INTO messages VALUES
    (1,'hi','2026-01-01',1,1);
INSERT INTO support_requests VALUES
    (1,'ACCEPTED','m','[]','C',10,'ASSESSING','2026-01-01','2026-01-03','2026-01-15',NULL,NULL
    ,NULL,'','[]',NULL,1,1,1,1);
INSERT INTO support_relationships VALUES
    (1,'ACTIVE','2026-01-02',NULL,NULL,NULL,'','1:1:1',1,1,NULL,1,1,1);
INSERT INTO vault_grants VALUES
    (1,'[]','[1]','2026-01-01',NULL,NULL,NULL,NULL,1,1,1,NULL);
INSERT INTO tickets VALUES
    (1,'ACTIVE',NULL,NULL,NULL,NULL,NULL,'',NULL,'2026-01-01','2026-01-01',1,1,1,1);
INSERT INTO ticket_notes VALUES
    (1,'n','2026-01-01',2,1);
INSERT INTO notifications VALUES
    (1,1,'NEW_SIGN_IN','t','','','2026-01-01',NULL);
"""
MIGRATE_TO = """
import asyncio, sys
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate
from server import tortoise_config

async def main() -> None:
    config = tortoise_config(sys.argv[1])
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        await migrate(config=config, target=sys.argv[2])

asyncio.run(main())
"""


def test_upgrading_an_sqlite_database_keeps_every_row(database: Path) -> None:
    """SQLite changes a column by building the table anew and dropping the old one: with foreign
    keys enforced, the drop deleted every row pointing at the table (families, children, sessions,
    requests, relationships, grants, tickets, notes, messages). `migrate` keeps them all."""
    url = f"sqlite://{database}"
    partial = subprocess.run(
        [sys.executable, "-c", MIGRATE_TO, url, "models.0006_accounts_recovery"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert partial.returncode == 0, partial.stderr
    with sqlite3.connect(database) as db:
        db.executescript(AT_0006)
    tables = sorted(set(re.findall(r"INSERT INTO (\w+)", AT_0006)))

    def counts() -> dict[str, int]:
        with sqlite3.connect(database) as db:
            return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables}

    before = counts()
    assert all(before.values()), before
    upgraded = _run(["migrate"], database)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Applied 3 migration(s)." in upgraded.stdout
    assert counts() == before
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
