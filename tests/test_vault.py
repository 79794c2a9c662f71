"""The Vault and ending support, as the help article walks through it, with its rules and races."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from strawberry import relay

from models.families import Child
from models.support import CloseReason, Message, SupportRelationship
from models.vault import EhcpCase, Evidence, Review, TimelineEntry, VaultAccessLog, VaultGrant, VaultScope
from resolvers import accounts, relationships, vault
from resolvers.clock import Clock
from resolvers.errors import NotFound
from resolvers.pagination import Window
from schema.connections import decode_id
from tests.client import GraphQLClient
from tests.conftest import Live
from tests.factories import (
    Account,
    AdvocateAccount,
    add_child,
    admin,
    advocate,
    send_request,
    sign_up,
    user_cursor,
)
from tests.test_support_requests import ACCEPT, SEND_MESSAGE

ADD_EVIDENCE = """
mutation($input: AddEvidenceInput!) {
  addEvidence(input: $input) { evidence { id title } userErrors { code message field } }
}
"""
GRANT = """
mutation($input: GrantVaultAccessInput!) {
  grantVaultAccess(input: $input) { vaultGrant { id status scopes } userErrors { code message field } }
}
"""
REVOKE = """
mutation($input: RevokeVaultAccessInput!) {
  revokeVaultAccess(input: $input) { vaultGrant { id status endReason } userErrors { code field } }
}
"""
END = """
mutation($input: EndSupportRelationshipInput!) {
  endSupportRelationship(input: $input) {
    supportRelationship { id status closeReason closeNote closedBy { displayName } vaultGrants { status } }
    userErrors { code message field }
  }
}
"""
REVIEW = """
mutation($input: LeaveReviewInput!) {
  leaveReview(input: $input) { review { id rating text } userErrors { code message field } }
}
"""
READ_EVIDENCE = "query($f: ID!) { vault(familyId: $f) { evidence { edges { node { title } } } } }"
ACCESS_REVOKED = """
subscription($after: String) {
  accessRevoked(after: $after) { cursor reason vaultGrant { id status } family { id displayName } }
}
"""
THREAD = (
    "query($r: ID!) { node(id: $r) { ... on SupportRelationship { messages { edges { node { body } } } } } }"
)


async def _supported(
    gql: GraphQLClient, adv: AdvocateAccount | None = None
) -> tuple[Account, str, AdvocateAccount, str, str]:
    """A new family supported by an advocate (`adv`, or a new one): (family, child, advocate,
    request id, relationship id)."""
    family = await sign_up(gql)
    child = await add_child(gql, family)
    adv = adv or await advocate(gql)
    request_id = (await send_request(gql, family, adv.advocate_id, child))["supportRequest"]["id"]
    accepted = await gql.data(ACCEPT, {"input": {"requestId": request_id}}, adv.token)
    relationship_id = accepted["acceptSupportRequest"]["supportRequest"]["relationship"]["id"]
    return family, child, adv, request_id, relationship_id


async def _evidence(gql: GraphQLClient, family: Account, child: str, title: str = "EP report") -> str:
    data = await gql.data(
        ADD_EVIDENCE,
        {"input": {"childId": child, "title": title, "category": "EP_REPORT", "date": "2025-05-01"}},
        family.token,
    )
    assert data["addEvidence"]["userErrors"] == [], data
    evidence_id: str = data["addEvidence"]["evidence"]["id"]
    return evidence_id


async def _grant(
    gql: GraphQLClient, family: Account, relationship: str, child: str, **kw: Any
) -> dict[str, Any]:
    payload = {"relationshipId": relationship, "scopes": ["EVIDENCE"], "childIds": [child], **kw}
    result: dict[str, Any] = (await gql.data(GRANT, {"input": payload}, family.token))["grantVaultAccess"]
    return result


async def test_the_ending_support_article_end_to_end(gql: GraphQLClient) -> None:
    family, child, adv, _, relationship = await _supported(gql)
    await gql.data(SEND_MESSAGE, {"input": {"relationshipId": relationship, "body": "Hello!"}}, adv.token)
    await gql.data(SEND_MESSAGE, {"input": {"relationshipId": relationship, "body": "Hi!"}}, family.token)
    await _evidence(gql, family, child)
    assert (await _grant(gql, family, relationship, child))["userErrors"] == []
    read = await gql.data(READ_EVIDENCE, {"f": family.family_id}, adv.token)
    assert read["vault"]["evidence"]["edges"] == [{"node": {"title": "EP report"}}]

    async with gql.socket(adv.token) as sock:
        await sock.ack()
        op = await sock.subscribe(ACCESS_REVOKED, {"after": await user_cursor(adv)})
        ended = (
            await gql.data(
                END,
                {
                    "input": {
                        "relationshipId": relationship,
                        "reason": "RESOLVED",
                        "note": "Case resolved, EHCP finalised",
                    }
                },
                family.token,
            )
        )["endSupportRelationship"]
        event = (await sock.next_event(op))["data"]["accessRevoked"]
    assert ended["userErrors"] == []
    assert ended["supportRelationship"]["status"] == "CLOSED"
    assert ended["supportRelationship"]["closeNote"] == "Case resolved, EHCP finalised"
    assert ended["supportRelationship"]["vaultGrants"] == [{"status": "REVOKED"}]
    assert event["reason"] == "RELATIONSHIP_ENDED"
    assert event["vaultGrant"]["status"] == "REVOKED"
    assert event["family"]["id"] == family.family_id

    # The advocate's next read fails; the history stays readable to both; nothing new can be said.
    after = await gql(READ_EVIDENCE, {"f": family.family_id}, adv.token)
    assert after["data"]["vault"] is None
    for token in (family.token, adv.token):
        bodies = [
            e["node"]["body"]
            for e in (await gql.data(THREAD, {"r": relationship}, token))["node"]["messages"]["edges"]
        ]
        assert bodies[-2:] == ["Hello!", "Hi!"]
    late = await gql.data(
        SEND_MESSAGE, {"input": {"relationshipId": relationship, "body": "One more"}}, adv.token
    )
    assert [e["code"] for e in late["sendMessage"]["userErrors"]] == ["THREAD_CLOSED"]
    assert await Evidence.all().count() == 1  # the Vault is unchanged

    review = (
        await gql.data(
            REVIEW,
            {"input": {"relationshipId": relationship, "rating": 5, "text": "Brilliant"}},
            family.token,
        )
    )["leaveReview"]
    assert review["userErrors"] == []
    profile = await gql.data(
        "query($a: ID!) { advocate(id: $a) { rating { average count } activeCaseCount"
        " reviews { edges { node { text } } } } }",
        {"a": adv.advocate_id},
    )
    assert profile["advocate"]["rating"] == {"average": 5.0, "count": 1}
    assert profile["advocate"]["activeCaseCount"] == 0

    # Reopening is a new request: a new relationship, the old one kept.
    again = await send_request(gql, family, adv.advocate_id, child)
    assert again["userErrors"] == []
    reopened = await gql.data(ACCEPT, {"input": {"requestId": again["supportRequest"]["id"]}}, adv.token)
    new_relationship = reopened["acceptSupportRequest"]["supportRequest"]["relationship"]["id"]
    assert new_relationship != relationship
    assert await SupportRelationship.all().count() == 2


async def test_revoking_a_grant_ends_reads_at_once_and_tells_the_advocate(gql: GraphQLClient) -> None:
    family, child, adv, _, relationship = await _supported(gql)
    await _evidence(gql, family, child)
    grant_id = (await _grant(gql, family, relationship, child))["vaultGrant"]["id"]
    async with gql.socket(adv.token) as sock:
        await sock.ack()
        op = await sock.subscribe(ACCESS_REVOKED, {"after": await user_cursor(adv)})
        revoked = (await gql.data(REVOKE, {"input": {"grantId": grant_id}}, family.token))[
            "revokeVaultAccess"
        ]
        event = (await sock.next_event(op))["data"]["accessRevoked"]
    assert revoked["vaultGrant"] == {"id": grant_id, "status": "REVOKED", "endReason": "REVOKED_BY_FAMILY"}
    assert event["reason"] == "REVOKED_BY_FAMILY"
    assert (await gql.data(READ_EVIDENCE, {"f": family.family_id}, adv.token))["vault"] is None
    twice = (await gql.data(REVOKE, {"input": {"grantId": grant_id}}, family.token))["revokeVaultAccess"]
    assert [e["code"] for e in twice["userErrors"]] == ["INVALID_TRANSITION"]


async def test_an_expired_grant_stops_reads_and_the_advocate_is_told(
    gql: GraphQLClient, clock: Clock
) -> None:
    family, child, adv, _, relationship = await _supported(gql)
    await _evidence(gql, family, child)
    expiry = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await _grant(gql, family, relationship, child, expiresAt=expiry)
    assert (await gql.data(READ_EVIDENCE, {"f": family.family_id}, adv.token))["vault"] is not None
    async with gql.socket(adv.token) as sock:
        await sock.ack()
        op = await sock.subscribe(ACCESS_REVOKED, {"after": await user_cursor(adv)})
        clock.advance(timedelta(hours=1, seconds=1))
        assert (await gql.data(READ_EVIDENCE, {"f": family.family_id}, adv.token))["vault"] is None
        event = (await sock.next_event(op))["data"]["accessRevoked"]
    assert event["reason"] == "EXPIRED"
    assert event["vaultGrant"]["status"] == "EXPIRED"


async def test_grant_scope_and_child_limit_what_is_read_and_every_read_is_logged(gql: GraphQLClient) -> None:
    family, child, adv, _, relationship = await _supported(gql)
    sibling = await add_child(gql, family, displayName="Jo")
    await _evidence(gql, family, child, "Alex's EP report")
    await _evidence(gql, family, sibling, "Jo's school report")
    await gql.data(
        'mutation($c: ID!) { addTimelineEntry(input: {childId: $c, date: "2025-01-01", title: "Meeting"})'
        " { userErrors { code } } }",
        {"c": child},
        family.token,
    )
    await _grant(gql, family, relationship, child)  # EVIDENCE for Alex only
    data = await gql.data(
        "query($f: ID!) { vault(familyId: $f) { children { displayName }"
        " evidence { edges { node { title } } } timeline { edges { node { title } } }"
        " ehcpCases { stage } } }",
        {"f": family.family_id},
        adv.token,
    )
    assert data["vault"]["children"] == [{"displayName": "Alex"}]
    assert data["vault"]["evidence"]["edges"] == [{"node": {"title": "Alex's EP report"}}]
    assert data["vault"]["timeline"]["edges"] == []
    assert data["vault"]["ehcpCases"] == []
    log = await gql.data(
        "query { viewer { family { vaultAccessLog { edges { node { scope what actor { displayName } at } } }"
        " } } }",
        token=family.token,
    )
    entries = [e["node"] for e in log["viewer"]["family"]["vaultAccessLog"]["edges"]]
    assert {(e["scope"], e["what"]) for e in entries} == {
        ("EVIDENCE", "child Alex"),
        ("EVIDENCE", "evidence: Alex's EP report"),
    }
    assert all(e["actor"]["displayName"] for e in entries)
    # The family's own reads are not logged, and the log pages.
    await gql.data(READ_EVIDENCE, {"f": family.family_id}, family.token)
    assert await VaultAccessLog.all().count() == 2
    page = await gql.data(
        "query { viewer { family { vaultAccessLog(first: 1) { pageInfo { hasNextPage endCursor } } } } }",
        token=family.token,
    )
    assert page["viewer"]["family"]["vaultAccessLog"]["pageInfo"]["hasNextPage"] is True


async def test_statutory_dates_follow_from_the_request_date(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    child = await add_child(gql, family)
    data = await gql.data(
        "mutation($c: ID!) { updateEhcpCase(input: {childId: $c, stage: ASSESSMENT_REQUESTED,"
        ' requestDate: "2025-01-06"}) { ehcpCase { stage requestDate decisionDue finalPlanDue }'
        " userErrors { code } } }",
        {"c": child},
        family.token,
    )
    assert data["updateEhcpCase"]["ehcpCase"] == {
        "stage": "ASSESSMENT_REQUESTED",
        "requestDate": "2025-01-06",
        "decisionDue": "2025-02-17",
        "finalPlanDue": "2025-05-26",
    }


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"date": (datetime.now(UTC) + timedelta(days=3)).date().isoformat()}, "DATE_IN_FUTURE", "date"),
        ({"description": "x" * 1_000_000}, "TOO_LONG", "description"),
        ({"title": ""}, "REQUIRED", "title"),
    ],
)
async def test_bad_evidence_changes_nothing(
    gql: GraphQLClient, overrides: dict[str, str], code: str, field: str
) -> None:
    family = await sign_up(gql)
    child = await add_child(gql, family)
    payload = {"childId": child, "title": "Report", "category": "MEDICAL", "date": "2025-01-01", **overrides}
    result = (await gql.data(ADD_EVIDENCE, {"input": payload}, family.token))["addEvidence"]
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [(code, field)]
    assert await Evidence.all().count() == 0


async def test_bad_grants_change_nothing(gql: GraphQLClient) -> None:
    family, child, adv, _, relationship = await _supported(gql)
    other_family, other_child, _, _, other_relationship = await _supported(gql)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    cases: list[tuple[dict[str, Any], tuple[str, str]]] = [
        ({"relationshipId": other_relationship}, ("NOT_FOUND", "relationshipId")),
        ({"childIds": [other_child]}, ("NOT_FOUND", "childIds")),
        ({"childIds": []}, ("REQUIRED", "childIds")),
        ({"scopes": []}, ("REQUIRED", "scopes")),
        ({"expiresAt": past}, ("DATE_IN_PAST", "expiresAt")),
    ]
    for overrides, expected in cases:
        result = await _grant(gql, family, overrides.pop("relationshipId", relationship), child, **overrides)
        assert [(e["code"], e["field"]) for e in result["userErrors"]] == [expected], overrides
    body = await gql(
        GRANT,
        {"input": {"relationshipId": relationship, "scopes": ["PHOTOS"], "childIds": [child]}},
        family.token,
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    await gql.data(END, {"input": {"relationshipId": relationship, "reason": "OTHER"}}, family.token)
    closed = await _grant(gql, family, relationship, child)
    assert [(e["code"], e["field"]) for e in closed["userErrors"]] == [
        ("RELATIONSHIP_CLOSED", "relationshipId")
    ]
    assert await VaultGrant.all().count() == 0
    del other_family


async def test_review_rules(gql: GraphQLClient) -> None:
    family, _, adv, _, relationship = await _supported(gql)
    active = (await gql.data(REVIEW, {"input": {"relationshipId": relationship, "rating": 4}}, family.token))[
        "leaveReview"
    ]
    assert [e["code"] for e in active["userErrors"]] == ["RELATIONSHIP_ACTIVE"]
    await gql.data(END, {"input": {"relationshipId": relationship, "reason": "RESOLVED"}}, adv.token)
    for rating in (0, 6):
        bad = (
            await gql.data(
                REVIEW, {"input": {"relationshipId": relationship, "rating": rating}}, family.token
            )
        )["leaveReview"]
        assert [(e["code"], e["field"]) for e in bad["userErrors"]] == [("OUT_OF_RANGE", "rating")]
    first = (
        await gql.data(
            REVIEW, {"input": {"relationshipId": relationship, "rating": 2, "text": "Slow"}}, family.token
        )
    )["leaveReview"]
    assert first["userErrors"] == []
    second = (await gql.data(REVIEW, {"input": {"relationshipId": relationship, "rating": 5}}, family.token))[
        "leaveReview"
    ]
    assert [e["code"] for e in second["userErrors"]] == ["ALREADY_REVIEWED"]
    assert await Review.all().count() == 1
    boss = await admin(gql)
    hidden = await gql.data(
        "mutation($r: ID!) { hideReview(input: {reviewId: $r}) { review { hidden } userErrors { code } } }",
        {"r": first["review"]["id"]},
        boss.token,
    )
    assert hidden["hideReview"]["review"]["hidden"] is True
    shown = await gql.data(
        "query($a: ID!) { advocate(id: $a) { rating { average count } } }", {"a": adv.advocate_id}
    )
    assert shown["advocate"]["rating"] == {"average": None, "count": 0}


async def test_a_read_racing_the_end_never_returns_data_after_it(gql: GraphQLClient) -> None:
    family, child, adv, _, relationship = await _supported(gql)
    await _evidence(gql, family, child)
    await _grant(gql, family, relationship, child)
    ended_at: list[float] = []

    async def end() -> None:
        await gql.data(END, {"input": {"relationshipId": relationship, "reason": "RESOLVED"}}, family.token)
        ended_at.append(time.monotonic())

    async def read() -> tuple[float, float, bool]:
        started = time.monotonic()
        body = await gql(READ_EVIDENCE, {"f": family.family_id}, adv.token)
        vault = (body.get("data") or {}).get("vault")
        if body.get("errors"):
            # Failing part-way (access ended between fields) is a failure, never partial data.
            assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
            assert not vault
        return started, time.monotonic(), bool(vault and vault["evidence"]["edges"])

    results = await asyncio.gather(*(read() for _ in range(10)), end(), *(read() for _ in range(10)))
    reads = [r for r in results if r is not None]
    assert ended_at
    for started, _, saw_data in reads:
        if started > ended_at[0]:
            assert not saw_data  # began after the end committed: must fail
    # And every read afterwards fails.
    assert (await gql.data(READ_EVIDENCE, {"f": family.family_id}, adv.token))["vault"] is None
    assert await Message.all().count() >= 1


async def test_a_read_in_progress_finishes_before_the_end_commits(
    gql: GraphQLClient, live_server: Live
) -> None:
    """Given a read holding its transaction, the end waits for it; the next read after the end fails."""
    family, child, adv, _, relationship = await _supported(gql)
    await _evidence(gql, family, child)
    await _grant(gql, family, relationship, child)
    services = live_server.app.state.services
    reader = await accounts.authenticate(services, adv.token)
    ender = await accounts.authenticate(services, family.token)
    family_id = decode_id(relay.GlobalID.from_id(family.family_id or ""), "Family", "familyId")
    relationship_id = decode_id(relay.GlobalID.from_id(relationship), "SupportRelationship", "x")

    go = asyncio.Event()

    async def end_when_told() -> SupportRelationship:
        await go.wait()
        return await relationships.end(services, ender, relationship_id, CloseReason.RESOLVED, "")

    # Started outside the read: a task started inside would inherit the read's transaction.
    ending = asyncio.create_task(end_when_told())
    async with vault.reading(services, reader, family_id) as acc:
        go.set()
        done, _ = await asyncio.wait({ending}, timeout=0.5)
        assert not done, "the end committed while a read of the Vault was still in progress"
        shared = sorted(acc.child_ids(VaultScope.EVIDENCE) or [])
        evidence = await Evidence.filter(family_id=family_id, child_id__in=shared)
        assert [e.title for e in evidence] == ["EP report"]
    closed = await asyncio.wait_for(ending, 10)
    assert closed.status.value == "CLOSED"
    with pytest.raises(NotFound):
        await vault.read_evidence(services, reader, family_id, None, Window(10))


ADD_TIMELINE = """
mutation($input: AddTimelineEntryInput!) {
  addTimelineEntry(input: $input) { timelineEntry { id } userErrors { code field } }
}
"""
UPDATE_CASE = """
mutation($input: UpdateEhcpCaseInput!) {
  updateEhcpCase(input: $input) { ehcpCase { stage localAuthority requestDate } userErrors { code field } }
}
"""


def _codes(payload: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def test_bad_timeline_entries_and_case_updates_change_nothing(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    child = await add_child(gql, family)
    other_child = await add_child(gql, await sign_up(gql))
    far = (datetime.now(UTC) + timedelta(days=400)).date().isoformat()
    good = {"childId": child, "date": "2025-01-01", "title": "Meeting"}
    timeline_cases: list[tuple[dict[str, Any], tuple[str, str]]] = [
        ({"title": "  "}, ("REQUIRED", "title")),
        ({"title": "x" * 201}, ("TOO_LONG", "title")),
        ({"note": "x" * 5001}, ("TOO_LONG", "note")),
        ({"date": far}, ("DATE_IN_FUTURE", "date")),
        ({"childId": other_child}, ("NOT_FOUND", "childId")),
        ({"childId": family.family_id}, ("NOT_FOUND", "childId")),
    ]
    for overrides, expected in timeline_cases:
        result = await gql.data(ADD_TIMELINE, {"input": {**good, **overrides}}, family.token)
        assert _codes(result["addTimelineEntry"]) == [expected], overrides
    wrong_type = await gql(ADD_TIMELINE, {"input": {**good, "date": "yesterday"}}, family.token)
    assert wrong_type["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await TimelineEntry.all().count() == 0

    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    for overrides, expected in [
        ({"localAuthority": "x" * 101}, ("TOO_LONG", "localAuthority")),
        ({"requestDate": tomorrow}, ("DATE_IN_FUTURE", "requestDate")),
        ({"childId": other_child}, ("NOT_FOUND", "childId")),
    ]:
        payload = {"childId": child, "stage": "TRIBUNAL", **overrides}
        result = await gql.data(UPDATE_CASE, {"input": payload}, family.token)
        assert _codes(result["updateEhcpCase"]) == [expected], overrides
    assert await EhcpCase.all().count() == 0
    child_row = await Child.get(id=decode_id(relay.GlobalID.from_id(child), "Child", "childId"))
    assert child_row.ehcp_stage.value == "ASSESSING"


async def test_bad_ends_and_reviews_change_nothing(gql: GraphQLClient) -> None:
    family, _, adv, _, relationship = await _supported(gql)
    too_long = await gql.data(
        END,
        {"input": {"relationshipId": relationship, "reason": "RESOLVED", "note": "x" * 1001}},
        family.token,
    )
    assert _codes(too_long["endSupportRelationship"]) == [("TOO_LONG", "note")]
    unknown = await gql(END, {"input": {"relationshipId": relationship, "reason": "BORED"}}, family.token)
    assert unknown["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert (await SupportRelationship.get()).status.value == "ACTIVE"
    await gql.data(END, {"input": {"relationshipId": relationship, "reason": "RESOLVED"}}, family.token)
    again = await gql.data(END, {"input": {"relationshipId": relationship, "reason": "OTHER"}}, adv.token)
    assert _codes(again["endSupportRelationship"]) == [("INVALID_TRANSITION", "relationshipId")]
    closed = await SupportRelationship.get()
    assert (closed.close_reason.value if closed.close_reason else None) == "RESOLVED"
    long_review = await gql.data(
        REVIEW, {"input": {"relationshipId": relationship, "rating": 3, "text": "x" * 2001}}, family.token
    )
    assert _codes(long_review["leaveReview"]) == [("TOO_LONG", "text")]
    assert await Review.all().count() == 0


async def test_racing_ends_and_reviews_each_have_one_winner(gql: GraphQLClient) -> None:
    family, _, adv, _, relationship = await _supported(gql)
    ends = await asyncio.gather(
        *(
            gql.data(
                END,
                {"input": {"relationshipId": relationship, "reason": "RESOLVED"}},
                family.token if i % 2 else adv.token,
            )
            for i in range(8)
        )
    )
    outcomes = sorted(
        _codes(e["endSupportRelationship"])[0][0] if _codes(e["endSupportRelationship"]) else "OK"
        for e in ends
    )
    assert outcomes == ["INVALID_TRANSITION"] * 7 + ["OK"]
    profile = await gql.data(
        "query($a: ID!) { advocate(id: $a) { activeCaseCount } }", {"a": adv.advocate_id}
    )
    assert profile["advocate"]["activeCaseCount"] == 0
    reviews = await asyncio.gather(
        *(
            gql.data(REVIEW, {"input": {"relationshipId": relationship, "rating": 4}}, family.token)
            for _ in range(6)
        )
    )
    codes = sorted(_codes(r["leaveReview"])[0][0] if _codes(r["leaveReview"]) else "OK" for r in reviews)
    assert codes == ["ALREADY_REVIEWED"] * 5 + ["OK"]
    assert await Review.all().count() == 1


async def test_a_grant_racing_the_end_is_refused_or_revoked(gql: GraphQLClient) -> None:
    family, child, adv, _, relationship = await _supported(gql)
    results = await asyncio.gather(
        *(_grant(gql, family, relationship, child) for _ in range(5)),
        gql.data(END, {"input": {"relationshipId": relationship, "reason": "RESOLVED"}}, family.token),
        *(_grant(gql, family, relationship, child) for _ in range(5)),
    )
    for result in results[:5] + results[6:]:
        assert _codes(result) in ([], [("RELATIONSHIP_CLOSED", "relationshipId")])
    # Whatever was granted before the end is revoked with it: nothing is left live.
    assert await VaultGrant.filter(revoked_at__isnull=True).count() == 0
    assert (await gql.data(READ_EVIDENCE, {"f": family.family_id}, adv.token))["vault"] is None
