"""Subscriptions over Server-Sent Events (schema/sse.py): the same fields, cursors and access rules
as over a websocket, and a stream ends at once when its credential does."""

from __future__ import annotations

import hashlib
import uuid

import server
from tests.client import GraphQLClient, sse
from tests.conftest import Live
from tests.factories import PASSWORD, sign_up, user_cursor
from tests.servers import serve
from tests.test_multiprocess import LOG_IN
from tests.test_vault import ACCESS_REVOKED, REVOKE, _grant, _supported

NOTIFICATIONS = """
subscription($after: String) {
  notificationReceived(after: $after) { cursor notification { kind } }
}
"""
LOG_OUT = "mutation { logOut { userErrors { code } } }"


async def test_events_replay_from_a_cursor_then_arrive_live_then_a_sign_out_ends_the_stream(
    gql: GraphQLClient,
) -> None:
    family = await sign_up(gql)
    start = await user_cursor(family)
    await gql.data(LOG_IN, {"e": family.email, "p": PASSWORD})  # before the stream: replayed
    async with sse(gql.http, NOTIFICATIONS, {"after": start}, family.token) as stream:
        assert stream.response.status_code == 200
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        event, first = await stream.next()
        assert event == "next"
        assert first["data"]["notificationReceived"]["notification"]["kind"] == "NEW_SIGN_IN"
        await gql.data(LOG_IN, {"e": family.email, "p": PASSWORD})  # while it is open: live
        _, second = await stream.next()
        live = second["data"]["notificationReceived"]
        assert live["notification"]["kind"] == "NEW_SIGN_IN"
        assert live["cursor"] != first["data"]["notificationReceived"]["cursor"]
        # The same cursors as a websocket's: resuming after the first replays only the second.
        async with sse(
            gql.http, NOTIFICATIONS, {"after": first["data"]["notificationReceived"]["cursor"]}, family.token
        ) as resumed:
            _, again = await resumed.next()
            assert again["data"]["notificationReceived"]["cursor"] == live["cursor"]
        await gql.data(LOG_OUT, token=family.token)
        event, ended = await stream.next()
        assert (event, ended["errors"][0]["extensions"]["code"]) == ("next", "UNAUTHENTICATED")
        assert (await stream.next())[0] == "complete"


async def test_a_stream_named_by_an_unknown_hash_asks_for_its_text_as_plain_http_does(
    gql: GraphQLClient,
) -> None:
    """Apollo's persisted queries over SSE: an unknown hash is answered PERSISTED_QUERY_NOT_FOUND
    (200, JSON, as over plain HTTP), and the text sent with its hash then streams."""
    family = await sign_up(gql)
    persisted = {
        "persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(NOTIFICATIONS.encode()).hexdigest()}
    }
    after = {"after": await user_cursor(family)}
    async with sse(gql.http, None, after, family.token, persisted) as unknown:
        assert unknown.response.status_code == 200
        await unknown.response.aread()
        assert unknown.response.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    async with sse(gql.http, NOTIFICATIONS, after, family.token, persisted) as stream:
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        await gql.data(LOG_IN, {"e": family.email, "p": PASSWORD})
        _, first = await stream.next()
        assert first["data"]["notificationReceived"]["notification"]["kind"] == "NEW_SIGN_IN"
    # Now known: the hash alone streams.
    async with sse(gql.http, None, after, family.token, persisted) as by_hash:
        _, again = await by_hash.next()
        assert again["data"]["notificationReceived"] == first["data"]["notificationReceived"]


async def test_access_revoked_reaches_the_advocate_over_sse(gql: GraphQLClient) -> None:
    family, child, adv, _, relationship = await _supported(gql)
    grant = await _grant(gql, family, relationship, child)
    async with sse(gql.http, ACCESS_REVOKED, {"after": await user_cursor(adv)}, adv.token) as stream:
        grant_id = grant["vaultGrant"]["id"]
        revoked = await gql.data(REVOKE, {"input": {"grantId": grant_id}}, family.token)
        assert revoked["revokeVaultAccess"]["userErrors"] == []
        _, event = await stream.next()
        assert event["data"]["accessRevoked"]["vaultGrant"] == {"id": grant_id, "status": "REVOKED"}


async def test_a_stream_needs_a_credential_and_counts_against_its_connections(
    live_server: Live, settings: server.Settings
) -> None:
    env = {
        "DATABASE_URL": settings.database_url,
        "BROADCAST_NAMESPACE": f"sse-{uuid.uuid4().hex[:8]}",
        "MAX_SOCKETS_PER_CREDENTIAL": "1",
    }
    async with serve(env) as served:
        http = served.client.http
        async with sse(http, NOTIFICATIONS, {}, None) as anonymous:
            assert anonymous.response.status_code == 401
            await anonymous.response.aread()
            assert anonymous.response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        family = await sign_up(served.client)
        async with sse(http, NOTIFICATIONS, {"after": await user_cursor(family)}, family.token) as first:
            await served.client.data(LOG_IN, {"e": family.email, "p": PASSWORD})
            assert (await first.next())[0] == "next"  # running
            async with sse(http, NOTIFICATIONS, {}, family.token) as second:
                assert second.response.status_code == 429
                await second.response.aread()
                assert second.response.json()["errors"][0]["extensions"]["code"] == "TOO_MANY_CONNECTIONS"
