"""The JavaScript side of the suite (tests/js): a script run with node, and the browser it drives.

Without node, the npm modules (`npm ci` in tests/js) or Chromium, the tests that need them skip
locally and fail on CI (`require_service`)."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import require_service

JS = Path(__file__).resolve().parent / "js"


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def chromium() -> str:
    """Debian's Chromium, for the browser tests (`.ci/run` installs it)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        require_service("chromium", "apt-get install chromium")
    assert found is not None
    return found


async def run(script: str, *args: str, needs: str, timeout: float = 120) -> Ran:  # noqa: ASYNC109
    """`node tests/js/<script> args…`, which needs the npm module `needs`; killed after `timeout`."""
    node = shutil.which("node")
    if node is None:
        require_service("node", "node is not on PATH")
    if not (JS / "node_modules" / needs).is_dir():
        require_service("tests/js modules", "run `npm ci` in tests/js")
    assert node is not None
    proc = await asyncio.create_subprocess_exec(
        node, str(JS / script), *args, cwd=JS, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(timeout):
            stdout, stderr = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Ran(proc.returncode, stdout.decode(), stderr.decode())
