"""Delivery rules over websockets: retention and expired cursors, out-of-order publishing, the
per-socket cap, slow consumers, and live feeds ending when what they read ends."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from starlette.routing import WebSocketRoute
from strawberry.relay import GlobalID
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from models.events import StoredEvent
from models.notifications import NotificationKind
from models.support import SupportRequest
from resolvers import events, notifications
from resolvers.broadcast import Hub
from resolvers.clock import Clock
from resolvers.events import thread_channel, unit_of_work, user_channel
from resolvers.services import Services
from tests.client import (
    DEADLINE,
    LEGACY_WS,
    TRANSPORT_WS,
    GraphQLClient,
    Socket,
    eventually,
    read_until_closed,
    stalled_subscriber,
)
from tests.conftest import Live
from tests.factories import (
    PASSWORD,
    Account,
    add_child,
    advocate,
    send_request,
    sign_up,
    sweep,
    thread_cursor,
    user_cursor,
)
from tests.test_support_requests import ACCEPT, DECLINE, SEND_MESSAGE
from tests.test_vault import END

NOTIFICATIONS = """
subscription($after: String) {
  notificationReceived(after: $after) { cursor notification { id kind } }
}
"""
MESSAGES = (
    "subscription($r: ID, $after: String) {"
    " messageAdded(requestId: $r, after: $after) { cursor message { id body } } }"
)
LOG_IN = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }"

BOTH = pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])


def _db_id(global_id: str) -> int:
    return int(GlobalID.from_id(global_id).node_id)


async def _log_in(gql: GraphQLClient, account: Account) -> str:
    token: str = (await gql.data(LOG_IN, {"e": account.email, "p": PASSWORD}))["logIn"]["token"]
    return token


async def _events_of(sock: Socket, op: str, n: int) -> list[dict[str, Any]]:
    return [(await sock.next_event(op))["data"]["notificationReceived"] for _ in range(n)]


# --- retention ------------------------------------------------------------------------------


async def test_a_cursor_older_than_the_retained_log_gets_cursor_expired(
    gql: GraphQLClient, clock: Clock
) -> None:
    """Given events pruned after the retention, a cursor before them is refused, never a silent gap."""
    account = await sign_up(gql)
    channel = user_channel(_db_id(account.user_id))
    async with gql.socket(account.token) as sock:
        await sock.ack()
        op = await sock.subscribe(NOTIFICATIONS, {"after": await user_cursor(account)})
        await _log_in(gql, account)
        await _log_in(gql, account)
        first, second = await _events_of(sock, op, 2)
    clock.advance(timedelta(days=31))
    await sweep(gql)
    assert not await StoredEvent.filter(channel=channel).exists()
    token = await _log_in(gql, account)  # a new event, within the retention
    async with gql.socket(token) as sock:
        await sock.ack()
        expired = await sock.next_event(await sock.subscribe(NOTIFICATIONS, {"after": first["cursor"]}))
        assert expired["errors"][0]["extensions"]["code"] == "CURSOR_EXPIRED"
        # The cursor of the last event pruned still resumes: nothing after it is missing.
        op = await sock.subscribe(NOTIFICATIONS, {"after": second["cursor"]})
        (resumed,) = await _events_of(sock, op, 1)
    # Sequence numbers carry on after pruning; they never restart.
    assert events.decode_cursor(resumed["cursor"], channel) == 3
    assert resumed["notification"]["kind"] == "NEW_SIGN_IN"


async def test_recent_events_are_kept(gql: GraphQLClient, clock: Clock) -> None:
    account = await sign_up(gql)
    channel = user_channel(_db_id(account.user_id))
    await _log_in(gql, account)
    clock.advance(timedelta(days=29))
    await sweep(gql)
    assert await StoredEvent.filter(channel=channel).count() == 1


async def test_a_cursor_beyond_the_channels_head_is_refused(gql: GraphQLClient) -> None:
    account = await sign_up(gql)
    forged = events.encode_cursor(user_channel(_db_id(account.user_id)), 50)
    async with gql.socket(account.token) as sock:
        await sock.ack()
        result = await sock.next_event(await sock.subscribe(NOTIFICATIONS, {"after": forged}))
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


# --- ordering -------------------------------------------------------------------------------


async def test_events_published_out_of_commit_order_arrive_in_order_once(
    gql: GraphQLClient, live_server: Live, clock: Clock
) -> None:
    """Two transactions commit n then n+1 but publish n+1 first: the subscriber gets n, n+1."""
    account = await sign_up(gql)
    user_id = _db_id(account.user_id)
    services = live_server.app.state.services
    # Commit through a hub that is never connected, so nothing is published yet.
    quiet = Services(clock, Hub("memory://"))
    committed = []
    async with gql.socket(account.token) as sock:
        await sock.ack()
        op = await sock.subscribe(NOTIFICATIONS, {"after": await user_cursor(account)})
        for title in ("first", "second", "third"):
            async with unit_of_work(quiet) as outbox:
                await notifications.notify(outbox, user_id, NotificationKind.NEW_SIGN_IN, title)
            committed.extend(outbox.pending)
        for envelope in reversed(committed):
            await services.hub.publish(envelope)
        received = await _events_of(sock, op, 3)
        await sock.expect_silence(0.3)
    assert [events.decode_cursor(e["cursor"], committed[0].channel) for e in received] == [
        e.seq for e in committed
    ]


async def test_transactions_emitting_to_the_same_channels_in_opposite_orders_both_commit(
    live_server: Live, clock: Clock
) -> None:
    """Given two transactions interleaved so that one emits to A then B and the other to B then A,
    both commit with their events numbered and stored (on PostgreSQL a counter row stays locked to
    commit: taking numbers as events were emitted deadlocked here)."""
    from tortoise.connection import get_connection

    if get_connection("default").capabilities.dialect != "postgres":
        pytest.skip("SQLite runs one transaction at a time: the two cannot interleave")
    services = Services(clock, Hub("memory://"))
    a, b = "test:order:a", "test:order:b"
    first_emitted, second_emitted = asyncio.Event(), asyncio.Event()

    async def one(channels: tuple[str, str], mine: asyncio.Event, theirs: asyncio.Event) -> list[str]:
        async with unit_of_work(services) as outbox:
            await outbox.emit(channels[0], "TEST", {})
            await StoredEvent.filter(channel=channels[0]).using_db(outbox.connection).count()
            mine.set()
            await asyncio.wait_for(theirs.wait(), DEADLINE)
            await outbox.emit(channels[1], "TEST", {})
        return [e.cursor for e in outbox.pending]

    both = await asyncio.wait_for(
        asyncio.gather(
            one((a, b), first_emitted, second_emitted), one((b, a), second_emitted, first_emitted)
        ),
        DEADLINE,
    )
    assert all(len(cursors) == 2 for cursors in both)
    assert await StoredEvent.filter(channel=a).count() == 2
    assert sorted(e.seq for e in await StoredEvent.filter(channel=b)) == [1, 2]


# --- per-socket cap -------------------------------------------------------------------------


@BOTH
async def test_subscriptions_past_the_per_socket_cap_are_refused_with_a_code(
    gql: GraphQLClient, live_server: Live, protocol: str
) -> None:
    cap = live_server.app.state.settings.max_subscriptions_per_socket
    account = await sign_up(gql)
    async with gql.socket(account.token, protocol) as sock:
        await sock.ack()
        ops = [await sock.subscribe(NOTIFICATIONS) for _ in range(cap)]
        refused = await sock.next_event(await sock.subscribe(NOTIFICATIONS))
        errors = refused["errors"] if isinstance(refused["errors"], list) else [refused["errors"]]
        assert errors[0]["extensions"]["code"] == "SUBSCRIPTION_LIMIT"
        # Completing one makes room for another.
        await sock.send({"id": ops[0], "type": "complete" if protocol == TRANSPORT_WS else "stop"})
        if protocol == LEGACY_WS:
            assert (await sock.receive())["type"] == "complete"
        # The server reads a socket's messages in order: the freed place is there for the next one.
        op = await sock.subscribe(NOTIFICATIONS)
        await sock.expect_silence(0.3)
        await _log_in(gql, account)
        (event,) = await _events_of(sock, op, 1)
    assert event["notification"]["kind"] == "NEW_SIGN_IN"


# --- slow consumers -------------------------------------------------------------------------


async def test_a_client_that_stops_reading_is_closed_with_4008_and_its_queue_stays_bounded(
    gql: GraphQLClient, live_server: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a subscriber that never reads, the server's queue for it never passes the cap, and the
    socket is closed with 4008 without waiting on the blocked sends."""
    services = live_server.app.state.services
    max_queue = 8
    monkeypatch.setattr(services.hub, "max_queue", max_queue)
    adv = await advocate(gql)
    family = await sign_up(gql)
    request_id = (await send_request(gql, family, adv.advocate_id, await add_child(gql, family)))[
        "supportRequest"
    ]["id"]
    channel = thread_channel((await SupportRequest.get(id=_db_id(request_id))).thread_id)
    open_before = len(services.connections)
    async with stalled_subscriber(
        live_server.url, live_server.ws_url, family.token, MESSAGES, {"r": request_id}
    ) as ws:

        async def listening() -> bool:
            return bool(services.hub.subscriptions(channel))

        await eventually(listening, "the subscription is live")
        # From here on the client reads nothing, while the advocate writes long messages.
        deepest = 0
        sent = 0
        while services.hub.subscriptions(channel):
            assert sent < 400, "the server never gave up on the stalled client"
            body = f"{sent} " + "x" * 4900
            result = await gql.data(
                SEND_MESSAGE, {"input": {"requestId": request_id, "body": body}}, adv.token
            )
            assert result["sendMessage"]["userErrors"] == []
            sent += 1
            for subscription in services.hub.subscriptions(channel):
                deepest = max(deepest, subscription.queued)
                assert subscription.queued <= max_queue
            await asyncio.sleep(0)
        assert len(services.connections) == open_before
        # The client reads at last: what was already on the wire, then the close frame.
        received = await read_until_closed(ws)
        assert ws.close_code == 4008
    assert 0 < received < sent
    assert deepest <= max_queue


# --- feeds that end -------------------------------------------------------------------------


async def test_declining_a_request_completes_the_live_thread_at_once(gql: GraphQLClient) -> None:
    adv = await advocate(gql)
    family = await sign_up(gql)
    request_id = (await send_request(gql, family, adv.advocate_id, await add_child(gql, family)))[
        "supportRequest"
    ]["id"]
    async with gql.socket(family.token) as sock:
        await sock.ack()
        op = await sock.subscribe(MESSAGES, {"r": request_id, "after": await thread_cursor(request_id)})
        declined = await gql.data(
            DECLINE, {"input": {"requestId": request_id, "reason": "NO_CAPACITY"}}, adv.token
        )
        assert declined["declineSupportRequest"]["userErrors"] == []
        assert await sock.receive() == {"id": op, "type": "complete"}


async def test_ending_a_relationship_completes_the_advocates_live_thread_at_once(gql: GraphQLClient) -> None:
    adv = await advocate(gql)
    family = await sign_up(gql)
    request_id = (await send_request(gql, family, adv.advocate_id, await add_child(gql, family)))[
        "supportRequest"
    ]["id"]
    accepted = await gql.data(ACCEPT, {"input": {"requestId": request_id}}, adv.token)
    relationship_id = accepted["acceptSupportRequest"]["supportRequest"]["relationship"]["id"]
    by_relationship = (
        "subscription($r: ID, $a: String) {"
        " messageAdded(relationshipId: $r, after: $a) { message { body } } }"
    )
    async with gql.socket(adv.token) as sock:
        await sock.ack()
        op = await sock.subscribe(
            by_relationship, {"r": relationship_id, "a": await thread_cursor(relationship_id)}
        )
        ended = await gql.data(
            END, {"input": {"relationshipId": relationship_id, "reason": "RESOLVED"}}, family.token
        )
        assert ended["endSupportRelationship"]["userErrors"] == []
        assert await sock.receive() == {"id": op, "type": "complete"}


# --- protocol details -----------------------------------------------------------------------


def _view(live_server: Live) -> Any:
    return next(r.endpoint for r in live_server.app.routes if isinstance(r, WebSocketRoute))


@BOTH
async def test_a_socket_that_never_sends_connection_init_is_closed_with_4408(
    gql: GraphQLClient, live_server: Live, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_view(live_server), "connection_init_wait_timeout", timedelta(seconds=0.3))
    async with connect(live_server.ws_url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), DEADLINE)
    assert ws.close_code == 4408


async def test_keep_alives_on_both_protocols(
    gql: GraphQLClient, live_server: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_view(live_server), "keep_alive_interval", 0.1)
    account = await sign_up(gql)
    async with gql.socket(account.token, LEGACY_WS) as legacy:
        await legacy.ack()
        # The legacy protocol's server-sent `ka` messages.
        assert json.loads(await asyncio.wait_for(legacy.ws.recv(), DEADLINE)) == {"type": "ka"}
    async with gql.socket(account.token, TRANSPORT_WS) as modern:
        await modern.ack()
        # graphql-transport-ws: the client pings, the server answers.
        await modern.send({"type": "ping"})
        assert json.loads(await asyncio.wait_for(modern.ws.recv(), DEADLINE)) == {"type": "pong"}


@BOTH
async def test_a_second_connection_init_closes_the_socket_with_4429(
    gql: GraphQLClient, protocol: str
) -> None:
    account = await sign_up(gql)
    async with gql.socket(account.token, protocol) as sock:
        await sock.ack()
        await sock.send({"type": "connection_init", "payload": {"authorization": f"Bearer {account.token}"}})
        assert await sock.closed_code() == 4429
