"""The command line: migrate, serve's refusal of an unmigrated database, create-admin, seed-demo."""

from __future__ import annotations

import os
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
