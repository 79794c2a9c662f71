"""The advocate's ticket queue: tickets following requests, SLA clocks over time, checklists, private
notes, resolving, the live dashboard, and the SQL a dashboard page costs."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

import pytest

from models.advocates import Advocate
from models.events import StoredEvent
from models.families import Child, EhcpStage
from models.notifications import Notification
from models.support import SupportType
from models.tickets import ChecklistItem, ChecklistTemplate, SlaClock, Ticket, TicketNote, TicketStatus
from resolvers import accounts, support_requests
from resolvers.clock import Clock
from resolvers.services import Services
from resolvers.viewer import Viewer
from tests.client import LEGACY_WS, GraphQLClient, Socket
from tests.conftest import Live
from tests.factories import (
    Account,
    AdvocateAccount,
    add_child,
    admin,
    advocate,
    advocate_cursor,
    send_request,
    sign_up,
    sweep,
)
from tests.statements import BACKGROUND_TASKS
from tests.test_support_requests import ACCEPT, ASK, DECLINE, SEND_MESSAGE, WITHDRAW
from tests.test_vault import END

CLOCK_FIELDS = "kind state targetHours startedAt dueAt atRiskAt breachedAt metAt stoppedAt running"
TICKET_FIELDS = f"""
  id status slaState nextSlaDueAt outcome resolutionNote resolvedAt familyDisplayName childDisplayName
  lastFamilyMessageAt lastAdvocateMessageAt createdAt updatedAt
  request {{ id status }} relationship {{ id status }}
  slaClocks {{ {CLOCK_FIELDS} }}
  checklist {{ id text done doneAt position doneBy {{ id }} }}
  notes {{ edges {{ node {{ id body author {{ id }} }} }} }}
"""
TICKET_OF = f"""
query($r: ID!) {{ node(id: $r) {{ ... on SupportRequest {{ ticket {{ {TICKET_FIELDS} }} }} }} }}
"""
TICKET_NODE = f"query($t: ID!) {{ node(id: $t) {{ __typename ... on Ticket {{ {TICKET_FIELDS} }} }} }}"
QUEUE = """
query($filter: TicketFilter, $first: Int, $after: String, $last: Int, $before: String, $order: TicketOrder) {
  ticketQueue(filter: $filter, first: $first, after: $after, last: $last, before: $before, orderBy: $order) {
    edges { cursor node { id status slaState nextSlaDueAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
LIVE = """
subscription($after: String) {
  ticketUpdated(after: $after) { cursor occurredAt changes ticket { id status slaState } }
}
"""
ADD_ITEM = """
mutation($input: AddChecklistItemInput!) {
  addChecklistItem(input: $input) {
    checklistItem { id text done position }
    ticket { id checklist { id text done position } }
    userErrors { code message field }
  }
}
"""
TICK = """
mutation($input: TickChecklistItemInput!) {
  tickChecklistItem(input: $input) {
    checklistItem { id done doneAt doneBy { id } } userErrors { code message field }
  }
}
"""
UNTICK = """
mutation($input: UntickChecklistItemInput!) {
  untickChecklistItem(input: $input) {
    checklistItem { id done doneAt doneBy { id } } userErrors { code message field }
  }
}
"""
REMOVE = """
mutation($input: RemoveChecklistItemInput!) {
  removeChecklistItem(input: $input) {
    checklistItem { id text } ticket { checklist { id } } userErrors { code message field }
  }
}
"""
REORDER = """
mutation($input: ReorderChecklistItemsInput!) {
  reorderChecklistItems(input: $input) {
    ticket { checklist { id text position } } userErrors { code message field }
  }
}
"""
CREATE_TEMPLATE = """
mutation($input: CreateChecklistTemplateInput!) {
  createChecklistTemplate(input: $input) {
    checklistTemplate { id name items } userErrors { code message field }
  }
}
"""
DELETE_TEMPLATE = """
mutation($input: DeleteChecklistTemplateInput!) {
  deleteChecklistTemplate(input: $input) { checklistTemplate { id name } userErrors { code message field } }
}
"""
APPLY_TEMPLATE = """
mutation($input: ApplyChecklistTemplateInput!) {
  applyChecklistTemplate(input: $input) { ticket { checklist { text } } userErrors { code message field } }
}
"""
TEMPLATES = "{ checklistTemplates { id name items } }"
ADD_NOTE = """
mutation($input: AddTicketNoteInput!) {
  addTicketNote(input: $input) {
    ticketNote { id body author { id } } ticket { id notes { edges { node { body } } } }
    userErrors { code message field }
  }
}
"""
DELETE_NOTE = """
mutation($input: DeleteTicketNoteInput!) {
  deleteTicketNote(input: $input) { ticketNote { id body } userErrors { code message field } }
}
"""
RESOLVE = """
mutation($input: ResolveTicketInput!) {
  resolveTicket(input: $input) {
    ticket { id status outcome resolutionNote resolvedAt slaState } userErrors { code message field }
  }
}
"""
TARGETS = """
mutation($input: UpdateSlaTargetsInput!) {
  updateSlaTargets(input: $input) {
    advocate { responseSlaHours firstMessageSlaHours } userErrors { code message field }
  }
}
"""
ADVOCATE_NOTIFICATIONS = "{ notifications { edges { node { kind title body subjectId } } } }"


_admins: WeakKeyDictionary[GraphQLClient, Account] = WeakKeyDictionary()


async def _advocate(gql: GraphQLClient, **profile: Any) -> AdvocateAccount:
    """A verified advocate; one admin per test verifies them all (making admins is slow)."""
    if gql not in _admins:
        _admins[gql] = await admin(gql)
    return await advocate(gql, admin_account=_admins[gql], **profile)


@dataclass
class Case:
    advocate: AdvocateAccount
    family: Account
    child_id: str
    request_id: str
    ticket_id: str


async def _case(
    gql: GraphQLClient, adv: AdvocateAccount | None = None, family: Account | None = None
) -> Case:
    """A family's request to an advocate, and the ticket it made."""
    adv = adv or await _advocate(gql)
    family = family or await sign_up(gql)
    child = await add_child(gql, family)
    request_id = (await send_request(gql, family, adv.advocate_id, child))["supportRequest"]["id"]
    ticket = await _ticket(gql, adv, request_id)
    return Case(adv, family, child, request_id, ticket["id"])


async def _ticket(gql: GraphQLClient, adv: Account, request_id: str) -> dict[str, Any]:
    ticket: dict[str, Any] = (await gql.data(TICKET_OF, {"r": request_id}, adv.token))["node"]["ticket"]
    return ticket


async def _ticket_by_id(gql: GraphQLClient, adv: Account, ticket_id: str) -> dict[str, Any]:
    ticket: dict[str, Any] = (await gql.data(TICKET_NODE, {"t": ticket_id}, adv.token))["node"]
    return ticket


def _clock(ticket: dict[str, Any], kind: str) -> dict[str, Any]:
    (clock,) = [c for c in ticket["slaClocks"] if c["kind"] == kind]
    found: dict[str, Any] = clock
    return found


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def _next_update(sock: Socket, op: str, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
    payload = await sock.next_event(op, timeout)
    assert not payload.get("errors"), payload
    event: dict[str, Any] = payload["data"]["ticketUpdated"]
    return event


async def _accept(gql: GraphQLClient, case: Case, message: str | None = None) -> str:
    data = await gql.data(
        ACCEPT, {"input": {"requestId": case.request_id, "message": message}}, case.advocate.token
    )
    assert data["acceptSupportRequest"]["userErrors"] == [], data
    relationship_id: str = data["acceptSupportRequest"]["supportRequest"]["relationship"]["id"]
    return relationship_id


# --- the ticket follows its request --------------------------------------------------------


async def test_a_ticket_follows_its_request_from_arrival_to_resolution_and_the_dashboard_hears_each_step(
    gql: GraphQLClient,
) -> None:
    adv = await _advocate(gql)
    family = await sign_up(gql)
    child = await add_child(gql, family)
    async with gql.socket(adv.token) as sock:
        await sock.ack()
        op = await sock.subscribe(LIVE, {"after": await advocate_cursor(adv)})

        request_id = (await send_request(gql, family, adv.advocate_id, child))["supportRequest"]["id"]
        event = await _next_update(sock, op)
        assert event["changes"] == ["CREATED"]
        assert event["ticket"]["status"] == "NEW"
        assert event["ticket"]["slaState"] == "ON_TRACK"
        ticket = await _ticket(gql, adv, request_id)
        assert ticket["id"] == event["ticket"]["id"]
        assert ticket["familyDisplayName"].startswith("Person ")
        assert ticket["childDisplayName"] == "Alex"
        assert ticket["request"] == {"id": request_id, "status": "PENDING"}
        response = _clock(ticket, "FIRST_RESPONSE")
        assert response["state"] == "ON_TRACK"
        assert response["targetHours"] == 48
        assert _at(response["dueAt"]) - _at(response["startedAt"]) == timedelta(hours=48)
        assert ticket["nextSlaDueAt"] == response["dueAt"]

        await gql.data(ASK, {"input": {"requestId": request_id, "message": "Which school?"}}, adv.token)
        event = await _next_update(sock, op)
        assert event["changes"] == ["STATUS_CHANGED", "ADVOCATE_MESSAGE", "SLA_MET"]
        assert event["ticket"]["status"] == "WAITING_ON_FAMILY"
        assert event["ticket"]["slaState"] is None

        await gql.data(
            SEND_MESSAGE, {"input": {"requestId": request_id, "body": "Oak Primary."}}, family.token
        )
        event = await _next_update(sock, op)
        assert event["changes"] == ["STATUS_CHANGED", "FAMILY_MESSAGE"]
        assert event["ticket"]["status"] == "FAMILY_REPLIED"

        accepted = await gql.data(ACCEPT, {"input": {"requestId": request_id}}, adv.token)
        relationship_id = accepted["acceptSupportRequest"]["supportRequest"]["relationship"]["id"]
        event = await _next_update(sock, op)
        assert event["changes"] == ["STATUS_CHANGED"]
        assert event["ticket"]["status"] == "ACTIVE"
        assert event["ticket"]["slaState"] == "ON_TRACK"

        await gql.data(
            END, {"input": {"relationshipId": relationship_id, "reason": "RESOLVED"}}, family.token
        )
        event = await _next_update(sock, op)
        assert event["changes"] == ["STATUS_CHANGED"]
        assert event["ticket"]["status"] == "CLOSED"

        resolved = await gql.data(
            RESOLVE,
            {"input": {"ticketId": ticket["id"], "outcome": "RESOLVED", "note": "EHCP issued."}},
            adv.token,
        )
        assert resolved["resolveTicket"]["userErrors"] == []
        event = await _next_update(sock, op)
        assert event["changes"] == ["RESOLVED"]
        assert event["ticket"]["status"] == "RESOLVED"

    final = await _ticket_by_id(gql, adv, ticket["id"])
    assert final["relationship"] == {"id": relationship_id, "status": "CLOSED"}
    assert final["outcome"] == "RESOLVED"
    assert final["resolutionNote"] == "EHCP issued."
    assert final["nextSlaDueAt"] is None
    assert _clock(final, "FIRST_RESPONSE")["state"] == "MET"
    # Accepted without a message and ended before writing: the first-message clock stopped unmet.
    first_message = _clock(final, "FIRST_MESSAGE")
    assert first_message["state"] == "CANCELLED"
    assert first_message["running"] is False
    assert first_message["stoppedAt"] is not None


@pytest.mark.parametrize(
    ("how", "mutation", "clock_state"),
    [("declined", DECLINE, "MET"), ("withdrawn", WITHDRAW, "CANCELLED")],
)
async def test_a_request_that_ends_unaccepted_closes_its_ticket_and_stops_its_clock(
    gql: GraphQLClient, how: str, mutation: str, clock_state: str
) -> None:
    case = await _case(gql)
    variables: dict[str, Any] = {"requestId": case.request_id}
    if how == "declined":
        variables["reason"] = "NO_CAPACITY"
    actor = case.advocate if how == "declined" else case.family
    await gql.data(mutation, {"input": variables}, actor.token)
    ticket = await _ticket_by_id(gql, case.advocate, case.ticket_id)
    assert ticket["status"] == "CLOSED"
    assert ticket["slaState"] is None
    assert ticket["nextSlaDueAt"] is None
    assert _clock(ticket, "FIRST_RESPONSE")["state"] == clock_state


async def test_an_unanswered_request_that_expires_closes_its_ticket(gql: GraphQLClient, clock: Clock) -> None:
    case = await _case(gql)
    clock.advance(timedelta(days=14, minutes=1))
    await sweep(gql)
    ticket = await _ticket_by_id(gql, case.advocate, case.ticket_id)
    assert ticket["status"] == "CLOSED"
    # It had breached long before it expired: a clock stopped after its due time stays BREACHED.
    assert _clock(ticket, "FIRST_RESPONSE")["state"] == "BREACHED"
    assert ticket["nextSlaDueAt"] is None


async def test_writing_to_the_family_before_deciding_counts_as_the_first_response(gql: GraphQLClient) -> None:
    case = await _case(gql)
    await gql.data(
        SEND_MESSAGE,
        {"input": {"requestId": case.request_id, "body": "Reading it today."}},
        case.advocate.token,
    )
    ticket = await _ticket_by_id(gql, case.advocate, case.ticket_id)
    assert ticket["status"] == "NEW"
    assert _clock(ticket, "FIRST_RESPONSE")["state"] == "MET"
    assert ticket["lastAdvocateMessageAt"] == _clock(ticket, "FIRST_RESPONSE")["metAt"]


async def test_accepting_with_a_message_meets_the_first_message_clock_at_once(gql: GraphQLClient) -> None:
    case = await _case(gql)
    await _accept(gql, case, "Hello, I'm Priya. I've read your request.")
    ticket = await _ticket_by_id(gql, case.advocate, case.ticket_id)
    assert ticket["status"] == "ACTIVE"
    first_message = _clock(ticket, "FIRST_MESSAGE")
    assert first_message["state"] == "MET"
    assert first_message["metAt"] == first_message["startedAt"]
    assert ticket["nextSlaDueAt"] is None


# --- SLA clocks over time ------------------------------------------------------------------


async def _wait_for_notification(gql: GraphQLClient, adv: Account, kind: str) -> list[dict[str, Any]]:
    """The advocate's notifications of `kind`, once a sweep has run at the test clock's time."""
    await sweep(gql)
    edges = (await gql.data(ADVOCATE_NOTIFICATIONS, token=adv.token))["notifications"]["edges"]
    found = [e["node"] for e in edges if e["node"]["kind"] == kind]
    assert found, f"no {kind} notification"
    return found


async def _start(gql: GraphQLClient, kind: str) -> tuple[Case, int]:
    """A case whose `kind` clock has just started; returns it and the clock's target in hours."""
    case = await _case(gql)
    if kind == "FIRST_RESPONSE":
        return case, 48
    await _accept(gql, case)
    return case, 24


@pytest.mark.parametrize("kind", ["FIRST_RESPONSE", "FIRST_MESSAGE"])
async def test_a_clock_turns_at_risk_then_breached_as_time_passes_and_the_dashboard_is_told(
    gql: GraphQLClient, clock: Clock, kind: str
) -> None:
    case, hours = await _start(gql, kind)
    adv = case.advocate
    started = _clock(await _ticket_by_id(gql, adv, case.ticket_id), kind)
    assert started["state"] == "ON_TRACK"
    assert started["atRiskAt"] is None
    async with gql.socket(adv.token) as sock:
        await sock.ack()
        op = await sock.subscribe(LIVE, {"after": await advocate_cursor(adv)})

        # Just before a quarter of the time is left: still on track, and nothing is said.
        clock.advance(timedelta(hours=hours * 0.75) - timedelta(minutes=5))
        await sock.expect_silence(0.4)
        assert _clock(await _ticket_by_id(gql, adv, case.ticket_id), kind)["state"] == "ON_TRACK"

        clock.advance(timedelta(minutes=10))
        event = await _next_update(sock, op)
        assert event["changes"] == ["SLA_AT_RISK"]
        assert event["ticket"]["slaState"] == "AT_RISK"
        at_risk = _clock(await _ticket_by_id(gql, adv, case.ticket_id), kind)
        assert at_risk["state"] == "AT_RISK"
        assert _at(at_risk["atRiskAt"]) == _at(started["dueAt"]) - timedelta(hours=hours / 4)
        assert at_risk["breachedAt"] is None
        await sock.expect_silence(0.4)  # recorded once, though every sweep sees it

        clock.advance(timedelta(hours=hours / 4))
        event = await _next_update(sock, op)
        assert event["changes"] == ["SLA_BREACHED"]
        assert event["ticket"]["slaState"] == "BREACHED"
        breached = _clock(await _ticket_by_id(gql, adv, case.ticket_id), kind)
        assert breached["state"] == "BREACHED"
        assert breached["breachedAt"] == started["dueAt"]
        assert breached["running"] is True
        await sock.expect_silence(0.4)

    notes = await _wait_for_notification(gql, adv, "SLA_BREACHED")
    assert [n["subjectId"] for n in notes] == [case.ticket_id]
    assert [n["subjectId"] for n in await _wait_for_notification(gql, adv, "SLA_AT_RISK")] == [case.ticket_id]
    # The family is told nothing about the advocate's clocks.
    family_kinds = {
        e["node"]["kind"]
        for e in (await gql.data(ADVOCATE_NOTIFICATIONS, token=case.family.token))["notifications"]["edges"]
    }
    assert not family_kinds & {"SLA_AT_RISK", "SLA_BREACHED"}

    # Met late: the clock stops, and stays BREACHED with when it was met.
    if kind == "FIRST_RESPONSE":
        await gql.data(
            ASK, {"input": {"requestId": case.request_id, "message": "Sorry, a question."}}, adv.token
        )
    else:
        await gql.data(SEND_MESSAGE, {"input": {"requestId": case.request_id, "body": "Hello."}}, adv.token)
    late = _clock(await _ticket_by_id(gql, adv, case.ticket_id), kind)
    assert late["state"] == "BREACHED"
    assert late["running"] is False
    assert _at(late["metAt"]) > _at(late["dueAt"])


@pytest.mark.parametrize("kind", ["FIRST_RESPONSE", "FIRST_MESSAGE"])
async def test_a_clock_met_on_time_stops_and_never_breaches(
    gql: GraphQLClient, clock: Clock, kind: str
) -> None:
    case, hours = await _start(gql, kind)
    adv = case.advocate
    async with gql.socket(adv.token, LEGACY_WS) as sock:
        await sock.ack()
        op = await sock.subscribe(LIVE, {"after": await advocate_cursor(adv)})
        clock.advance(timedelta(hours=hours * 0.8))
        assert (await _next_update(sock, op))["changes"] == ["SLA_AT_RISK"]
        if kind == "FIRST_RESPONSE":
            await gql.data(ACCEPT, {"input": {"requestId": case.request_id}}, adv.token)
            event = await _next_update(sock, op)
            assert event["changes"] == ["STATUS_CHANGED", "SLA_MET"]
        else:
            await gql.data(
                SEND_MESSAGE, {"input": {"requestId": case.request_id, "body": "Hello!"}}, adv.token
            )
            event = await _next_update(sock, op)
            assert event["changes"] == ["ADVOCATE_MESSAGE", "SLA_MET"]
        met = _clock(await _ticket_by_id(gql, adv, case.ticket_id), kind)
        assert met["state"] == "MET"
        assert met["running"] is False
        assert _at(met["metAt"]) < _at(met["dueAt"])
        assert met["atRiskAt"] is not None
        # Long past the due time, a clock that was met stays met, and nothing more is said of it.
        clock.advance(timedelta(hours=hours))
        if kind == "FIRST_RESPONSE":
            # The first-message clock started on accepting; it breaches now, and says so.
            assert (await _next_update(sock, op))["changes"] == ["SLA_BREACHED"]
        await sock.expect_silence(0.5)
    assert _clock(await _ticket_by_id(gql, adv, case.ticket_id), kind)["state"] == "MET"
    assert await SlaClock.filter(kind=kind, breached_at__isnull=False).count() == 0


async def test_a_clock_that_passed_both_thresholds_unseen_is_recorded_once_as_breached(
    gql: GraphQLClient, clock: Clock
) -> None:
    """As after a server was down: the next sweep catches up from the stored times."""
    case = await _case(gql)
    async with gql.socket(case.advocate.token) as sock:
        await sock.ack()
        op = await sock.subscribe(LIVE, {"after": await advocate_cursor(case.advocate)})
        clock.advance(timedelta(hours=60))
        event = await _next_update(sock, op)
        assert event["changes"] == ["SLA_BREACHED"]
        await sock.expect_silence(0.5)
    response = _clock(await _ticket_by_id(gql, case.advocate, case.ticket_id), "FIRST_RESPONSE")
    assert response["state"] == "BREACHED"
    assert _at(response["atRiskAt"]) == _at(response["dueAt"]) - timedelta(hours=12)
    stored = await SlaClock.get(kind="FIRST_RESPONSE")
    assert stored.at_risk_at is not None
    assert stored.breached_at == stored.due_at
    assert await Notification.filter(kind="SLA_BREACHED").count() == 1


async def test_the_state_is_derived_from_stored_times_whatever_the_sweep_has_recorded(
    gql: GraphQLClient, clock: Clock
) -> None:
    """A clock's state never waits for the sweep: a restarted server shows the right state at once."""
    case = await _case(gql)
    await SlaClock.all().update(due_at=clock.now() - timedelta(minutes=1))
    await Ticket.all().update(next_sla_due_at=clock.now() - timedelta(minutes=1))
    # Whether or not a sweep has run yet, the clock reads BREACHED.
    ticket = await _ticket_by_id(gql, case.advocate, case.ticket_id)
    assert ticket["slaState"] == "BREACHED"
    assert _clock(ticket, "FIRST_RESPONSE")["state"] == "BREACHED"


async def test_changing_targets_applies_to_new_clocks_and_leaves_running_ones_alone(
    gql: GraphQLClient,
) -> None:
    adv = await _advocate(gql)
    family = await sign_up(gql)
    before = await _case(gql, adv, family)
    changed = await gql.data(TARGETS, {"input": {"responseHours": 8, "firstMessageHours": 4}}, adv.token)
    assert changed["updateSlaTargets"] == {
        "advocate": {"responseSlaHours": 8, "firstMessageSlaHours": 4},
        "userErrors": [],
    }
    old = _clock(await _ticket_by_id(gql, adv, before.ticket_id), "FIRST_RESPONSE")
    assert old["targetHours"] == 48
    assert _at(old["dueAt"]) - _at(old["startedAt"]) == timedelta(hours=48)

    after = await _case(gql, adv, family)
    new = _clock(await _ticket_by_id(gql, adv, after.ticket_id), "FIRST_RESPONSE")
    assert new["targetHours"] == 8
    assert _at(new["dueAt"]) - _at(new["startedAt"]) == timedelta(hours=8)
    await _accept(gql, after)
    first_message = _clock(await _ticket_by_id(gql, adv, after.ticket_id), "FIRST_MESSAGE")
    assert first_message["targetHours"] == 4

    # Leaving a field out keeps it.
    kept = await gql.data(TARGETS, {"input": {"responseHours": 12}}, adv.token)
    assert kept["updateSlaTargets"]["advocate"] == {"responseSlaHours": 12, "firstMessageSlaHours": 4}


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("responseHours", 0, "OUT_OF_RANGE"),
        ("responseHours", 337, "OUT_OF_RANGE"),
        ("responseHours", -5, "OUT_OF_RANGE"),
        ("firstMessageHours", 0, "OUT_OF_RANGE"),
        ("firstMessageHours", 169, "OUT_OF_RANGE"),
    ],
)
async def test_sla_targets_out_of_range_are_refused(
    gql: GraphQLClient, field: str, value: int, code: str
) -> None:
    adv = await _advocate(gql)
    # Valid values beside the bad one are not applied either.
    variables = {"responseHours": 10, "firstMessageHours": 12, field: value}
    result = (await gql.data(TARGETS, {"input": variables}, adv.token))["updateSlaTargets"]
    assert result["advocate"] is None
    assert result["userErrors"][0]["code"] == code
    assert result["userErrors"][0]["field"] == field
    row = await Advocate.get()
    assert (row.response_sla_hours, row.first_message_sla_hours) == (48, 24)


async def test_sla_targets_of_the_wrong_type_are_refused_by_the_schema(gql: GraphQLClient) -> None:
    adv = await _advocate(gql)
    body = await gql(TARGETS, {"input": {"responseHours": "soon"}}, adv.token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert (await Advocate.get()).response_sla_hours == 48


# --- the queue ------------------------------------------------------------------------------


async def _queue(
    gql: GraphQLClient, adv: Account, **variables: Any
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    data = (await gql.data(QUEUE, variables, adv.token))["ticketQueue"]
    return [e["node"] | {"cursor": e["cursor"]} for e in data["edges"]], data["pageInfo"]


async def test_the_queue_is_sorted_by_next_sla_due_with_no_clock_last(
    gql: GraphQLClient, clock: Clock
) -> None:
    adv = await _advocate(gql, capacity=10)
    family = await sign_up(gql)
    first = await _case(gql, adv, family)  # due in 48 h
    clock.advance(timedelta(hours=1))
    second = await _case(gql, adv, family)  # due an hour later
    accepted = await _case(gql, adv, family)
    await _accept(gql, accepted)  # first message due in 24 h from now: sooner than both
    replied = await _case(gql, adv, family)
    await _accept(gql, replied, "Hello!")  # no clock running
    declined = await _case(gql, adv, family)
    await gql.data(
        DECLINE, {"input": {"requestId": declined.request_id, "reason": "NO_CAPACITY"}}, adv.token
    )  # no clock running

    nodes, info = await _queue(gql, adv)
    assert [n["id"] for n in nodes] == [
        accepted.ticket_id,
        first.ticket_id,
        second.ticket_id,
        replied.ticket_id,
        declined.ticket_id,
    ]
    assert info["hasNextPage"] is False
    assert [n["nextSlaDueAt"] is None for n in nodes] == [False, False, False, True, True]
    # Backwards from the end, one a page, across the boundary of the untimed part and back.
    backwards: list[str] = []
    before: str | None = None
    for _ in nodes:
        page, info = await _queue(gql, adv, last=1, before=before)
        backwards.insert(0, page[0]["id"])
        before = info["startCursor"]
    assert backwards == [n["id"] for n in nodes]
    assert info["hasPreviousPage"] is False
    # The slice between the first and the last: from either end.
    bounds = {"after": nodes[0]["cursor"], "before": nodes[-1]["cursor"]}
    for window in ({"first": 10}, {"last": 10}, {"last": 2}):
        page, _ = await _queue(gql, adv, **bounds, **window)
        expected = [n["id"] for n in nodes[1:-1]]
        assert [n["id"] for n in page] == (expected[-2:] if window.get("last") == 2 else expected)

    # Newest first, when asked.
    newest, _ = await _queue(gql, adv, order="NEWEST_FIRST")
    assert [n["id"] for n in newest] == [
        declined.ticket_id,
        replied.ticket_id,
        accepted.ticket_id,
        second.ticket_id,
        first.ticket_id,
    ]


async def test_queue_pages_hold_still_as_tickets_change_and_arrive(gql: GraphQLClient) -> None:
    adv = await _advocate(gql, capacity=10)
    family = await sign_up(gql)
    cases = [await _case(gql, adv, family) for _ in range(5)]
    page1, info1 = await _queue(gql, adv, first=2)
    assert [n["id"] for n in page1] == [c.ticket_id for c in cases[:2]]
    assert info1["hasNextPage"] is True
    # Meanwhile: an already-seen ticket leaves the timed part, and a new request arrives.
    await _accept(gql, cases[0], "Hello")
    newcomer = await _case(gql, adv, family)
    page2, info2 = await _queue(gql, adv, first=2, after=info1["endCursor"])
    assert [n["id"] for n in page2] == [c.ticket_id for c in cases[2:4]]
    assert info2["hasPreviousPage"] is True
    page3, info3 = await _queue(gql, adv, first=3, after=info2["endCursor"])
    # The rest of the timed tickets, then those with no clock running.
    assert [n["id"] for n in page3] == [cases[4].ticket_id, newcomer.ticket_id, cases[0].ticket_id]
    assert info3["hasNextPage"] is False
    # A cursor into the untimed part carries on from there, by ID.
    await _accept(gql, cases[2], "Hello")
    tail, info4 = await _queue(gql, adv, first=5, after=page3[2]["cursor"])
    assert [n["id"] for n in tail] == [cases[2].ticket_id]
    assert info4["hasNextPage"] is False


@pytest.mark.parametrize("after", ["garbage", "VGlja2V0OjE", "WyJUaWNrZXRRdWV1ZSIsIm5vdC1hLWRhdGUiLCIxIl0"])
async def test_a_bad_queue_cursor_is_a_client_error(gql: GraphQLClient, after: str) -> None:
    adv = await _advocate(gql)
    body = await gql(QUEUE, {"after": after}, adv.token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["field"] == "after"


async def test_the_queue_filters_by_status_and_sla_state(gql: GraphQLClient, clock: Clock) -> None:
    adv = await _advocate(gql, capacity=10)
    family = await sign_up(gql)
    old = await _case(gql, adv, family)
    clock.advance(timedelta(hours=40))  # old: AT_RISK (8 h of 48 left)
    fresh = await _case(gql, adv, family)
    active = await _case(gql, adv, family)
    await _accept(gql, active, "Hello")
    asked = await _case(gql, adv, family)
    await gql.data(ASK, {"input": {"requestId": asked.request_id, "message": "Which LA?"}}, adv.token)

    async def ids(**flt: Any) -> set[str]:
        nodes, _ = await _queue(gql, adv, filter=flt)
        return {n["id"] for n in nodes}

    assert await ids(status=["NEW"]) == {old.ticket_id, fresh.ticket_id}
    assert await ids(status=["ACTIVE", "WAITING_ON_FAMILY"]) == {active.ticket_id, asked.ticket_id}
    assert await ids(slaState=["AT_RISK"]) == {old.ticket_id}
    assert await ids(slaState=["ON_TRACK"]) == {fresh.ticket_id}
    assert await ids(slaState=["BREACHED"]) == set()
    assert await ids(slaState=["ON_TRACK", "AT_RISK"], status=["NEW"]) == {old.ticket_id, fresh.ticket_id}
    clock.advance(timedelta(hours=9))
    assert await ids(slaState=["BREACHED"]) == {old.ticket_id}
    body = await gql(QUEUE, {"filter": {"slaState": ["MET"]}}, adv.token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["field"] == "slaState"


async def test_each_advocate_sees_only_their_own_tickets(gql: GraphQLClient) -> None:
    mine = await _case(gql)
    theirs = await _case(gql)
    nodes, _ = await _queue(gql, mine.advocate)
    assert [n["id"] for n in nodes] == [mine.ticket_id]
    assert (await gql.data(TICKET_NODE, {"t": theirs.ticket_id}, mine.advocate.token))["node"] is None


# --- checklists -------------------------------------------------------------------------------


async def _add(gql: GraphQLClient, case: Case, text: str) -> dict[str, Any]:
    result: dict[str, Any] = (
        await gql.data(ADD_ITEM, {"input": {"ticketId": case.ticket_id, "text": text}}, case.advocate.token)
    )["addChecklistItem"]
    return result


async def test_a_checklist_is_added_to_ticked_unticked_reordered_and_removed_live(gql: GraphQLClient) -> None:
    case = await _case(gql)
    adv = case.advocate
    async with gql.socket(adv.token) as sock:
        await sock.ack()
        op = await sock.subscribe(LIVE, {"after": await advocate_cursor(adv)})

        first = await _add(gql, case, "  Read the EP report  ")
        assert first["userErrors"] == []
        assert first["checklistItem"]["text"] == "Read the EP report"
        assert (await _next_update(sock, op))["changes"] == ["CHECKLIST_CHANGED"]
        second = (await _add(gql, case, "Draft the appeal"))["checklistItem"]
        third = (await _add(gql, case, "Call the SENCo"))["checklistItem"]
        for _ in range(2):
            assert (await _next_update(sock, op))["changes"] == ["CHECKLIST_CHANGED"]

        ticked = (await gql.data(TICK, {"input": {"itemId": second["id"]}}, adv.token))["tickChecklistItem"]
        assert ticked["checklistItem"]["done"] is True
        assert ticked["checklistItem"]["doneBy"] == {"id": adv.user_id}
        assert (await _next_update(sock, op))["changes"] == ["CHECKLIST_CHANGED"]
        # Ticking what is ticked changes nothing, says nothing, and keeps who and when.
        again = (await gql.data(TICK, {"input": {"itemId": second["id"]}}, adv.token))["tickChecklistItem"]
        assert again == ticked
        await sock.expect_silence(0.3)

        unticked = (await gql.data(UNTICK, {"input": {"itemId": second["id"]}}, adv.token))[
            "untickChecklistItem"
        ]
        assert unticked["checklistItem"] == {
            "id": second["id"],
            "done": False,
            "doneAt": None,
            "doneBy": None,
        }
        assert (await _next_update(sock, op))["changes"] == ["CHECKLIST_CHANGED"]

        order = [third["id"], first["checklistItem"]["id"], second["id"]]
        reordered = (
            await gql.data(REORDER, {"input": {"ticketId": case.ticket_id, "itemIds": order}}, adv.token)
        )["reorderChecklistItems"]
        assert reordered["userErrors"] == []
        assert [i["id"] for i in reordered["ticket"]["checklist"]] == order
        assert (await _next_update(sock, op))["changes"] == ["CHECKLIST_CHANGED"]

        removed = (await gql.data(REMOVE, {"input": {"itemId": third["id"]}}, adv.token))[
            "removeChecklistItem"
        ]
        assert removed["checklistItem"] == {"id": third["id"], "text": "Call the SENCo"}
        assert [i["id"] for i in removed["ticket"]["checklist"]] == order[1:]
        assert (await _next_update(sock, op))["changes"] == ["CHECKLIST_CHANGED"]
        # A new item goes to the end.
        last = (await _add(gql, case, "Send the bundle"))["ticket"]["checklist"]
        assert [i["text"] for i in last] == ["Read the EP report", "Draft the appeal", "Send the bundle"]


def _snapshot_items() -> Any:
    async def take() -> list[tuple[int, str, int, bool, Any]]:
        return [
            (i.id, i.text, i.position, i.done, i.done_at) for i in await ChecklistItem.all().order_by("id")
        ]

    return take()


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "REQUIRED"),
        ("   ", "REQUIRED"),
        ("x" * 501, "TOO_LONG"),
        ("x" * 10_000, "TOO_LONG"),
        ("Bell\x07", "INVALID"),
        ("Two\nlines", "INVALID"),
    ],
)
async def test_a_bad_checklist_item_is_refused_and_nothing_changes(
    gql: GraphQLClient, text: str, code: str
) -> None:
    case = await _case(gql)
    await _add(gql, case, "Existing")
    before = await _snapshot_items()
    result = await _add(gql, case, text)
    assert result["checklistItem"] is None
    assert result["userErrors"] == [
        {"code": code, "message": result["userErrors"][0]["message"], "field": "text"}
    ]
    assert await _snapshot_items() == before


async def test_a_checklist_holds_at_most_a_hundred_items(gql: GraphQLClient) -> None:
    case = await _case(gql)
    ticket = await Ticket.get()
    await ChecklistItem.bulk_create(
        [
            ChecklistItem(ticket_id=ticket.id, text=f"Item {i}", position=i, created_at=ticket.created_at)
            for i in range(100)
        ]
    )
    result = await _add(gql, case, "One too many")
    assert result["userErrors"][0]["code"] == "TOO_MANY_ITEMS"
    assert await ChecklistItem.all().count() == 100


async def test_concurrent_adds_never_take_a_checklist_past_its_cap(gql: GraphQLClient) -> None:
    case = await _case(gql)
    ticket = await Ticket.get()
    await ChecklistItem.bulk_create(
        [
            ChecklistItem(ticket_id=ticket.id, text=f"Item {i}", position=i, created_at=ticket.created_at)
            for i in range(97)
        ]
    )
    results = await asyncio.gather(*(_add(gql, case, f"Race {i}") for i in range(6)))
    assert sum(1 for r in results if r["userErrors"] == []) == 3
    assert {r["userErrors"][0]["code"] for r in results if r["userErrors"]} == {"TOO_MANY_ITEMS"}
    positions = [i.position for i in await ChecklistItem.all().order_by("position")]
    assert positions == list(range(100))


async def test_someone_elses_checklist_items_are_not_found_and_stay_as_they_are(gql: GraphQLClient) -> None:
    mine = await _case(gql)
    theirs = await _case(gql)
    their_item = (await _add(gql, theirs, "Theirs"))["checklistItem"]["id"]
    before = await _snapshot_items()
    for query, name in (
        (TICK, "tickChecklistItem"),
        (UNTICK, "untickChecklistItem"),
        (REMOVE, "removeChecklistItem"),
    ):
        result = (await gql.data(query, {"input": {"itemId": their_item}}, mine.advocate.token))[name]
        assert result["checklistItem"] is None
        assert result["userErrors"] == [
            {"code": "NOT_FOUND", "message": "Checklist item not found.", "field": "itemId"}
        ]
    result = (
        await gql.data(
            ADD_ITEM, {"input": {"ticketId": theirs.ticket_id, "text": "Mine now"}}, mine.advocate.token
        )
    )["addChecklistItem"]
    assert result["userErrors"][0] == {
        "code": "NOT_FOUND",
        "message": "Ticket not found.",
        "field": "ticketId",
    }
    # An item's ID where a ticket's is wanted is not found either.
    result = (
        await gql.data(ADD_ITEM, {"input": {"ticketId": their_item, "text": "x"}}, theirs.advocate.token)
    )["addChecklistItem"]
    assert result["userErrors"][0]["code"] == "NOT_FOUND"
    assert await _snapshot_items() == before


async def test_a_removed_item_is_gone_for_every_change(gql: GraphQLClient) -> None:
    case = await _case(gql)
    item = (await _add(gql, case, "Soon gone"))["checklistItem"]["id"]
    await _add(gql, case, "Stays")
    await gql.data(REMOVE, {"input": {"itemId": item}}, case.advocate.token)
    before = await _snapshot_items()
    for query, name in (
        (TICK, "tickChecklistItem"),
        (UNTICK, "untickChecklistItem"),
        (REMOVE, "removeChecklistItem"),
    ):
        result = (await gql.data(query, {"input": {"itemId": item}}, case.advocate.token))[name]
        assert result["userErrors"][0]["code"] == "NOT_FOUND", name
    result = (
        await gql.data(
            REORDER, {"input": {"ticketId": case.ticket_id, "itemIds": [item]}}, case.advocate.token
        )
    )["reorderChecklistItems"]
    assert result["userErrors"][0]["code"] == "ITEMS_MISMATCH"
    assert await _snapshot_items() == before


MISSING_INPUT = [
    ("addChecklistItem", "AddChecklistItemInput"),
    ("tickChecklistItem", "TickChecklistItemInput"),
    ("untickChecklistItem", "UntickChecklistItemInput"),
    ("removeChecklistItem", "RemoveChecklistItemInput"),
    ("reorderChecklistItems", "ReorderChecklistItemsInput"),
    ("createChecklistTemplate", "CreateChecklistTemplateInput"),
    ("deleteChecklistTemplate", "DeleteChecklistTemplateInput"),
    ("applyChecklistTemplate", "ApplyChecklistTemplateInput"),
    ("addTicketNote", "AddTicketNoteInput"),
    ("deleteTicketNote", "DeleteTicketNoteInput"),
    ("resolveTicket", "ResolveTicketInput"),
]


async def test_missing_or_mistyped_input_is_refused_before_anything_runs(gql: GraphQLClient) -> None:
    case = await _case(gql)
    await _add(gql, case, "Keep")
    before = await _snapshot_items(), await TicketNote.all().count(), await ChecklistTemplate.all().count()
    for name, input_type in MISSING_INPUT:
        query = f"mutation($input: {input_type}!) {{ {name}(input: $input) {{ userErrors {{ code }} }} }}"
        for variables in ({}, {"ticketId": 7, "itemId": 7, "templateId": 7, "noteId": 7, "name": 7}):
            body = await gql(query, {"input": variables}, case.advocate.token)
            assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", (name, variables)
    # Well-formed IDs of the wrong kind are simply not found.
    result = (
        await gql.data(ADD_ITEM, {"input": {"ticketId": case.request_id, "text": "x"}}, case.advocate.token)
    )["addChecklistItem"]
    assert result["userErrors"][0] == {
        "code": "NOT_FOUND",
        "message": "Ticket not found.",
        "field": "ticketId",
    }
    after = await _snapshot_items(), await TicketNote.all().count(), await ChecklistTemplate.all().count()
    assert after == before


async def test_reordering_must_name_exactly_the_tickets_items(gql: GraphQLClient) -> None:
    case = await _case(gql)
    other = await _case(gql, case.advocate)
    a = (await _add(gql, case, "A"))["checklistItem"]["id"]
    b = (await _add(gql, case, "B"))["checklistItem"]["id"]
    elsewhere = (await _add(gql, other, "C"))["checklistItem"]["id"]
    before = await _snapshot_items()
    for item_ids, code in (
        ([a], "ITEMS_MISMATCH"),
        ([b, a, elsewhere], "ITEMS_MISMATCH"),
        ([b, elsewhere], "ITEMS_MISMATCH"),
        ([b, a, a], "DUPLICATE"),
        ([], "ITEMS_MISMATCH"),
    ):
        result = (
            await gql.data(
                REORDER, {"input": {"ticketId": case.ticket_id, "itemIds": item_ids}}, case.advocate.token
            )
        )["reorderChecklistItems"]
        assert result["ticket"] is None
        assert result["userErrors"][0]["code"] == code, item_ids
        assert result["userErrors"][0]["field"] == "itemIds"
    assert await _snapshot_items() == before


async def test_templates_are_kept_applied_and_deleted(gql: GraphQLClient) -> None:
    case = await _case(gql)
    adv = case.advocate
    made = (
        await gql.data(
            CREATE_TEMPLATE,
            {
                "input": {
                    "name": " Tribunal appeal ",
                    "items": ["Get the decision letter", "Draft the appeal"],
                }
            },
            adv.token,
        )
    )["createChecklistTemplate"]
    assert made["userErrors"] == []
    assert made["checklistTemplate"]["name"] == "Tribunal appeal"
    template_id = made["checklistTemplate"]["id"]
    assert (await gql.data(TEMPLATES, token=adv.token))["checklistTemplates"] == [made["checklistTemplate"]]

    await _add(gql, case, "Read the request")
    applied = (
        await gql.data(
            APPLY_TEMPLATE, {"input": {"ticketId": case.ticket_id, "templateId": template_id}}, adv.token
        )
    )["applyChecklistTemplate"]
    assert applied["userErrors"] == []
    assert [i["text"] for i in applied["ticket"]["checklist"]] == [
        "Read the request",
        "Get the decision letter",
        "Draft the appeal",
    ]
    # Another advocate can neither see, apply nor delete it.
    stranger = await _case(gql)
    assert (await gql.data(TEMPLATES, token=stranger.advocate.token))["checklistTemplates"] == []
    refused = (
        await gql.data(
            APPLY_TEMPLATE,
            {"input": {"ticketId": stranger.ticket_id, "templateId": template_id}},
            stranger.advocate.token,
        )
    )["applyChecklistTemplate"]
    assert refused["userErrors"][0] == {
        "code": "NOT_FOUND",
        "message": "Checklist template not found.",
        "field": "templateId",
    }
    refused = (
        await gql.data(DELETE_TEMPLATE, {"input": {"templateId": template_id}}, stranger.advocate.token)
    )["deleteChecklistTemplate"]
    assert refused["userErrors"][0]["code"] == "NOT_FOUND"

    deleted = (await gql.data(DELETE_TEMPLATE, {"input": {"templateId": template_id}}, adv.token))[
        "deleteChecklistTemplate"
    ]
    assert deleted == {"checklistTemplate": {"id": template_id, "name": "Tribunal appeal"}, "userErrors": []}
    assert (await gql.data(TEMPLATES, token=adv.token))["checklistTemplates"] == []
    gone = (await gql.data(DELETE_TEMPLATE, {"input": {"templateId": template_id}}, adv.token))[
        "deleteChecklistTemplate"
    ]
    assert gone["userErrors"][0]["code"] == "NOT_FOUND"
    # The checklist it filled stays.
    assert await ChecklistItem.all().count() == 3


@pytest.mark.parametrize(
    ("template", "field", "code"),
    [
        ({"name": "", "items": ["A"]}, "name", "REQUIRED"),
        ({"name": "x" * 101, "items": ["A"]}, "name", "TOO_LONG"),
        ({"name": "T", "items": []}, "items", "REQUIRED"),
        ({"name": "T", "items": ["A", " "]}, "items", "REQUIRED"),
        ({"name": "T", "items": ["x" * 10_000]}, "items", "TOO_LONG"),
        ({"name": "T", "items": ["A"] * 101}, "items", "TOO_LONG"),
    ],
)
async def test_a_bad_template_is_refused(
    gql: GraphQLClient, template: dict[str, Any], field: str, code: str
) -> None:
    adv = await _advocate(gql)
    result = (await gql.data(CREATE_TEMPLATE, {"input": template}, adv.token))["createChecklistTemplate"]
    assert result["checklistTemplate"] is None
    assert (result["userErrors"][0]["field"], result["userErrors"][0]["code"]) == (field, code)
    assert await ChecklistTemplate.all().count() == 0


async def test_templates_are_capped_and_so_is_what_they_add(gql: GraphQLClient) -> None:
    case = await _case(gql)
    adv = await Advocate.get(id=(await Ticket.get()).advocate_id)
    await ChecklistTemplate.bulk_create(
        [
            ChecklistTemplate(advocate_id=adv.id, name=f"T{i}", items=["A"], created_at=adv.created_at)
            for i in range(50)
        ]
    )
    refused = (
        await gql.data(CREATE_TEMPLATE, {"input": {"name": "One more", "items": ["A"]}}, case.advocate.token)
    )["createChecklistTemplate"]
    assert refused["userErrors"][0]["code"] == "TOO_MANY_TEMPLATES"
    assert await ChecklistTemplate.all().count() == 50

    big = await ChecklistTemplate.create(
        advocate_id=adv.id, name="Big", items=["B"] * 60, created_at=adv.created_at
    )
    big_id = f"{big.id}"
    import base64

    global_id = base64.b64encode(f"ChecklistTemplate:{big_id}".encode()).decode()
    first = (
        await gql.data(
            APPLY_TEMPLATE,
            {"input": {"ticketId": case.ticket_id, "templateId": global_id}},
            case.advocate.token,
        )
    )["applyChecklistTemplate"]
    assert first["userErrors"] == []
    second = (
        await gql.data(
            APPLY_TEMPLATE,
            {"input": {"ticketId": case.ticket_id, "templateId": global_id}},
            case.advocate.token,
        )
    )["applyChecklistTemplate"]
    assert second["userErrors"][0] == {
        "code": "TOO_MANY_ITEMS",
        "message": second["userErrors"][0]["message"],
        "field": "templateId",
    }
    assert await ChecklistItem.all().count() == 60


# --- notes and resolving -----------------------------------------------------------------------


async def test_notes_are_added_listed_newest_first_and_deleted_live(gql: GraphQLClient) -> None:
    case = await _case(gql)
    adv = case.advocate
    async with gql.socket(adv.token) as sock:
        await sock.ack()
        op = await sock.subscribe(LIVE, {"after": await advocate_cursor(adv)})
        first = (
            await gql.data(
                ADD_NOTE, {"input": {"ticketId": case.ticket_id, "body": "Mum sounds worried."}}, adv.token
            )
        )["addTicketNote"]
        assert first["userErrors"] == []
        assert first["ticketNote"]["author"] == {"id": adv.user_id}
        assert (await _next_update(sock, op))["changes"] == ["NOTE_ADDED"]
        second = (
            await gql.data(
                ADD_NOTE, {"input": {"ticketId": case.ticket_id, "body": "Line one\nLine two"}}, adv.token
            )
        )["addTicketNote"]
        assert [e["node"]["body"] for e in second["ticket"]["notes"]["edges"]] == [
            "Line one\nLine two",
            "Mum sounds worried.",
        ]
        assert (await _next_update(sock, op))["changes"] == ["NOTE_ADDED"]
        deleted = (await gql.data(DELETE_NOTE, {"input": {"noteId": first["ticketNote"]["id"]}}, adv.token))[
            "deleteTicketNote"
        ]
        assert deleted == {
            "ticketNote": {"id": first["ticketNote"]["id"], "body": "Mum sounds worried."},
            "userErrors": [],
        }
        assert (await _next_update(sock, op))["changes"] == ["NOTE_DELETED"]
    again = (await gql.data(DELETE_NOTE, {"input": {"noteId": first["ticketNote"]["id"]}}, adv.token))[
        "deleteTicketNote"
    ]
    assert again["userErrors"][0]["code"] == "NOT_FOUND"


async def test_notes_page_newest_first(gql: GraphQLClient) -> None:
    case = await _case(gql)
    for i in range(5):
        await gql.data(
            ADD_NOTE, {"input": {"ticketId": case.ticket_id, "body": f"Note {i}"}}, case.advocate.token
        )
    query = """
    query($t: ID!, $after: String) { node(id: $t) { ... on Ticket {
      notes(first: 2, after: $after) { edges { node { body } } pageInfo { hasNextPage endCursor } }
    } } }
    """
    seen: list[str] = []
    after = None
    while True:
        notes = (await gql.data(query, {"t": case.ticket_id, "after": after}, case.advocate.token))["node"][
            "notes"
        ]
        seen += [e["node"]["body"] for e in notes["edges"]]
        if not notes["pageInfo"]["hasNextPage"]:
            break
        after = notes["pageInfo"]["endCursor"]
    assert seen == [f"Note {i}" for i in reversed(range(5))]


@pytest.mark.parametrize(
    ("body", "code"), [("", "REQUIRED"), ("x" * 10_001, "TOO_LONG"), ("\x07", "INVALID")]
)
async def test_a_bad_note_is_refused(gql: GraphQLClient, body: str, code: str) -> None:
    case = await _case(gql)
    result = (
        await gql.data(ADD_NOTE, {"input": {"ticketId": case.ticket_id, "body": body}}, case.advocate.token)
    )["addTicketNote"]
    assert result["ticketNote"] is None
    assert (result["userErrors"][0]["code"], result["userErrors"][0]["field"]) == (code, "body")
    assert await TicketNote.all().count() == 0


async def test_a_note_of_ten_thousand_characters_is_kept_whole(gql: GraphQLClient) -> None:
    case = await _case(gql)
    body = "n" * 10_000
    result = (
        await gql.data(ADD_NOTE, {"input": {"ticketId": case.ticket_id, "body": body}}, case.advocate.token)
    )["addTicketNote"]
    assert result["userErrors"] == []
    assert (await TicketNote.get()).body == body


async def _resolve(gql: GraphQLClient, case: Case, **extra: Any) -> dict[str, Any]:
    variables = {"ticketId": case.ticket_id, "outcome": "REFERRED_ELSEWHERE", **extra}
    result: dict[str, Any] = (await gql.data(RESOLVE, {"input": variables}, case.advocate.token))[
        "resolveTicket"
    ]
    return result


async def test_only_a_finished_case_can_be_resolved_and_only_once(gql: GraphQLClient) -> None:
    case = await _case(gql)
    refused = await _resolve(gql, case)
    assert refused["ticket"] is None
    assert refused["userErrors"] == [
        {
            "code": "REQUEST_OPEN",
            "message": "Accept or decline this request before resolving it.",
            "field": "ticketId",
        }
    ]
    relationship_id = await _accept(gql, case)
    refused = await _resolve(gql, case)
    assert refused["userErrors"][0]["code"] == "CASE_ACTIVE"
    assert "end the support relationship first" in refused["userErrors"][0]["message"]
    assert (await Ticket.get()).status is TicketStatus.ACTIVE

    await gql.data(
        END, {"input": {"relationshipId": relationship_id, "reason": "RESOLVED"}}, case.advocate.token
    )
    done = await _resolve(gql, case, note="Referred to IPSEA for tribunal.")
    assert done["userErrors"] == []
    assert done["ticket"]["status"] == "RESOLVED"
    assert done["ticket"]["outcome"] == "REFERRED_ELSEWHERE"
    assert done["ticket"]["resolutionNote"] == "Referred to IPSEA for tribunal."
    first_resolved_at = done["ticket"]["resolvedAt"]

    again = await _resolve(gql, case, outcome="OTHER", note="Changed my mind")
    assert again["userErrors"] == [
        {"code": "ALREADY_RESOLVED", "message": "This ticket is already resolved.", "field": "ticketId"}
    ]
    row = await Ticket.get()
    assert (row.outcome, row.resolution_note) == ("REFERRED_ELSEWHERE", "Referred to IPSEA for tribunal.")
    assert row.resolved_at is not None
    assert row.resolved_at.isoformat() == _at(first_resolved_at).isoformat()


async def test_two_resolves_at_once_resolve_once(gql: GraphQLClient) -> None:
    case = await _case(gql)
    await gql.data(WITHDRAW, {"input": {"requestId": case.request_id}}, case.family.token)
    results = await asyncio.gather(*(_resolve(gql, case, note=f"Try {i}") for i in range(4)))
    assert sum(1 for r in results if r["userErrors"] == []) == 1
    assert {r["userErrors"][0]["code"] for r in results if r["userErrors"]} == {"ALREADY_RESOLVED"}
    winner = next(r for r in results if r["userErrors"] == [])
    assert (await Ticket.get()).resolution_note == winner["ticket"]["resolutionNote"]


async def test_bad_resolve_input_changes_nothing(gql: GraphQLClient) -> None:
    case = await _case(gql)
    await gql.data(WITHDRAW, {"input": {"requestId": case.request_id}}, case.family.token)
    too_long = await _resolve(gql, case, note="x" * 10_001)
    assert (too_long["userErrors"][0]["code"], too_long["userErrors"][0]["field"]) == ("TOO_LONG", "note")
    body = await gql(RESOLVE, {"input": {"ticketId": case.ticket_id, "outcome": "WON"}}, case.advocate.token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    missing = await gql(RESOLVE, {"input": {"ticketId": case.ticket_id}}, case.advocate.token)
    assert missing["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    other = await _case(gql)
    stolen = (
        await gql.data(
            RESOLVE, {"input": {"ticketId": case.ticket_id, "outcome": "OTHER"}}, other.advocate.token
        )
    )["resolveTicket"]
    assert stolen["userErrors"][0]["code"] == "NOT_FOUND"
    row = await Ticket.get(id=int(_raw_id(case.ticket_id)))
    assert row.status is TicketStatus.CLOSED
    assert row.outcome is None
    assert row.resolved_at is None


def _raw_id(global_id: str) -> str:
    import base64

    return base64.b64decode(global_id).decode().split(":", 1)[1]


# --- live dashboard: replay and per-event authorisation ---------------------------------------------


async def test_ticket_updates_missed_while_offline_are_replayed(gql: GraphQLClient) -> None:
    case = await _case(gql)
    adv = case.advocate
    async with gql.socket(adv.token) as sock:
        await sock.ack()
        op = await sock.subscribe(LIVE, {"after": await advocate_cursor(adv)})
        await _add(gql, case, "First")
        cursor = (await _next_update(sock, op))["cursor"]
    await gql.data(ADD_NOTE, {"input": {"ticketId": case.ticket_id, "body": "While away"}}, adv.token)
    await gql.data(
        SEND_MESSAGE, {"input": {"requestId": case.request_id, "body": "Any news?"}}, case.family.token
    )
    async with gql.socket(adv.token) as sock:
        await sock.ack()
        op = await sock.subscribe(LIVE, {"after": cursor})
        replayed = [(await _next_update(sock, op))["changes"] for _ in range(2)]
        await sock.expect_silence(0.3)
    assert replayed == [["NOTE_ADDED"], ["FAMILY_MESSAGE"]]


async def test_a_revoked_token_closes_the_dashboard_feed_at_once(gql: GraphQLClient) -> None:
    case = await _case(gql)
    from tests.factories import api_token

    secret = await api_token(gql, case.advocate, ["EVENTS_SUBSCRIBE", "REQUESTS_READ", "REQUESTS_WRITE"])
    async with gql.socket(secret) as sock:
        await sock.ack()
        op = await sock.subscribe(LIVE, {"after": await advocate_cursor(case.advocate)})
        await _add(gql, case, "Seen")
        assert (await _next_update(sock, op))["changes"] == ["CHECKLIST_CHANGED"]
        tokens = await gql.data("{ apiTokens { id } }", token=case.advocate.token)
        token_id = tokens["apiTokens"][0]["id"]
        await gql.data(
            "mutation($i: ID!) { revokeApiToken(input: {apiTokenId: $i}) { userErrors { code } } }",
            {"i": token_id},
            case.advocate.token,
        )
        # The socket closes as soon as the revocation commits, before any further change.
        assert await sock.closed_code() == 4403
        await _add(gql, case, "Not seen")


# --- the dashboard's SQL ------------------------------------------------------------------------

DASHBOARD = """
query($first: Int, $after: String) {
  ticketQueue(first: $first, after: $after) {
    edges { cursor node {
      id status slaState nextSlaDueAt familyDisplayName childDisplayName lastFamilyMessageAt
      request { id status childAgeYears ehcpStage supportTypes family { displayName } advocate { id } }
      relationship { id status openedAt }
      slaClocks { kind state dueAt atRiskAt breachedAt metAt }
      checklist { id text done doneBy { displayName } }
      notes(first: 3) { edges { node { body author { displayName } } } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


class _Counter(logging.Handler):
    """Counts the SQL statements the server runs for requests, leaving out its background tasks."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            task = asyncio.current_task()
        except RuntimeError:
            task = None
        if task is not None and task.get_name() in BACKGROUND_TASKS:
            return
        self.count += 1


@contextmanager
def _counting() -> Iterator[_Counter]:
    logger = logging.getLogger("tortoise.db_client")
    counter = _Counter()
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)


async def _fill_queue(services: Services, advocate_token: str, family: Viewer, count: int) -> None:
    """`count` requests to one advocate, through the domain as the API would make them; every
    fourth accepted; each ticket with checklist items (one ticked) and notes."""
    adv_viewer = await accounts.authenticate(services, advocate_token)
    assert adv_viewer is not None
    now = services.clock.now()
    await Child.bulk_create(
        [
            Child(
                family_id=family.family_id,
                display_name=f"Child {uuid.uuid4().hex[:6]}",
                date_of_birth=now.date().replace(year=now.year - 8),
                ehcp_stage=EhcpStage.ASSESSING,
                created_at=now,
                updated_at=now,
            )
            for _ in range(count)
        ]
    )
    children = list(await Child.filter(family_id=family.family_id).order_by("-id").limit(count))
    for i, child in enumerate(children):
        request = await support_requests.send(
            services,
            family,
            advocate_id=adv_viewer.advocate_id or 0,
            child_id=child.id,
            message=f"Request {i}",
            support_types=[SupportType.ADVICE],
        )
        if i % 4 == 0:
            await support_requests.accept(services, adv_viewer, request.id, "Hello" if i % 8 == 0 else None)
    tickets = await Ticket.filter(advocate_id=adv_viewer.advocate_id)
    await ChecklistItem.bulk_create(
        [
            ChecklistItem(
                ticket_id=t.id,
                text=f"Step {n}",
                position=n,
                done=n == 0,
                done_at=now if n == 0 else None,
                done_by_id=adv_viewer.user_id if n == 0 else None,
                created_at=now,
            )
            for t in tickets
            for n in range(2)
        ]
    )
    await TicketNote.bulk_create(
        [
            TicketNote(ticket_id=t.id, author_id=adv_viewer.user_id, body=f"Note {n}", created_at=now)
            for t in tickets
            for n in range(4)
        ]
    )


async def test_the_dashboard_costs_the_same_sql_for_ten_tickets_as_for_two_hundred(
    gql: GraphQLClient, live_server: Live
) -> None:
    services: Services = live_server.app.state.services
    family_account = await sign_up(gql)
    family = await accounts.authenticate(services, family_account.token)
    assert family is not None
    small = await _advocate(gql, capacity=200)
    large = await _advocate(gql, capacity=200)
    await _fill_queue(services, small.token, family, 10)
    await _fill_queue(services, large.token, family, 200)

    # 30 tickets a page: the dashboard could return ~316 objects per ticket (a checklist holds up
    # to 100 items), and MAX_QUERY_COST (10,000) refuses 100 tickets a page.
    page = 30

    async def cost(adv: Account, after: str | None = None) -> tuple[int, dict[str, Any]]:
        with _counting() as counter:
            data = await gql.data(DASHBOARD, {"first": page, "after": after}, adv.token)
        return counter.count, data["ticketQueue"]

    small_cost, small_page = await cost(small)
    large_cost, large_page = await cost(large)
    next_cost, next_page = await cost(large, large_page["pageInfo"]["endCursor"])
    assert len(small_page["edges"]) == 10
    assert len(large_page["edges"]) == page
    assert len(next_page["edges"]) == page
    assert next_page["pageInfo"]["hasNextPage"] is True
    # Each field came back filled in, so each was really loaded.
    node = large_page["edges"][0]["node"]
    assert node["checklist"][0]["doneBy"]["displayName"]
    assert len(node["notes"]["edges"]) == 3
    assert node["request"]["family"]["displayName"] == node["familyDisplayName"]
    assert any(e["node"]["relationship"] for e in large_page["edges"] + next_page["edges"])
    # A later page may skip a loader its rows do not need (no relationship on it): never more.
    assert small_cost == large_cost >= next_cost, (small_cost, large_cost, next_cost)
    assert small_cost < 20


# --- what the family never sees ------------------------------------------------------------------

FAMILY_VIEW = """
query($r: ID!, $rel: ID!, $t: ID!, $n: ID!, $i: ID!) {
  viewer { id displayName family { id } }
  supportRequests { edges { node {
    id status message declineMessage childDisplayName ticket { id }
    family { displayName } advocate { displayName bio }
    relationship { id status closeNote closeReason }
    messages { edges { node { body author { displayName } } } }
  } } }
  supportRelationships { edges { node {
    id status closeNote closeReason request { id message }
    messages { edges { node { body } } }
  } } }
  request: node(id: $r) {
    ... on SupportRequest { id message ticket { id } messages { edges { node { body } } } }
  }
  relationship: node(id: $rel) {
    ... on SupportRelationship { id closeNote messages { edges { node { body } } } }
  }
  ticket: node(id: $t) { __typename }
  note: node(id: $n) { __typename }
  item: node(id: $i) { __typename }
  notifications { edges { node { kind title body subjectId } } }
}
"""
FAMILY_LIVE = [
    "subscription { supportRequestUpdated { cursor supportRequest { id status message } } }",
    "subscription($r: ID) { messageAdded(requestId: $r) { cursor message { body } } }",
    "subscription { notificationReceived { cursor notification { kind title body } } }",
]


async def test_private_notes_never_reach_the_family(gql: GraphQLClient) -> None:
    case = await _case(gql)
    adv = case.advocate
    secret = f"PRIVATE-{uuid.uuid4().hex}"
    relationship_id = await _accept(gql, case, "Hello, I'm your advocate.")
    received: list[dict[str, Any]] = []
    async with gql.socket(case.family.token) as sock:
        await sock.ack()
        ops = [await sock.subscribe(q, {"r": case.request_id}) for q in FAMILY_LIVE]
        await sock.expect_silence(0.3)

        note = (await gql.data(ADD_NOTE, {"input": {"ticketId": case.ticket_id, "body": secret}}, adv.token))[
            "addTicketNote"
        ]["ticketNote"]
        item = (await _add(gql, case, f"Check {secret}"))["checklistItem"]
        await gql.data(TICK, {"input": {"itemId": item["id"]}}, adv.token)
        # Something the family does hear about, so the feeds are shown to be live.
        await gql.data(
            SEND_MESSAGE, {"input": {"requestId": case.request_id, "body": "An update."}}, adv.token
        )
        for op in ops:
            received.append(await sock.next_event(op))
        await gql.data(
            END, {"input": {"relationshipId": relationship_id, "reason": "RESOLVED"}}, case.family.token
        )
        resolved = await _resolve(gql, case, note=f"Outcome {secret}")
        assert resolved["userErrors"] == []
        while True:
            try:
                received.append(await sock.receive(0.5))
            except TimeoutError:
                break
    assert any("An update." in str(event) for event in received)
    assert secret not in str(received)

    view = await gql(
        FAMILY_VIEW,
        {"r": case.request_id, "rel": relationship_id, "t": case.ticket_id, "n": note["id"], "i": item["id"]},
        case.family.token,
    )
    assert not view.get("errors"), view
    data = view["data"]
    assert data["ticket"] is None
    assert data["note"] is None
    assert data["item"] is None
    assert data["request"]["ticket"] is None
    assert all(e["node"]["ticket"] is None for e in data["supportRequests"]["edges"])
    assert data["relationship"]["id"] == relationship_id
    assert "An update." in str(data)
    assert secret not in str(view)
    # The family's tokens cannot reach the queue at all.
    refused = await gql("{ ticketQueue { edges { node { id } } } }", token=case.family.token)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # And nothing the server keeps for anyone's feed or notifications holds the text.
    assert not [e for e in await StoredEvent.all() if secret in str(e.payload)]
    assert not await Notification.filter(body__contains=secret).exists()
    assert not await Notification.filter(title__contains=secret).exists()
