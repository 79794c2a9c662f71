"""GraphiQL, served by the server itself (schema/graphiql.py), in a real browser: headless Chromium
(Debian's, driven by playwright-core from tests/js) with every request outside the server refused
loads it and runs a query."""

from __future__ import annotations

import json

import httpx

from tests import node
from tests.conftest import Live


async def test_graphiql_runs_a_query_with_nothing_but_the_server(live_server: Live) -> None:
    ran = await node.run(
        "graphiql.mjs", f"{live_server.url}/graphql", node.chromium(), needs="playwright-core"
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    seen = json.loads(ran.stdout)
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
