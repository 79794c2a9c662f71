"""GraphiQL, served by the server itself (schema/graphiql.py), in a real browser: headless Chromium
(Debian's, driven by playwright-core from tests/js) with every request outside the server refused
loads it and runs a query."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import httpx

from tests.conftest import Live, require_service

JS = Path(__file__).resolve().parent / "js"


def _browser() -> tuple[str, str]:
    node = shutil.which("node")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if node is None:
        require_service("node", "node is not on PATH")
    if chromium is None:
        require_service("chromium", "apt-get install chromium")
    if not (JS / "node_modules" / "playwright-core").is_dir():
        require_service("tests/js modules", "run `npm ci` in tests/js")
    assert node is not None
    assert chromium is not None
    return node, chromium


async def test_graphiql_runs_a_query_with_nothing_but_the_server(live_server: Live) -> None:
    node, chromium = _browser()
    proc = await asyncio.create_subprocess_exec(
        node,
        str(JS / "graphiql.mjs"),
        f"{live_server.url}/graphql",
        chromium,
        cwd=JS,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(120):
            stdout, stderr = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, stderr.decode()[-3000:]
    seen = json.loads(stdout)
    assert seen["outside"] == []  # not one request left the server
    assert seen["errors"] == []
    assert '"__typename": "Query"' in seen["result"].replace("\u200b", "")


async def test_the_graphiql_page_loads_nothing_from_elsewhere(live_server: Live) -> None:
    """The page names only the server's own assets, forbids others by CSP, and keeps no header."""
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "https://" not in page.text
        assert "http://" not in page.text
        assert "shouldPersistHeaders: false" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        for asset in ("graphiql.min.js", "graphiql.min.css", "react.production.min.js"):
            answer = await http.get(f"/graphiql/3.8.3/{asset}")
            assert answer.status_code == 200, asset
