"""The advocate's dashboard and the family's app, live over websockets."""

from __future__ import annotations

import contextlib

from tests.client import LEGACY_WS, TRANSPORT_WS, GraphQLClient
from tests.factories import add_child, advocate, send_request, sign_up, user_cursor
from tests.statements import statements
from tests.test_support_requests import ACCEPT, SEND_MESSAGE

NEW_REQUESTS = """
subscription($after: String) {
  newSupportRequest(after: $after) {
    cursor occurredAt supportRequest { id status childAgeYears ehcpStage supportTypes message }
  }
}
"""
UPDATES = (
    "subscription($after: String) {"
    " supportRequestUpdated(after: $after) { cursor supportRequest { id status } } }"
)
NOTIFICATIONS = (
    "subscription($after: String) { notificationReceived(after: $after) { notification { kind subjectId } } }"
)
MESSAGES = "subscription($r: ID) { messageAdded(requestId: $r) { cursor message { body fromViewer } } }"


async def test_advocate_sees_a_new_request_arrive_live_and_nobody_else_does(gql: GraphQLClient) -> None:
    adv = await advocate(gql)
    bystander = await advocate(gql)
    family = await sign_up(gql)
    child = await add_child(gql, family)
    async with gql.socket(adv.token) as mine, gql.socket(bystander.token, LEGACY_WS) as theirs:
        await mine.ack()
        await theirs.ack()
        op = await mine.subscribe(NEW_REQUESTS, {"after": await user_cursor(adv)})
        their_op = await theirs.subscribe(NEW_REQUESTS, {"after": await user_cursor(bystander)})
        sent = (await send_request(gql, family, adv.advocate_id, child))["supportRequest"]
        event = (await mine.next_event(op))["data"]["newSupportRequest"]
        # The bystander's first event is the request sent to them afterwards, not the one above.
        theirs_sent = (await send_request(gql, family, bystander.advocate_id, child))["supportRequest"]
        first = (await theirs.next_event(their_op))["data"]["newSupportRequest"]
        assert first["supportRequest"]["id"] == theirs_sent["id"]
    assert event["supportRequest"]["id"] == sent["id"]
    assert event["supportRequest"]["status"] == "PENDING"
    assert event["supportRequest"]["supportTypes"] == ["EHC_NEEDS_ASSESSMENT"]


async def test_both_sides_see_each_status_change_and_are_notified(gql: GraphQLClient) -> None:
    adv = await advocate(gql)
    family = await sign_up(gql)
    child = await add_child(gql, family)
    request_id = (await send_request(gql, family, adv.advocate_id, child))["supportRequest"]["id"]
    async with gql.socket(adv.token) as adv_sock, gql.socket(family.token) as fam_sock:
        await adv_sock.ack()
        await fam_sock.ack()
        adv_op = await adv_sock.subscribe(UPDATES, {"after": await user_cursor(adv)})
        fam_op = await fam_sock.subscribe(UPDATES, {"after": await user_cursor(family)})
        fam_note = await fam_sock.subscribe(NOTIFICATIONS, {"after": await user_cursor(family)})
        await gql.data(ACCEPT, {"input": {"requestId": request_id}}, adv.token)
        for sock, op in ((adv_sock, adv_op), (fam_sock, fam_op)):
            update = (await sock.next_event(op))["data"]["supportRequestUpdated"]
            assert update["supportRequest"] == {"id": request_id, "status": "ACCEPTED"}
        note = (await fam_sock.next_event(fam_note))["data"]["notificationReceived"]["notification"]
        assert note == {"kind": "SUPPORT_REQUEST_ACCEPTED", "subjectId": request_id}


async def test_new_requests_missed_while_offline_are_replayed_in_order(gql: GraphQLClient) -> None:
    adv = await advocate(gql)
    family = await sign_up(gql)
    children = [await add_child(gql, family, displayName=f"Child {i}") for i in range(3)]
    async with gql.socket(adv.token) as sock:
        await sock.ack()
        op = await sock.subscribe(NEW_REQUESTS, {"after": await user_cursor(adv)})
        first = (await send_request(gql, family, adv.advocate_id, children[0]))["supportRequest"]["id"]
        cursor = (await sock.next_event(op))["data"]["newSupportRequest"]["cursor"]
    missed = [
        (await send_request(gql, family, adv.advocate_id, c))["supportRequest"]["id"] for c in children[1:]
    ]
    async with gql.socket(adv.token) as sock:
        await sock.ack()
        op = await sock.subscribe(NEW_REQUESTS, {"after": cursor})
        replayed = [(await sock.next_event(op))["data"]["newSupportRequest"] for _ in missed]
        await sock.expect_silence(0.3)
    assert [e["supportRequest"]["id"] for e in replayed] == missed
    assert first not in missed


async def test_message_thread_is_live_for_both_sides(gql: GraphQLClient) -> None:
    adv = await advocate(gql)
    family = await sign_up(gql)
    child = await add_child(gql, family)
    request_id = (await send_request(gql, family, adv.advocate_id, child))["supportRequest"]["id"]
    outsider = await sign_up(gql)
    async with gql.socket(family.token, TRANSPORT_WS) as sock, gql.socket(outsider.token) as other:
        await sock.ack()
        await other.ack()
        op = await sock.subscribe(MESSAGES, {"r": request_id})
        refused = await other.subscribe(MESSAGES, {"r": request_id})
        assert (await other.next_event(refused))["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        await sock.expect_silence(0.3)
        await gql.data(
            ACCEPT, {"input": {"requestId": request_id, "message": "Hello, I'm Priya."}}, adv.token
        )
        event = (await sock.next_event(op))["data"]["messageAdded"]
        assert event["message"] == {"body": "Hello, I'm Priya.", "fromViewer": False}
        await gql.data(SEND_MESSAGE, {"input": {"requestId": request_id, "body": "Thank you!"}}, family.token)
        event = (await sock.next_event(op))["data"]["messageAdded"]
        assert event["message"] == {"body": "Thank you!", "fromViewer": True}


async def test_an_event_costs_the_same_statements_for_five_sockets_of_one_advocate_as_for_one(
    gql: GraphQLClient,
) -> None:
    """A live event is loaded, authorised and executed once per viewer and document, however many
    of that viewer's sockets subscribed it (a dashboard open in several tabs)."""
    adv = await advocate(gql)
    family = await sign_up(gql)
    document = """
    subscription($after: String) {
      newSupportRequest(after: $after) {
        cursor supportRequest { id family { displayName } child { displayName } }
      }
    }
    """
    counts = []
    for sockets_open in (1, 5):
        warm_up, child = await add_child(gql, family), await add_child(gql, family)
        after = await user_cursor(adv)
        async with contextlib.AsyncExitStack() as stack:
            sockets = [await stack.enter_async_context(gql.socket(adv.token)) for _ in range(sockets_open)]
            ops = []
            for sock in sockets:
                await sock.ack()
                ops.append(await sock.subscribe(document, {"after": after}))
            # Every subscription is live once it has delivered an event sent after it started.
            await send_request(gql, family, adv.advocate_id, warm_up)
            for sock, op in zip(sockets, ops, strict=True):
                await sock.next_event(op)
            with statements(sockets=True) as sent:
                request_id = (await send_request(gql, family, adv.advocate_id, child))["supportRequest"]["id"]
                for sock, op in zip(sockets, ops, strict=True):
                    event = (await sock.next_event(op))["data"]["newSupportRequest"]
                    assert event["supportRequest"]["id"] == request_id
                    assert event["supportRequest"]["family"]["displayName"]
        counts.append(len(sent))
    assert counts[1] == counts[0], counts
