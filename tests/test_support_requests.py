"""The support-request lifecycle: every move, every refused move, the rules, races, and live events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from models.advocates import Advocate
from models.support import Message, RequestStatus, SupportRelationship, SupportRequest
from resolvers.clock import Clock
from tests.client import GraphQLClient
from tests.conftest import Live
from tests.factories import (
    Account,
    AdvocateAccount,
    add_child,
    admin,
    advocate,
    db_id,
    send_request,
    sign_up,
    sweep,
)

ACCEPT = """
mutation($input: AcceptSupportRequestInput!) {
  acceptSupportRequest(input: $input) {
    supportRequest { id status relationship { id status } }
    userErrors { code message field }
  }
}
"""
ASK = """
mutation($input: RequestMoreInformationInput!) {
  requestMoreInformation(input: $input) { supportRequest { id status } userErrors { code message field } }
}
"""
DECLINE = """
mutation($input: DeclineSupportRequestInput!) {
  declineSupportRequest(input: $input) {
    supportRequest {
      id status declineReason declineMessage
      suggestedAlternatives { kind name note advocate { id displayName } }
    }
    userErrors { code message field }
  }
}
"""
WITHDRAW = """
mutation($input: WithdrawSupportRequestInput!) {
  withdrawSupportRequest(input: $input) { supportRequest { id status } userErrors { code message field } }
}
"""
SEND_MESSAGE = """
mutation($input: SendMessageInput!) {
  sendMessage(input: $input) {
    message { id body fromViewer author { displayName } }
    userErrors { code field }
  }
}
"""
REQUEST = """
query($id: ID!) {
  node(id: $id) {
    ... on SupportRequest {
      id status message childAgeYears ehcpStage childDisplayName
      family { displayName } child { id } advocate { id }
      messages { edges { node { body fromViewer } } }
    }
  }
}
"""
LIST = """
query($status: [RequestStatus!]) {
  supportRequests(filter: {status: $status}) { edges { node { id status } } }
}
"""


async def _setup(gql: GraphQLClient, **profile: Any) -> tuple[Account, str, AdvocateAccount]:
    family = await sign_up(gql)
    child = await add_child(gql, family, dateOfBirth="2014-06-01", ehcpStage="ASSESSMENT_REFUSED")
    adv = await advocate(gql, **profile)
    return family, child, adv


async def _open_request(gql: GraphQLClient) -> tuple[Account, str, AdvocateAccount, str]:
    family, child, adv = await _setup(gql)
    result = await send_request(gql, family, adv.advocate_id, child)
    assert result["userErrors"] == []
    return family, child, adv, result["supportRequest"]["id"]


def _codes(result: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(e["code"], e["field"]) for e in result["userErrors"]]


async def _status(request_gid: str) -> RequestStatus:
    return (await SupportRequest.get()).status


async def test_send_records_the_child_as_they_were(gql: GraphQLClient) -> None:
    family, child, adv = await _setup(gql)
    result = await send_request(
        gql, family, adv.advocate_id, child, supportTypes=["TRIBUNAL_APPEAL", "ADVICE"]
    )
    request = result["supportRequest"]
    assert result["userErrors"] == []
    assert request["status"] == "PENDING"
    assert request["ehcpStage"] == "ASSESSMENT_REFUSED"
    assert request["childDisplayName"] == "Alex"
    assert request["supportTypes"] == ["ADVICE", "TRIBUNAL_APPEAL"]
    # The child's record moves on; the request keeps what the advocate was shown.
    await gql.data(
        "mutation($id: ID!) { updateChild(input: {childId: $id, ehcpStage: TRIBUNAL}) { child { id } } }",
        {"id": child},
        family.token,
    )
    seen = (await gql.data(REQUEST, {"id": request["id"]}, adv.token))["node"]
    assert seen["ehcpStage"] == "ASSESSMENT_REFUSED"
    assert seen["childAgeYears"] == request["childAgeYears"] >= 11
    assert seen["child"] is None  # the child's record stays the family's
    assert seen["family"]["displayName"]
    assert [m["body"] for m in (e["node"] for e in seen["messages"]["edges"])] == [request["message"]]


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"message": ""}, "REQUIRED", "message"),
        ({"message": "   \n  "}, "REQUIRED", "message"),
        ({"message": "x" * 5001}, "TOO_LONG", "message"),
        ({"supportTypes": []}, "REQUIRED", "supportTypes"),
    ],
)
async def test_send_bad_input_changes_nothing(
    gql: GraphQLClient, overrides: dict[str, Any], code: str, field: str
) -> None:
    family, child, adv = await _setup(gql)
    result = await send_request(gql, family, adv.advocate_id, child, **overrides)
    assert result["supportRequest"] is None
    assert _codes(result) == [(code, field)]
    assert await SupportRequest.all().count() == 0


async def test_send_unknown_support_type_is_refused(gql: GraphQLClient) -> None:
    family, child, adv = await _setup(gql)
    body = await gql(
        "mutation($i: SendSupportRequestInput!) { sendSupportRequest(input: $i) { supportRequest { id } } }",
        {"i": {"advocateId": adv.advocate_id, "childId": child, "message": "hi", "supportTypes": ["MAGIC"]}},
        family.token,
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await SupportRequest.all().count() == 0


async def test_send_refuses_ids_that_are_not_an_advocate_or_not_your_child(gql: GraphQLClient) -> None:
    family, child, adv = await _setup(gql)
    other = await sign_up(gql)
    other_child = await add_child(gql, other)
    unverified = await advocate(gql, verified=False)
    cases: list[tuple[dict[str, str], tuple[str, str]]] = [
        ({"advocateId": family.user_id}, ("NOT_FOUND", "advocateId")),  # a family's user id
        ({"advocateId": str(family.family_id)}, ("NOT_FOUND", "advocateId")),  # a family's id
        ({"advocateId": unverified.advocate_id}, ("NOT_FOUND", "advocateId")),
        ({"childId": other_child}, ("NOT_FOUND", "childId")),
    ]
    for overrides, expected in cases:
        payload: dict[str, str] = {"advocateId": adv.advocate_id, "childId": child}
        payload.update(overrides)
        result = await send_request(gql, family, payload["advocateId"], payload["childId"])
        assert _codes(result) == [expected], overrides
    assert await SupportRequest.all().count() == 0


async def test_send_to_an_advocate_not_accepting_is_refused(gql: GraphQLClient) -> None:
    family, child, adv = await _setup(gql, availability="NOT_ACCEPTING")
    result = await send_request(gql, family, adv.advocate_id, child)
    assert _codes(result) == [("ADVOCATE_NOT_ACCEPTING", "advocateId")]
    assert await SupportRequest.all().count() == 0


async def test_one_open_request_per_family_child_and_advocate(gql: GraphQLClient) -> None:
    family, child, adv, _ = await _open_request(gql)
    again = await send_request(gql, family, adv.advocate_id, child)
    assert _codes(again) == [("DUPLICATE_REQUEST", "advocateId")]
    second_child = await add_child(gql, family, displayName="Jo")
    assert (await send_request(gql, family, adv.advocate_id, second_child))["userErrors"] == []
    assert await SupportRequest.all().count() == 2


async def test_no_request_to_an_advocate_already_supporting_that_child(gql: GraphQLClient) -> None:
    family, child, adv, request_id = await _open_request(gql)
    await gql.data(ACCEPT, {"input": {"requestId": request_id}}, adv.token)
    again = await send_request(gql, family, adv.advocate_id, child)
    assert _codes(again) == [("ALREADY_SUPPORTED", "advocateId")]
    assert await SupportRequest.all().count() == 1


async def test_ask_then_family_answers_then_accept_opens_the_relationship(gql: GraphQLClient) -> None:
    family, _, adv, request_id = await _open_request(gql)
    asked = (await gql.data(ASK, {"input": {"requestId": request_id, "message": "Which LA?"}}, adv.token))[
        "requestMoreInformation"
    ]
    assert asked["supportRequest"]["status"] == "INFO_REQUESTED"
    reply = await gql.data(SEND_MESSAGE, {"input": {"requestId": request_id, "body": "Leeds."}}, family.token)
    assert reply["sendMessage"]["userErrors"] == []
    assert reply["sendMessage"]["message"]["fromViewer"] is True
    accepted = (
        await gql.data(ACCEPT, {"input": {"requestId": request_id, "message": "Happy to help."}}, adv.token)
    )["acceptSupportRequest"]
    assert accepted["userErrors"] == []
    assert accepted["supportRequest"]["status"] == "ACCEPTED"
    assert accepted["supportRequest"]["relationship"]["status"] == "ACTIVE"
    assert (await Advocate.get()).active_case_count == 1
    thread = (await gql.data(REQUEST, {"id": request_id}, family.token))["node"]["messages"]["edges"]
    bodies = [e["node"]["body"] for e in thread]
    assert bodies[1:] == ["Which LA?", "Leeds.", "Happy to help."]


async def test_decline_with_reason_and_alternatives(gql: GraphQLClient) -> None:
    family, _, adv, request_id = await _open_request(gql)
    colleague = await advocate(gql, displayName="Colleague Cole")
    declined = (
        await gql.data(
            DECLINE,
            {
                "input": {
                    "requestId": request_id,
                    "reason": "CONFLICT_OF_INTEREST",
                    "message": "I act for the school.",
                    "suggestedAlternatives": [
                        {"kind": "ADVOCATE", "advocateId": colleague.advocate_id, "note": "Tribunals"},
                        {"kind": "IPSEA"},
                        {"kind": "OTHER_ORGANISATION", "name": "Contact", "note": "Helpline"},
                    ],
                }
            },
            adv.token,
        )
    )["declineSupportRequest"]
    assert declined["userErrors"] == []
    request = declined["supportRequest"]
    assert (request["status"], request["declineReason"]) == ("DECLINED", "CONFLICT_OF_INTEREST")
    assert request["suggestedAlternatives"] == [
        {
            "kind": "ADVOCATE",
            "name": "Colleague Cole",
            "note": "Tribunals",
            "advocate": {"id": colleague.advocate_id, "displayName": "Colleague Cole"},
        },
        {"kind": "IPSEA", "name": "IPSEA", "note": "", "advocate": None},
        {"kind": "OTHER_ORGANISATION", "name": "Contact", "note": "Helpline", "advocate": None},
    ]
    # The thread is read-only now; the family may send a new request later.
    late = await gql.data(
        SEND_MESSAGE, {"input": {"requestId": request_id, "body": "But why?"}}, family.token
    )
    assert [e["code"] for e in late["sendMessage"]["userErrors"]] == ["THREAD_CLOSED"]


@pytest.mark.parametrize(
    "suggestion",
    [
        {"kind": "ADVOCATE"},
        {"kind": "ADVOCATE", "advocateId": "QWR2b2NhdGU6OTk5OTk="},  # Advocate:99999
        {"kind": "OTHER_ORGANISATION"},
        {"kind": "IPSEA", "note": "x" * 501},
    ],
)
async def test_decline_with_bad_suggestion_changes_nothing(
    gql: GraphQLClient, suggestion: dict[str, str]
) -> None:
    _, _, adv, request_id = await _open_request(gql)
    result = (
        await gql.data(
            DECLINE,
            {"input": {"requestId": request_id, "reason": "OTHER", "suggestedAlternatives": [suggestion]}},
            adv.token,
        )
    )["declineSupportRequest"]
    assert result["supportRequest"] is None
    assert [e["field"] for e in result["userErrors"]] == ["suggestedAlternatives"]
    assert await _status(request_id) is RequestStatus.PENDING


async def test_withdraw_by_the_family(gql: GraphQLClient) -> None:
    family, _, adv, request_id = await _open_request(gql)
    other_family = await sign_up(gql)
    foreign = await gql.data(WITHDRAW, {"input": {"requestId": request_id}}, other_family.token)
    assert _codes(foreign["withdrawSupportRequest"]) == [("NOT_FOUND", "requestId")]
    result = (await gql.data(WITHDRAW, {"input": {"requestId": request_id}}, family.token))[
        "withdrawSupportRequest"
    ]
    assert result["supportRequest"]["status"] == "WITHDRAWN"


async def test_unanswered_request_expires_after_fourteen_days(gql: GraphQLClient, clock: Clock) -> None:
    family, _, adv, request_id = await _open_request(gql)
    clock.advance(timedelta(days=13, hours=23))
    await sweep(gql)
    assert await _status(request_id) is RequestStatus.PENDING
    clock.advance(timedelta(hours=2))
    await sweep(gql)
    assert await _status(request_id) is RequestStatus.EXPIRED
    accepted = (await gql.data(ACCEPT, {"input": {"requestId": request_id}}, adv.token))[
        "acceptSupportRequest"
    ]
    assert [e["code"] for e in accepted["userErrors"]] == ["INVALID_TRANSITION"]


async def test_a_request_past_its_expiry_cannot_move_before_the_sweep_marks_it(
    gql: GraphQLClient, live_server: Live, clock: Clock
) -> None:
    """Once `expiresAt` has passed, no answer or withdrawal is taken, even in the minute before the
    sweep marks the request EXPIRED; the `viewerCan…` flags say so too."""
    family, _, adv, request_id = await _open_request(gql)
    tokens = {"advocate": adv.token, "family": family.token}
    async with live_server.app.state.services.sweeping:  # the served app's sweep waits
        clock.advance(timedelta(days=14, minutes=1))
        flags = await gql.data(
            "query($id: ID!) { node(id: $id) { ... on SupportRequest { status viewerCanAccept"
            " viewerCanDecline viewerCanRequestInformation } } }",
            {"id": request_id},
            adv.token,
        )
        assert flags["node"] == {
            "status": "PENDING",
            "viewerCanAccept": False,
            "viewerCanDecline": False,
            "viewerCanRequestInformation": False,
        }
        for move in ALL_MOVES.values():
            document, variables, who = move(request_id)
            answer = next(iter((await gql.data(document, {"input": variables}, tokens[who])).values()))
            assert [e["code"] for e in answer["userErrors"]] == ["INVALID_TRANSITION"], answer
            assert "expired" in answer["userErrors"][0]["message"]
        assert await _status(request_id) is RequestStatus.PENDING
        assert await SupportRelationship.filter(request_id=db_id(request_id)).count() == 0
    await sweep(gql)
    assert await _status(request_id) is RequestStatus.EXPIRED


Move = Callable[[str], tuple[str, dict[str, str], str]]
TERMINAL_MOVES: dict[str, Move] = {
    "ACCEPTED": lambda r: (ACCEPT, {"requestId": r}, "advocate"),
    "DECLINED": lambda r: (DECLINE, {"requestId": r, "reason": "NO_CAPACITY"}, "advocate"),
    "WITHDRAWN": lambda r: (WITHDRAW, {"requestId": r}, "family"),
}
ALL_MOVES: dict[str, Move] = {
    **TERMINAL_MOVES,
    "INFO_REQUESTED": lambda r: (ASK, {"requestId": r, "message": "?"}, "advocate"),
}


@pytest.mark.parametrize("terminal", list(TERMINAL_MOVES))
@pytest.mark.parametrize("move", list(ALL_MOVES))
async def test_terminal_states_stay_terminal(gql: GraphQLClient, terminal: str, move: str) -> None:
    family, _, adv, request_id = await _open_request(gql)
    tokens = {"advocate": adv.token, "family": family.token}
    query, variables, who = TERMINAL_MOVES[terminal](request_id)
    await gql.data(query, {"input": variables}, tokens[who])
    messages_before = await Message.all().count()
    query, variables, who = ALL_MOVES[move](request_id)
    result = next(iter((await gql.data(query, {"input": variables}, tokens[who])).values()))
    assert result["supportRequest"] is None
    assert _codes(result) == [("INVALID_TRANSITION", "requestId")]
    assert (await SupportRequest.get()).status.value == terminal
    assert await Message.all().count() == messages_before


async def test_accepting_past_capacity_is_refused(gql: GraphQLClient) -> None:
    adv = await advocate(gql, capacity=1)
    ids = []
    for _ in range(2):
        family = await sign_up(gql)
        child = await add_child(gql, family)
        ids.append((await send_request(gql, family, adv.advocate_id, child))["supportRequest"]["id"])
    assert (await gql.data(ACCEPT, {"input": {"requestId": ids[0]}}, adv.token))["acceptSupportRequest"][
        "userErrors"
    ] == []
    refused = (await gql.data(ACCEPT, {"input": {"requestId": ids[1]}}, adv.token))["acceptSupportRequest"]
    assert _codes(refused) == [("AT_CAPACITY", "requestId")]
    assert await SupportRelationship.all().count() == 1
    assert (await Advocate.get()).active_case_count == 1
    assert await SupportRequest.filter(status=RequestStatus.PENDING).count() == 1


async def test_concurrent_accepts_never_exceed_capacity(gql: GraphQLClient) -> None:
    capacity, requests = 3, 8
    adv = await advocate(gql, capacity=capacity)
    ids = []
    for _ in range(requests):
        family = await sign_up(gql)
        child = await add_child(gql, family)
        ids.append((await send_request(gql, family, adv.advocate_id, child))["supportRequest"]["id"])
    results = await asyncio.gather(
        *(gql.data(ACCEPT, {"input": {"requestId": rid}}, adv.token) for rid in ids)
    )
    codes = sorted((r["acceptSupportRequest"]["userErrors"] or [{"code": "OK"}])[0]["code"] for r in results)
    assert codes == ["AT_CAPACITY"] * (requests - capacity) + ["OK"] * capacity
    assert await SupportRelationship.all().count() == capacity
    assert (await Advocate.get()).active_case_count == capacity


async def test_concurrent_accepts_of_one_request_open_one_relationship(gql: GraphQLClient) -> None:
    _, _, adv, request_id = await _open_request(gql)
    results = await asyncio.gather(
        *(gql.data(ACCEPT, {"input": {"requestId": request_id}}, adv.token) for _ in range(6))
    )
    winners = [r for r in results if not r["acceptSupportRequest"]["userErrors"]]
    assert len(winners) == 1
    assert await SupportRelationship.all().count() == 1
    assert (await Advocate.get()).active_case_count == 1


async def test_concurrent_duplicate_sends_create_one_request(gql: GraphQLClient) -> None:
    family, child, adv = await _setup(gql)
    results = await asyncio.gather(*(send_request(gql, family, adv.advocate_id, child) for _ in range(8)))
    assert sum(1 for r in results if not r["userErrors"]) == 1
    assert {e["code"] for r in results for e in r["userErrors"]} == {"DUPLICATE_REQUEST"}
    assert await SupportRequest.all().count() == 1


async def test_lists_show_each_side_its_own_requests_newest_first(gql: GraphQLClient) -> None:
    family, child, adv, first_id = await _open_request(gql)
    second_child = await add_child(gql, family, displayName="Jo")
    second_id = (await send_request(gql, family, adv.advocate_id, second_child))["supportRequest"]["id"]
    await gql.data(WITHDRAW, {"input": {"requestId": first_id}}, family.token)
    other_adv = await advocate(gql)
    for token in (family.token, adv.token):
        ids = [e["node"]["id"] for e in (await gql.data(LIST, {}, token))["supportRequests"]["edges"]]
        assert ids == [second_id, first_id]
        pending = (await gql.data(LIST, {"status": ["PENDING"]}, token))["supportRequests"]["edges"]
        assert [e["node"]["id"] for e in pending] == [second_id]
    assert (await gql.data(LIST, {}, other_adv.token))["supportRequests"]["edges"] == []
    boss = await admin(gql)
    body = await gql(LIST, {}, boss.token)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
