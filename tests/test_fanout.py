"""The shared live delivery (`schema.fanout`): once a graphql-transport-ws subscription has caught
up, its channel's fanout delivers its events, executing each once per group of alike subscribers
and writing the same bytes to every socket of the group."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from graphql.execution.collect_fields import FieldDetails
from strawberry.relay import GlobalID

from models.notifications import NotificationKind
from resolvers import notifications
from resolvers.broadcast import BROADCAST_INTERRUPTED, SubscriptionEnded
from resolvers.events import Envelope, unit_of_work, user_channel
from schema import event_plans, fanout, streams
from tests.client import (
    LEGACY_WS,
    GraphQLClient,
    Socket,
    already,
    eventually,
    read_until_closed,
    stalled_subscriber,
)
from tests.conftest import Live
from tests.factories import PASSWORD, Account, sign_up, user_cursor
from tests.test_collector import _walked_protocols

NOTIFICATIONS = """
subscription($after: String) {
  notificationReceived(after: $after) { cursor notification { id kind title } }
}
"""
# The same root field with less selected: a group of its own.
KINDS_ONLY = "subscription { notificationReceived { cursor notification { kind } } }"
WITH_BODY = "subscription { notificationReceived { cursor notification { title body } } }"
LOG_IN = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }"


def _user_id(account: Account) -> int:
    return int(GlobalID.from_id(account.user_id).node_id)


def _channel(account: Account) -> str:
    return user_channel(_user_id(account))


async def _log_in(gql: GraphQLClient, account: Account) -> str:
    token: str = (await gql.data(LOG_IN, {"e": account.email, "p": PASSWORD}))["logIn"]["token"]
    return token


def _members(live: Live, channel: str) -> list[list[fanout.Member]]:
    found = live.app.state.services.hub.shared.get(channel)
    if found is None:
        return []
    return [list(group.members) for group in found.groups.values()]


async def _handed_over(live: Live, channel: str, sizes: list[int]) -> None:
    async def ready() -> bool:
        return sorted(len(m) for m in _members(live, channel)) == sorted(sizes)

    await eventually(ready, f"groups of {sizes} on {channel}")


@asynccontextmanager
async def _member(gql: GraphQLClient, live: Live) -> AsyncIterator[tuple[Account, str, Socket, str]]:
    """A new family's socket, subscribed to its notifications and handed over to its channel's
    fanout: the account, the channel, the socket and the operation's id."""
    account = await sign_up(gql)
    channel = _channel(account)
    async with gql.socket(account.token) as sock:
        await sock.ack()
        op = await sock.subscribe(NOTIFICATIONS)
        await _handed_over(live, channel, [1])
        yield account, channel, sock, op


def _count_payloads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original: Callable[..., Awaitable[bytes | None]] = fanout.Group.payload

    async def counted(self: fanout.Group, envelope: Any) -> bytes | None:
        calls.append(envelope.seq)
        return await original(self, envelope)

    monkeypatch.setattr(fanout.Group, "payload", counted)
    return calls


async def test_sockets_that_subscribe_alike_share_one_execution_per_event_and_get_every_event_once(
    gql: GraphQLClient, live_server: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await sign_up(gql)
    channel = _channel(account)
    calls = _count_payloads(monkeypatch)
    after = await user_cursor(account)
    async with gql.socket(account.token) as a, gql.socket(account.token) as b, gql.socket(account.token) as c:
        ops = []
        for sock in (a, b, c):
            await sock.ack()
            ops.append(await sock.subscribe(NOTIFICATIONS, {"after": after}))
        await _handed_over(live_server, channel, [3])
        await _log_in(gql, account)
        await _log_in(gql, account)
        received = [
            [(await sock.next_event(op))["data"]["notificationReceived"] for _ in range(2)]
            for sock, op in zip((a, b, c), ops, strict=True)
        ]
        for sock in (a, b, c):
            await sock.expect_silence(0.2)
    assert received[0] == received[1] == received[2]
    assert [e["notification"]["kind"] for e in received[0]] == ["NEW_SIGN_IN", "NEW_SIGN_IN"]
    # One execution per event for the three sockets.
    assert len(calls) == 2
    assert len(set(calls)) == 2


async def test_an_event_is_queued_once_for_its_channel_however_many_members_it_has(
    gql: GraphQLClient, live_server: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub offers an event to every member; the channel queues it once. Queued once per member,
    three members would overflow a queue of two and be told to resubscribe."""
    account = await sign_up(gql)
    channel = _channel(account)
    calls = _count_payloads(monkeypatch)
    monkeypatch.setattr(live_server.app.state.services.hub, "max_queue", 2)
    async with gql.socket(account.token) as a, gql.socket(account.token) as b, gql.socket(account.token) as c:
        ops = []
        for sock in (a, b, c):
            await sock.ack()
            ops.append(await sock.subscribe(NOTIFICATIONS))
        await _handed_over(live_server, channel, [3])
        await _log_in(gql, account)
        for sock, op in zip((a, b, c), ops, strict=True):
            event = (await sock.next_event(op))["data"]["notificationReceived"]
            assert event["notification"]["kind"] == "NEW_SIGN_IN"
            await sock.expect_silence(0.2)
    assert len(calls) == 1


async def test_events_delivered_leave_nothing_behind_in_the_subscription(
    gql: GraphQLClient, live_server: Live
) -> None:
    """A dashboard is open all day: what its subscription keeps must not grow with the events it
    gets. graphql-core's per-event executor shared the subscription's memo of collected subfields,
    keyed by field lists made anew for each event, so every event added to it (for the collector
    to walk too) until the subscription ended."""

    def collected() -> int:
        gc.collect()
        return sum(isinstance(o, FieldDetails) for o in gc.get_objects())

    async with _member(gql, live_server) as (account, _, sock, op):
        for _ in range(2):
            await _log_in(gql, account)
            await sock.next_event(op)
        before = collected()
        events = 12
        for _ in range(events):
            await _log_in(gql, account)
            await sock.next_event(op)
        grown = collected() - before
    assert grown < events, f"{grown} more field lists kept after {events} events"


async def test_a_channel_keeps_no_event_once_it_has_delivered_it(
    gql: GraphQLClient, live_server: Live
) -> None:
    """Between events an idle channel holds none: one kept for each channel would be an event, with
    what its subscribers worked out of it, for every dashboard open all day."""
    async with _member(gql, live_server) as (account, channel, sock, op):
        await _log_in(gql, account)
        await sock.next_event(op)
        shared: fanout.ChannelFanout = live_server.app.state.services.hub.shared[channel]

        async def idle() -> bool:
            return shared._task is None

        await eventually(idle, "the channel has delivered the event")
        assert [v for v in vars(shared).values() if isinstance(v, Envelope)] == []
        assert not shared._pending
        # It still drops nothing: the next event is delivered, once.
        await _log_in(gql, account)
        assert (await sock.next_event(op))["data"]["notificationReceived"]["notification"][
            "kind"
        ] == "NEW_SIGN_IN"
        await sock.expect_silence(0.2)


async def test_sockets_that_reached_the_server_at_different_addresses_are_different_groups(
    gql: GraphQLClient, live_server: Live
) -> None:
    """URLs in a payload are built from the address the client used: a viewer's sockets through
    two addresses (two host names of one server) do not share an execution."""
    account = await sign_up(gql)
    channel = _channel(account)
    other = gql.ws_url.replace("127.0.0.1", "localhost")
    assert other != gql.ws_url
    async with (
        gql.socket(account.token) as a,
        gql.socket(account.token, url=other) as b,
        gql.socket(account.token) as c,
    ):
        ops = []
        for sock in (a, b, c):
            await sock.ack()
            ops.append(await sock.subscribe(NOTIFICATIONS))
        await _handed_over(live_server, channel, [2, 1])
        await _log_in(gql, account)
        received = [
            (await sock.next_event(op))["data"]["notificationReceived"]
            for sock, op in zip((a, b, c), ops, strict=True)
        ]
    assert received[0] == received[1] == received[2]


async def test_different_selections_are_different_groups_each_with_its_own_payload(
    gql: GraphQLClient, live_server: Live
) -> None:
    account = await sign_up(gql)
    channel = _channel(account)
    async with gql.socket(account.token) as sock:
        await sock.ack()
        full = await sock.subscribe(NOTIFICATIONS)
        kinds = await sock.subscribe(KINDS_ONLY)
        await _handed_over(live_server, channel, [1, 1])
        await _log_in(gql, account)
        one = (await sock.next_event(full))["data"]["notificationReceived"]
        other = (await sock.next_event(kinds))["data"]["notificationReceived"]
    assert set(one["notification"]) == {"id", "kind", "title"}
    assert other["notification"] == {"kind": "NEW_SIGN_IN"}
    assert other["cursor"] == one["cursor"]


async def test_the_legacy_protocol_keeps_its_own_delivery_beside_the_shared_one(
    gql: GraphQLClient, live_server: Live
) -> None:
    account = await sign_up(gql)
    channel = _channel(account)
    async with gql.socket(account.token) as modern, gql.socket(account.token, LEGACY_WS) as legacy:
        await modern.ack()
        await legacy.ack()
        op_modern = await modern.subscribe(NOTIFICATIONS)
        op_legacy = await legacy.subscribe(NOTIFICATIONS)
        await _handed_over(live_server, channel, [1])

        async def both_listening() -> bool:
            return len(live_server.app.state.services.hub.subscriptions(channel)) == 2

        await eventually(both_listening, "both subscriptions live")
        await _log_in(gql, account)
        a = (await modern.next_event(op_modern))["data"]["notificationReceived"]
        b = (await legacy.next_event(op_legacy))["data"]["notificationReceived"]
    assert a == b


async def test_completing_one_subscription_leaves_the_rest_of_its_group(
    gql: GraphQLClient, live_server: Live
) -> None:
    account = await sign_up(gql)
    channel = _channel(account)
    async with gql.socket(account.token) as a, gql.socket(account.token) as b:
        await a.ack()
        await b.ack()
        op_a = await a.subscribe(NOTIFICATIONS)
        op_b = await b.subscribe(NOTIFICATIONS)
        await _handed_over(live_server, channel, [2])
        await a.send({"id": op_a, "type": "complete"})
        await _handed_over(live_server, channel, [1])
        await _log_in(gql, account)
        (await b.next_event(op_b))["data"]["notificationReceived"]
        await a.expect_silence(0.3)
    # Every socket gone: the channel's fanout is gone too.
    await eventually(lambda: already(not _members(live_server, channel)), "fanout removed")


async def test_signing_out_ends_a_shared_subscription_with_4403(
    gql: GraphQLClient, live_server: Live
) -> None:
    async with _member(gql, live_server) as (account, channel, sock, _):
        await gql.data("mutation { logOut { userErrors { message } } }", token=account.token)
        assert await sock.closed_code() == 4403
    await eventually(lambda: already(not _members(live_server, channel)), "fanout removed")


async def test_a_socket_that_stops_reading_is_closed_with_4008_without_growing_the_servers_buffer(
    gql: GraphQLClient, live_server: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = live_server.app.state.services
    monkeypatch.setattr(services.hub, "max_buffered_bytes", 16 * 1024)
    account = await sign_up(gql)
    channel = _channel(account)
    async with stalled_subscriber(live_server.url, live_server.ws_url, account.token, WITH_BODY) as ws:
        await _handed_over(live_server, channel, [1])
        # The client reads nothing while large events pile up.
        deepest = 0
        sent = 0
        while _members(live_server, channel):
            assert sent < 400, "the server never gave up on the stalled client"
            async with unit_of_work(services) as outbox:
                await notifications.notify(
                    outbox, _user_id(account), NotificationKind.NEW_SIGN_IN, str(sent), "x" * 4000
                )
            sent += 1
            await asyncio.sleep(0)
            for (member,) in _members(live_server, channel):
                deepest = max(deepest, member.writer.buffered())
        received = await read_until_closed(ws)
        assert ws.close_code == 4008
    assert 0 < received < sent
    # At most one event past the bound was buffered before the socket was given up.
    assert deepest <= 16 * 1024 + 4096


async def test_a_socket_subscribed_before_and_after_a_burst_gets_each_event_once_in_order(
    gql: GraphQLClient, live_server: Live
) -> None:
    """Events published while a subscription replays reach it once: by the replay, its own queue or
    the fanout, never two of them and never none."""
    account = await sign_up(gql)
    after = await user_cursor(account)
    async with gql.socket(account.token) as first:
        await first.ack()
        op_first = await first.subscribe(NOTIFICATIONS, {"after": after})
        await _handed_over(live_server, _channel(account), [1])
        burst = asyncio.gather(*(_log_in(gql, account) for _ in range(6)))
        async with gql.socket(account.token) as second:
            await second.ack()
            op_second = await second.subscribe(NOTIFICATIONS, {"after": after})
            await burst
            got_first = [(await first.next_event(op_first))["data"]["notificationReceived"] for _ in range(6)]
            got_second = [
                (await second.next_event(op_second))["data"]["notificationReceived"] for _ in range(6)
            ]
            await first.expect_silence(0.2)
            await second.expect_silence(0.2)
    assert got_first == got_second
    cursors = [e["cursor"] for e in got_first]
    assert len(set(cursors)) == 6


async def test_a_member_ended_by_the_hub_gets_the_coded_error_then_complete_and_its_id_is_free_again(
    gql: GraphQLClient, live_server: Live
) -> None:
    hub = live_server.app.state.services.hub
    async with _member(gql, live_server) as (account, channel, sock, op):
        hub.end_subscriptions(channel, SubscriptionEnded(BROADCAST_INTERRUPTED, "Interrupted.", 2.0))
        last = await sock.receive()
        assert last["id"] == op
        assert last["type"] == "next"
        (error,) = last["payload"]["errors"]
        assert error["extensions"] == {"code": BROADCAST_INTERRUPTED, "retryAfterMs": 2000}
        assert await sock.receive() == {"id": op, "type": "complete"}
        assert not _members(live_server, channel)
        # The id is free: the client resubscribes under it, and live delivery resumes.
        await sock.send({"id": op, "type": "subscribe", "payload": {"query": NOTIFICATIONS}})
        await _handed_over(live_server, channel, [1])
        await _log_in(gql, account)
        assert (await sock.next_event(op))["data"]["notificationReceived"]["notification"][
            "kind"
        ] == "NEW_SIGN_IN"


async def test_a_completed_member_frees_its_id_for_the_next_subscribe(
    gql: GraphQLClient, live_server: Live
) -> None:
    async with _member(gql, live_server) as (account, channel, sock, op):
        await sock.send({"id": op, "type": "complete"})
        await eventually(lambda: already(not _members(live_server, channel)), "member removed")
        await sock.send({"id": op, "type": "subscribe", "payload": {"query": KINDS_ONLY}})
        await _handed_over(live_server, channel, [1])
        await _log_in(gql, account)
        assert (await sock.next_event(op))["data"]["notificationReceived"]["notification"] == {
            "kind": "NEW_SIGN_IN"
        }


async def test_the_socket_that_started_a_group_is_let_go_when_it_closes(
    gql: GraphQLClient, live_server: Live
) -> None:
    """A group keeps the context of the subscription that started it, for as long as it has members.
    When that socket closes, its context lets go of it (its request becomes the address and headers
    alone): the closed socket is collected while the group goes on delivering to the others."""
    account = await sign_up(gql)
    channel = _channel(account)

    earlier = _walked_protocols()
    async with gql.socket(account.token) as first:
        await first.ack()
        await first.subscribe(NOTIFICATIONS)
        await _handed_over(live_server, channel, [1])
        (starter,) = [p for p in _walked_protocols() if not any(p is e for e in earlier)]
        gone = weakref.ref(starter)
        del starter, earlier
        async with gql.socket(account.token) as a, gql.socket(account.token) as b:
            ops = []
            for sock in (a, b):
                await sock.ack()
                ops.append(await sock.subscribe(NOTIFICATIONS))
            await _handed_over(live_server, channel, [3])
            await first.ws.close()
            await _handed_over(live_server, channel, [2])

            async def collected() -> bool:
                gc.collect()
                return gone() is None

            await eventually(collected, "the starter's socket is collected")
            await _log_in(gql, account)
            got = [
                (await s.next_event(op))["data"]["notificationReceived"]
                for s, op in zip((a, b), ops, strict=True)
            ]
    assert got[0] == got[1]
    assert got[0]["notification"]["kind"] == "NEW_SIGN_IN"


async def test_a_client_completing_a_member_while_its_end_waits_on_the_socket_keeps_the_socket_and_the_id(
    gql: GraphQLClient, live_server: Live
) -> None:
    """The server ends a member (here the broadcast was interrupted) while its client reads slowly, so
    its last `next` waits on the socket; meanwhile the client completes that subscription. The
    client's `complete` frees the id: no `complete` comes back under it, the socket stays open, and
    the id can be used again."""
    hub = live_server.app.state.services.hub
    async with _member(gql, live_server) as (account, channel, sock, op):
        ((member,),) = _members(live_server, channel)
        writer = member.writer
        assert isinstance(writer, asyncio.Protocol)
        writer.pause_writing()  # the client is behind: sends wait
        try:
            hub.end_subscriptions(channel, SubscriptionEnded(BROADCAST_INTERRUPTED, "Interrupted.", 2.0))
            assert not _members(live_server, channel)
            await sock.send({"id": op, "type": "complete"})
            # Messages are handled in order: once this one is handed over, the `complete` was handled.
            other = "other"
            await sock.send({"id": other, "type": "subscribe", "payload": {"query": KINDS_ONLY}})
            await _handed_over(live_server, channel, [1])
        finally:
            writer.resume_writing()
        await sock.send({"id": op, "type": "subscribe", "payload": {"query": NOTIFICATIONS}})
        await _handed_over(live_server, channel, [1, 1])
        await _log_in(gql, account)
        seen: list[dict[str, Any]] = []
        events: dict[str, dict[str, Any]] = {}
        while len(events) < 2:
            message = await sock.receive()
            seen.append(message)
            if message["type"] == "next" and message["payload"].get("data"):
                events[message["id"]] = message["payload"]["data"]["notificationReceived"]
        assert {"id": op, "type": "complete"} not in seen
        # At most the last `next` that was already on its way, with the interruption's error.
        ended = [m for m in seen if m["id"] == op and m["payload"].get("errors")]
        assert len(ended) <= 1
        assert all(m["payload"]["errors"][0]["extensions"]["code"] == BROADCAST_INTERRUPTED for m in ended)
        assert events[op]["notification"]["kind"] == "NEW_SIGN_IN"
        assert events[other]["notification"] == {"kind": "NEW_SIGN_IN"}


async def test_a_socket_that_closes_while_one_of_its_members_is_being_ended_leaves_no_member(
    gql: GraphQLClient, live_server: Live
) -> None:
    """A socket closes while the end of one of its members waits on it (a slow reader): its other
    members leave their groups too, and the end that was waiting gives up."""
    account = await sign_up(gql)
    channel = _channel(account)
    async with gql.socket(account.token) as sock:
        await sock.ack()
        first = await sock.subscribe(NOTIFICATIONS)
        await sock.subscribe(KINDS_ONLY)
        await _handed_over(live_server, channel, [1, 1])
        (ending,) = [m for group in _members(live_server, channel) for m in group if m.operation_id == first]
        writer = ending.writer
        assert isinstance(writer, asyncio.Protocol)
        writer.pause_writing()
        ending.end(SubscriptionEnded(BROADCAST_INTERRUPTED, "Interrupted.", 2.0))
        await eventually(lambda: already(bool(fanout._finishing)), "the ended member's last message waits")
    await eventually(lambda: already(not _members(live_server, channel)), "every member has left")
    await eventually(lambda: already(not fanout._finishing), "the waiting end has given up")
    assert channel not in live_server.app.state.services.hub.shared


async def test_a_group_keeps_nothing_of_the_operation_ids_of_members_that_have_left(
    gql: GraphQLClient, live_server: Live
) -> None:
    """A client may give every subscription a new id (the `graphql-ws` npm client does): a group
    that lives all day must not keep something for each id it has served."""
    async with _member(gql, live_server) as (account, channel, keeper, kept_op):
        gone = [f"id-{n}" for n in range(3)]
        for op in gone:
            async with gql.socket(account.token) as sock:
                await sock.ack()
                await sock.send({"id": op, "type": "subscribe", "payload": {"query": NOTIFICATIONS}})
                await _handed_over(live_server, channel, [2])
                await _log_in(gql, account)
                assert (await sock.next_event(op))["data"]["notificationReceived"]
                assert (await keeper.next_event(kept_op))["data"]["notificationReceived"]
            await _handed_over(live_server, channel, [1])
        (group,) = live_server.app.state.services.hub.shared[channel].groups.values()
        for name in type(group).__slots__:
            value = getattr(group, name)
            if isinstance(value, dict):
                assert not set(gone) & set(value), name


async def test_operations_of_long_texts_are_not_kept_once_their_subscriptions_end(
    gql: GraphQLClient, live_server: Live
) -> None:
    """A text too long for the document cache is parsed anew for each request; what the live path
    works out per operation must not keep such an operation (and its whole text: here a comment of
    100,000 characters, which costs no tokens) once its subscription has ended."""
    account = await sign_up(gql)
    channel = _channel(account)
    long_text = KINDS_ONLY + "\n# " + "x" * 100_000
    async with gql.socket(account.token) as sock:
        await sock.ack()
        for n in range(3):
            op = f"long-{n}"
            await sock.send({"id": op, "type": "subscribe", "payload": {"query": long_text}})
            await _handed_over(live_server, channel, [1])
            await _log_in(gql, account)
            assert (await sock.next_event(op))["data"]["notificationReceived"]["notification"] == {
                "kind": "NEW_SIGN_IN"
            }
            await sock.send({"id": op, "type": "complete"})
            await eventually(lambda: already(not _members(live_server, channel)), "member removed")
    for remembered in (streams._variables_of, event_plans._plans):
        texts = [operation.loc.source.body for operation, _ in remembered._known.values() if operation.loc]
        assert not [text for text in texts if "x" * 1000 in text]
