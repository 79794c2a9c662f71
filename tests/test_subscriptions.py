"""Websockets end to end: authentication, notificationReceived, replay, per-event authorisation."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import pytest

from models.notifications import NotificationKind
from resolvers import events, notifications
from resolvers.clock import Clock
from tests.client import LEGACY_WS, TRANSPORT_WS, GraphQLClient
from tests.factories import PASSWORD, Account, db_id, sign_up, user_cursor
from tests.statements import statements

NOTIFICATIONS = """
subscription($after: String) {
  notificationReceived(after: $after) {
    cursor occurredAt notification { id kind title }
  }
}
"""
LOG_IN = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }"

BOTH = pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])


async def _log_in(gql: GraphQLClient, account: Account) -> str:
    token: str = (await gql.data(LOG_IN, {"e": account.email, "p": PASSWORD}))["logIn"]["token"]
    return token


@BOTH
async def test_socket_with_valid_token_is_acknowledged(gql: GraphQLClient, protocol: str) -> None:
    account = await sign_up(gql)
    async with gql.socket(account.token, protocol) as sock:
        await sock.ack()


@BOTH
@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"authorization": "Bearer svs_unknown"},
        {"authorization": "svs_no_scheme"},
        {"authorization": 7},
    ],
)
async def test_socket_without_a_valid_token_is_closed_with_4403(
    gql: GraphQLClient, protocol: str, payload: dict[str, object]
) -> None:
    async with gql.socket(None, protocol, init_payload=payload) as sock:
        assert await sock.closed_code() == 4403


@BOTH
async def test_notification_is_delivered_live(gql: GraphQLClient, protocol: str) -> None:
    account = await sign_up(gql)
    async with gql.socket(account.token, protocol) as sock:
        await sock.ack()
        op = await sock.subscribe(NOTIFICATIONS, {"after": await user_cursor(account)})
        await _log_in(gql, account)
        event = (await sock.next_event(op))["data"]["notificationReceived"]
    assert event["notification"]["kind"] == "NEW_SIGN_IN"
    assert event["cursor"]


async def test_nobody_receives_another_persons_notifications(gql: GraphQLClient) -> None:
    me = await sign_up(gql)
    someone = await sign_up(gql)
    async with gql.socket(me.token) as sock:
        await sock.ack()
        await sock.subscribe(NOTIFICATIONS, {"after": await user_cursor(me)})
        await _log_in(gql, someone)
        await sock.expect_silence(0.5)


async def test_subscription_resumes_after_a_cursor_without_gap_or_duplicate(
    gql: GraphQLClient,
) -> None:
    account = await sign_up(gql)
    async with gql.socket(account.token) as sock:
        await sock.ack()
        op = await sock.subscribe(NOTIFICATIONS, {"after": await user_cursor(account)})
        await _log_in(gql, account)
        first = (await sock.next_event(op))["data"]["notificationReceived"]
    # Offline: two more sign-ins happen.
    await _log_in(gql, account)
    await _log_in(gql, account)
    async with gql.socket(account.token) as sock:
        await sock.ack()
        op = await sock.subscribe(NOTIFICATIONS, {"after": first["cursor"]})
        missed = [(await sock.next_event(op))["data"]["notificationReceived"] for _ in range(2)]
        await sock.expect_silence(0.3)
        await _log_in(gql, account)
        live = (await sock.next_event(op))["data"]["notificationReceived"]
    ids = [e["notification"]["id"] for e in [first, *missed, live]]
    assert len(set(ids)) == 4
    cursors = [e["cursor"] for e in [first, *missed, live]]
    assert len(set(cursors)) == 4


async def test_a_cursor_from_another_channel_is_refused(gql: GraphQLClient) -> None:
    me = await sign_up(gql)
    other = await sign_up(gql)
    async with gql.socket(other.token) as sock:
        await sock.ack()
        op = await sock.subscribe(NOTIFICATIONS, {"after": await user_cursor(other)})
        await _log_in(gql, other)
        foreign = (await sock.next_event(op))["data"]["notificationReceived"]["cursor"]
    async with gql.socket(me.token) as sock:
        await sock.ack()
        op = await sock.subscribe(NOTIFICATIONS, {"after": foreign})
        result = await sock.next_event(op)
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@BOTH
async def test_logging_out_closes_the_sessions_sockets_at_once(gql: GraphQLClient, protocol: str) -> None:
    """Given a session with an idle subscription, when it logs out, its socket is closed with 4403."""
    account = await sign_up(gql)
    other_session = await _log_in(gql, account)
    async with gql.socket(account.token, protocol) as sock, gql.socket(other_session, protocol) as kept:
        await sock.ack()
        await kept.ack()
        await sock.subscribe(NOTIFICATIONS)
        op = await kept.subscribe(NOTIFICATIONS, {"after": await user_cursor(account)})
        await gql.data("mutation { logOut { userErrors { code } } }", token=account.token)
        # No event is needed to wake it: the socket closes now.
        assert await sock.closed_code() == 4403
        await _log_in(gql, account)
        event = (await kept.next_event(op))["data"]["notificationReceived"]
        assert event["notification"]["kind"] == "NEW_SIGN_IN"


async def test_revoking_an_api_token_closes_its_sockets_at_once(gql: GraphQLClient) -> None:
    account = await sign_up(gql)
    create = (
        'mutation($s: [ApiScope!]!) { createApiToken(input: {name: "CRM", scopes: $s})'
        " { secret apiToken { id } } }"
    )
    made = (await gql.data(create, {"s": ["NOTIFICATIONS_READ", "EVENTS_SUBSCRIBE"]}, account.token))[
        "createApiToken"
    ]
    async with gql.socket(made["secret"]) as sock:
        await sock.ack()
        await sock.subscribe(NOTIFICATIONS)
        await sock.expect_silence(0.3)
        revoke = "mutation($id: ID!) { revokeApiToken(input: {apiTokenId: $id}) { userErrors { code } } }"
        assert (await gql.data(revoke, {"id": made["apiToken"]["id"]}, account.token))["revokeApiToken"][
            "userErrors"
        ] == []
        assert await sock.closed_code() == 4403


async def test_an_expired_session_loses_its_socket_at_the_next_sweep(
    gql: GraphQLClient, clock: Clock
) -> None:
    account = await sign_up(gql)
    async with gql.socket(account.token) as sock:
        await sock.ack()
        await sock.subscribe(NOTIFICATIONS, {"after": await user_cursor(account)})
        clock.advance(timedelta(days=31))
        assert await sock.closed_code() == 4403


async def test_an_event_for_many_sockets_of_one_viewer_is_worked_out_once(gql: GraphQLClient) -> None:
    """Five sockets of one account, one document: the credential is known in memory (sign-outs and
    revocations reach a socket through the control channel, the tests above), and the event is
    loaded and executed once for all five, not once a socket."""
    account = await sign_up(gql)
    after = await user_cursor(account)
    async with contextlib.AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(gql.socket(account.token)) for _ in range(5)]
        ops = []
        for sock in sockets:
            await sock.ack()
            ops.append(await sock.subscribe(NOTIFICATIONS, {"after": after}))
        # Every subscription is live once it has delivered an event sent after it started.
        await _log_in(gql, account)
        for sock, op in zip(sockets, ops, strict=True):
            await sock.next_event(op)
        with statements(sockets=True) as sent:
            await _log_in(gql, account)
            events = [
                (await sock.next_event(op))["data"]["notificationReceived"]
                for sock, op in zip(sockets, ops, strict=True)
            ]
    assert {e["notification"]["kind"] for e in events} == {"NEW_SIGN_IN"}
    assert len({e["cursor"] for e in events}) == 1

    def selects(table: str) -> list[str]:
        return [s for s in sent if s.lstrip().upper().startswith("SELECT") and f'FROM "{table}"' in s]

    # The sign-in's own authentication at most; none per delivery.
    assert len(selects("sessions")) <= 1, selects("sessions")
    # The notification, read once for the five deliveries.
    assert len(selects("notifications")) == 1, selects("notifications")


async def test_a_burst_of_events_for_many_people_reads_their_rows_in_one_query(gql: GraphQLClient) -> None:
    """Events committed together for five people (as the sweep does when SLA clocks breach) reach
    each person's socket with their own notification, read for all five in one statement. (On
    Redis they are published in one round trip, so they also arrive together.)"""
    people = [await sign_up(gql) for _ in range(5)]
    async with contextlib.AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(gql.socket(p.token)) for p in people]
        ops = []
        for person, sock in zip(people, sockets, strict=True):
            await sock.ack()
            ops.append(await sock.subscribe(NOTIFICATIONS, {"after": await user_cursor(person)}))
        # Every subscription is live once it has delivered an event sent after it started.
        for person, sock, op in zip(people, sockets, ops, strict=True):
            await _log_in(gql, person)
            await sock.next_event(op)
        assert gql.app is not None, "needs the app served in this process"
        services = gql.app.state.services
        with statements(sockets=True) as sent:
            async with events.unit_of_work(services) as outbox:
                for person in people:
                    await notifications.notify(
                        outbox, db_id(person.user_id), NotificationKind.NEW_SIGN_IN, f"For {person.email}"
                    )
            got = [
                (await sock.next_event(op))["data"]["notificationReceived"]
                for sock, op in zip(sockets, ops, strict=True)
            ]
    assert [g["notification"]["title"] for g in got] == [f"For {p.email}" for p in people]
    reads = [s for s in sent if s.lstrip().upper().startswith("SELECT") and 'FROM "notifications"' in s]
    assert len(reads) == 1, reads


async def _missed(gql: GraphQLClient, person: Account, count: int) -> None:
    """`count` notifications for `person`, "Missed 0" first, committed together while no socket
    of theirs is open."""
    assert gql.app is not None, "needs the app served in this process"
    async with events.unit_of_work(gql.app.state.services) as outbox:
        for n in range(count):
            await notifications.notify(
                outbox, db_id(person.user_id), NotificationKind.NEW_SIGN_IN, f"Missed {n}"
            )


async def test_a_resume_reads_the_rows_of_a_page_of_missed_events_together(gql: GraphQLClient) -> None:
    """A dashboard coming back after 30 events: the log is read in one statement, and the 30
    notifications they name in one more, not one each; they arrive in order, each once."""
    person = await sign_up(gql)
    after = await user_cursor(person)
    await _missed(gql, person, 30)
    async with gql.socket(person.token) as sock:
        await sock.ack()
        with statements(sockets=True) as sent:
            op = await sock.subscribe(NOTIFICATIONS, {"after": after})
            got = [(await sock.next_event(op))["data"]["notificationReceived"] for _ in range(30)]
    assert [g["notification"]["title"] for g in got] == [f"Missed {n}" for n in range(30)]
    assert len({g["cursor"] for g in got}) == 30
    reads = [s for s in sent if s.lstrip().upper().startswith("SELECT") and 'FROM "notifications"' in s]
    assert len(reads) == 1, reads


async def test_a_resume_from_any_point_gets_each_missed_events_own_row(gql: GraphQLClient) -> None:
    """The rows of a page of missed events are read by id in one statement, kept per power of two
    of ids (`resolvers.access.core`): resuming after each of nine events in turn reads 8, 7, … 1
    rows, through statements made for 16, 8, 4, 2 and 1 ids, and every event arrives with its own
    notification, in order."""
    person = await sign_up(gql)
    start = await user_cursor(person)
    await _missed(gql, person, 9)
    titles = [f"Missed {n}" for n in range(9)]
    cursors = [start]
    async with gql.socket(person.token) as sock:
        await sock.ack()
        for after in range(9):
            op = await sock.subscribe(NOTIFICATIONS, {"after": cursors[after]})
            got = [(await sock.next_event(op))["data"]["notificationReceived"] for _ in range(9 - after)]
            assert [g["notification"]["title"] for g in got] == titles[after:], after
            assert len({g["notification"]["id"] for g in got}) == 9 - after
            if after == 0:
                cursors += [g["cursor"] for g in got]
            await sock.send({"id": op, "type": "complete"})


@BOTH
async def test_sockets_sharing_an_event_each_get_their_own_selection(
    gql: GraphQLClient, protocol: str
) -> None:
    """Sharing an event's work never shares a selection: other fields, or other values of the
    variables a selection uses, get results of their own."""
    account = await sign_up(gql)
    after = await user_cursor(account)
    narrow = "subscription($after: String) { notificationReceived(after: $after) { notification { kind } } }"
    chosen = """
    subscription($after: String, $title: Boolean!) {
      notificationReceived(after: $after) { cursor notification { kind title @include(if: $title) } }
    }
    """
    asked: list[tuple[str, dict[str, Any]]] = [
        (NOTIFICATIONS, {"after": after}),
        (NOTIFICATIONS, {"after": after}),
        (narrow, {"after": after}),
        (chosen, {"after": after, "title": True}),
        (chosen, {"after": after, "title": False}),
    ]
    async with contextlib.AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(gql.socket(account.token, protocol)) for _ in asked]
        ops = []
        for sock, (document, variables) in zip(sockets, asked, strict=True):
            await sock.ack()
            ops.append(await sock.subscribe(document, variables))
        await _log_in(gql, account)
        got = [
            (await sock.next_event(op))["data"]["notificationReceived"]
            for sock, op in zip(sockets, ops, strict=True)
        ]
    assert set(got[0]) == set(got[1]) == {"cursor", "occurredAt", "notification"}
    assert got[0] == got[1]
    assert set(got[0]["notification"]) == {"id", "kind", "title"}
    assert got[2] == {"notification": {"kind": "NEW_SIGN_IN"}}
    assert got[3]["notification"] == {"kind": "NEW_SIGN_IN", "title": got[0]["notification"]["title"]}
    assert got[4] == {"cursor": got[0]["cursor"], "notification": {"kind": "NEW_SIGN_IN"}}


async def test_api_token_needs_the_events_scope_to_subscribe(gql: GraphQLClient) -> None:
    account = await sign_up(gql)
    create = 'mutation($s: [ApiScope!]!) { createApiToken(input: {name: "CRM", scopes: $s}) { secret } }'
    without = (await gql.data(create, {"s": ["NOTIFICATIONS_READ"]}, account.token))["createApiToken"][
        "secret"
    ]
    with_scope = (await gql.data(create, {"s": ["NOTIFICATIONS_READ", "EVENTS_SUBSCRIBE"]}, account.token))[
        "createApiToken"
    ]["secret"]
    async with gql.socket(without) as sock:
        await sock.ack()
        op = await sock.subscribe(NOTIFICATIONS)
        result = await sock.next_event(op)
        assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    async with gql.socket(with_scope) as sock:
        await sock.ack()
        op = await sock.subscribe(NOTIFICATIONS, {"after": await user_cursor(account)})
        await _log_in(gql, account)
        event = (await sock.next_event(op))["data"]["notificationReceived"]
        assert event["notification"]["kind"] == "NEW_SIGN_IN"
