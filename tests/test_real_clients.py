"""Real client libraries against the server: npm `graphql-ws` and Python `gql` (both protocols).

Each authenticates through the `connection_init` payload, subscribes, receives an event produced by
a mutation, and sees a bad token refused. The npm client runs from tests/js (installed by `npm ci`);
without node or its modules these tests skip locally and fail on CI.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportError
from gql.transport.websockets import WebsocketsTransport
from strawberry.relay import GlobalID
from websockets.exceptions import ConnectionClosed

from resolvers import events
from resolvers.events import user_channel
from tests import node
from tests.client import LEGACY_WS, TRANSPORT_WS, GraphQLClient
from tests.conftest import Live
from tests.factories import PASSWORD, Account, sign_up

NOTIFICATIONS = """
subscription($after: String) {
  notificationReceived(after: $after) { cursor notification { id kind } }
}
"""
LOG_IN = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }"


def _start_of_feed(account: Account) -> str:
    """The cursor before the account's first event: the subscription replays from there, so the
    test does not race the subscription becoming live."""
    return events.encode_cursor(user_channel(int(GlobalID.from_id(account.user_id).node_id)), 0)


async def _sign_in_later(gql: GraphQLClient, account: Account, delay: float = 0.3) -> None:
    await asyncio.sleep(delay)
    await gql.data(LOG_IN, {"e": account.email, "p": PASSWORD})


# --- npm graphql-ws -------------------------------------------------------------------------


async def _run_js(url: str, token: str, count: int, variables: dict[str, Any]) -> list[dict[str, Any]]:
    ran = await node.run(
        "subscribe.mjs",
        url,
        token,
        str(count),
        NOTIFICATIONS,
        json.dumps(variables),
        needs="graphql-ws",
        timeout=40,
    )
    lines = [json.loads(line) for line in ran.stdout.splitlines() if line.strip()]
    assert lines, ran.stderr
    return lines


async def test_npm_graphql_ws_client_subscribes_and_receives_an_event(
    gql: GraphQLClient, live_server: Live
) -> None:
    account = await sign_up(gql)
    producing = asyncio.create_task(_sign_in_later(gql, account))
    lines = await _run_js(live_server.ws_url, account.token, 1, {"after": _start_of_feed(account)})
    await producing
    kinds = [line["event"] for line in lines]
    assert kinds[0] == "connected", lines
    assert "server" in lines[0]["payload"]
    event = next(line for line in lines if line["event"] == "next")["result"]["data"]["notificationReceived"]
    assert event["notification"]["kind"] == "NEW_SIGN_IN"
    assert event["cursor"]


async def test_npm_graphql_ws_client_is_refused_a_bad_token_with_4403(live_server: Live) -> None:
    lines = await _run_js(live_server.ws_url, "svs_not_a_token", 1, {})
    assert {"event": "closed", "code": 4403, "reason": "Forbidden"} in lines
    assert next(line for line in lines if line["event"] == "error")["code"] == 4403
    # With retrying off, the client stops at the refusal instead of reconnecting.
    assert not any(line["event"] == "connected" for line in lines)


# --- Python gql -----------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS, None])
async def test_python_gql_client_subscribes_and_receives_an_event(
    gql: GraphQLClient, live_server: Live, protocol: str | None
) -> None:
    """Both subprotocols, and gql's default offer (which lists the legacy protocol first)."""
    account = await sign_up(gql)
    transport = WebsocketsTransport(
        url=live_server.ws_url,
        init_payload={"authorization": f"Bearer {account.token}"},
        subprotocols=[protocol] if protocol else None,
    )
    async with Client(transport=transport) as session:
        assert transport.subprotocol == (protocol or LEGACY_WS)
        producing = asyncio.create_task(_sign_in_later(gql, account))
        feed = session.subscribe(
            GraphQLRequest(NOTIFICATIONS, variable_values={"after": _start_of_feed(account)})
        )
        result = await asyncio.wait_for(anext(feed), 10)
        await feed.aclose()
        await producing
    event = result["notificationReceived"]
    assert event["notification"]["kind"] == "NEW_SIGN_IN"
    assert event["cursor"]


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_python_gql_client_is_refused_a_bad_token(live_server: Live, protocol: str) -> None:
    transport = WebsocketsTransport(
        url=live_server.ws_url,
        init_payload={"authorization": "Bearer svs_not_a_token"},
        subprotocols=[protocol],
    )
    with pytest.raises(TransportError) as refused:
        async with Client(transport=transport):
            pass
    if protocol == LEGACY_WS:
        # The legacy protocol says why before closing: a connection_error message.
        assert "Forbidden" in str(refused.value), refused.value
    else:
        closed = refused.value.__cause__
        assert isinstance(closed, ConnectionClosed), refused.value
        assert closed.rcvd is not None
        assert closed.rcvd.code == 4403
