"""A single-page app on another origin, in a real browser: headless Chromium (Debian's, driven by
playwright-core from tests/js) loads a page from its own server whose Apollo Client 4 runs a
mutation and a query over HTTP and a subscription over a websocket against the API (CORS and the
websocket `Origin` check, issue 15). A page from an origin the API does not list gets nothing."""

from __future__ import annotations

import json
import uuid

import server
from tests import node
from tests.conftest import Live
from tests.factories import PASSWORD, sign_up
from tests.servers import free_port, serve


async def _spa(api: str, page_port: int, email: str) -> node.Ran:
    return await node.run(
        "apollo.mjs", api, str(page_port), node.chromium(), email, PASSWORD, needs="playwright-core"
    )


async def test_apollo_client_on_another_origin_queries_mutates_and_subscribes(
    live_server: Live, settings: server.Settings
) -> None:
    page_port = free_port()
    env = {
        "DATABASE_URL": settings.database_url,
        "BROADCAST_NAMESPACE": f"spa-{uuid.uuid4().hex[:8]}",
        "CORS_ALLOWED_ORIGINS": f"http://localhost:{page_port}",
    }
    async with serve(env) as served:
        family = await sign_up(served.client)
        api = f"{served.client.http.base_url}".rstrip("/") + "/graphql"
        ran = await _spa(api, page_port, family.email)
        assert ran.returncode == 0, ran.stderr[-3000:]
        result = json.loads(ran.stdout)
        assert result["outside"] == []
        assert result["mutation"] is True
        assert result["query"]["id"] == family.user_id
        assert result["subscription"] == "NEW_SIGN_IN"
        # The same page from an origin the API does not list: the browser withholds every answer.
        ran = await _spa(api, free_port(), family.email)
        assert ran.returncode != 0
        assert "TypeError: Failed to fetch" in ran.stderr, ran.stderr[-2000:]
