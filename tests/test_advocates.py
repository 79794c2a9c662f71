"""Advocate profiles, verification by admins, and the directory."""

from __future__ import annotations

from typing import Any

import pytest

from models.advocates import Advocate, Verification
from models.notifications import Notification, NotificationKind
from tests.client import GraphQLClient
from tests.factories import REQUEST_VERIFICATION, UPDATE_PROFILE, VERIFY, admin, advocate, sign_up

DIRECTORY = """
query($filter: AdvocateFilter, $first: Int, $after: String) {
  advocates(filter: $filter, first: $first, after: $after) {
    edges { cursor node { id displayName advocateType areas specialisms availability } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def _names(gql: GraphQLClient, flt: dict[str, object] | None = None) -> list[str]:
    data = await gql.data(DIRECTORY, {"filter": flt, "first": 100})
    return [e["node"]["displayName"] for e in data["advocates"]["edges"]]


async def _named(gql: GraphQLClient, name: str, **profile: Any) -> str:
    a = await advocate(gql, displayName=name, **profile)
    return a.advocate_id


async def test_directory_lists_verified_advocates_only(gql: GraphQLClient) -> None:
    await _named(gql, "Verified Vee")
    await advocate(gql, verified=False, displayName="Unverified Una")
    pending = await advocate(gql, verified=False, displayName="Pending Pat")
    await gql.data(REQUEST_VERIFICATION, token=pending.token)
    assert await _names(gql) == ["Verified Vee"]


async def test_directory_filters(gql: GraphQLClient) -> None:
    await _named(gql, "Charity Cat", advocateType="CHARITY", specialisms=["EXCLUSIONS"], areas=["Leeds"])
    await _named(gql, "Solicitor Sol", advocateType="SOLICITOR", specialisms=["TRIBUNAL"], areas=["York"])
    await _named(gql, "Remote Rae", specialisms=["TRIBUNAL"], areas=["Remote"], bio="Tribunal appeals")
    await _named(gql, "Full Finn", areas=["Leeds"], availability="NOT_ACCEPTING")
    assert await _names(gql, {"advocateType": "CHARITY"}) == ["Charity Cat"]
    assert await _names(gql, {"specialism": "TRIBUNAL"}) == ["Solicitor Sol", "Remote Rae", "Full Finn"]
    assert await _names(gql, {"area": "leeds"}) == ["Charity Cat", "Remote Rae", "Full Finn"]
    assert await _names(gql, {"area": "Leeds", "acceptingOnly": True}) == ["Charity Cat", "Remote Rae"]
    assert await _names(gql, {"text": "appeals"}) == ["Remote Rae"]
    assert await _names(gql, {"text": "sol"}) == ["Solicitor Sol"]


async def test_directory_excludes_advocates_at_capacity_when_accepting_only(gql: GraphQLClient) -> None:
    await _named(gql, "Zero Zed", capacity=0)
    await _named(gql, "Open Olu", capacity=3)
    assert await _names(gql, {"acceptingOnly": True}) == ["Open Olu"]
    assert await _names(gql) == ["Zero Zed", "Open Olu"]


async def test_directory_cursors_page_without_gaps(gql: GraphQLClient) -> None:
    boss = await admin(gql)
    for i in range(5):
        await advocate(gql, admin_account=boss, displayName=f"Advocate {i}")
    seen: list[str] = []
    after = None
    while True:
        page = (await gql.data(DIRECTORY, {"first": 2, "after": after}))["advocates"]
        seen += [e["node"]["displayName"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [f"Advocate {i}" for i in range(5)]


@pytest.mark.parametrize(("first", "after"), [(101, None), (-1, None), (10, "bm90LWEtY3Vyc29y"), (10, "%%%")])
async def test_directory_bad_paging_is_a_client_error(
    gql: GraphQLClient, first: int, after: str | None
) -> None:
    body = await gql(DIRECTORY, {"first": first, "after": after})
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == ("first" if after is None else "after")
    assert error["path"] == ["advocates"]


async def test_verification_needs_a_complete_profile(gql: GraphQLClient) -> None:
    account = await sign_up(gql, "ADVOCATE")
    result = (await gql.data(REQUEST_VERIFICATION, token=account.token))["requestVerification"]
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [("PROFILE_INCOMPLETE", "bio")]
    assert (await Advocate.get()).verification is Verification.UNVERIFIED


async def test_admin_verifies_and_the_advocate_is_told(gql: GraphQLClient) -> None:
    pending = await advocate(gql, verified=False)
    await gql.data(REQUEST_VERIFICATION, token=pending.token)
    again = (await gql.data(REQUEST_VERIFICATION, token=pending.token))["requestVerification"]
    assert [e["code"] for e in again["userErrors"]] == ["INVALID_TRANSITION"]
    boss = await admin(gql)
    queue = await gql.data("{ verificationQueue { edges { node { id } } } }", token=boss.token)
    assert [e["node"]["id"] for e in queue["verificationQueue"]["edges"]] == [pending.advocate_id]
    decided = await gql.data(
        VERIFY,
        {"input": {"advocateId": pending.advocate_id, "decision": "VERIFIED", "note": "DBS checked"}},
        boss.token,
    )
    assert decided["verifyAdvocate"]["advocate"]["verification"] == "VERIFIED"
    twice = await gql.data(
        VERIFY, {"input": {"advocateId": pending.advocate_id, "decision": "REJECTED"}}, boss.token
    )
    assert [e["code"] for e in twice["verifyAdvocate"]["userErrors"]] == ["INVALID_TRANSITION"]
    assert (await Advocate.get()).verification is Verification.VERIFIED
    kinds = [n.kind for n in await Notification.filter(kind=NotificationKind.VERIFICATION_DECIDED)]
    assert kinds == [NotificationKind.VERIFICATION_DECIDED]
    own = await gql.data("{ viewer { advocate { verification verificationNote } } }", token=pending.token)
    assert own["viewer"]["advocate"] == {"verification": "VERIFIED", "verificationNote": "DBS checked"}


async def test_verify_decision_must_be_verified_or_rejected(gql: GraphQLClient) -> None:
    pending = await advocate(gql, verified=False)
    await gql.data(REQUEST_VERIFICATION, token=pending.token)
    boss = await admin(gql)
    result = await gql.data(
        VERIFY, {"input": {"advocateId": pending.advocate_id, "decision": "PENDING"}}, boss.token
    )
    assert [(e["code"], e["field"]) for e in result["verifyAdvocate"]["userErrors"]] == [
        ("INVALID", "decision")
    ]
    assert (await Advocate.get()).verification is Verification.PENDING


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"capacity": -1}, "OUT_OF_RANGE", "capacity"),
        ({"capacity": 201}, "OUT_OF_RANGE", "capacity"),
        ({"bio": "x" * 5001}, "TOO_LONG", "bio"),
        ({"displayName": " "}, "REQUIRED", "displayName"),
        ({"areas": ["Leeds|York"]}, "INVALID", "areas"),
        ({"areas": [""]}, "REQUIRED", "areas"),
        ({"areas": [f"Area {i}" for i in range(51)]}, "TOO_LONG", "areas"),
        ({"capacityExpectedOn": "2000-01-01"}, "DATE_IN_PAST", "capacityExpectedOn"),
    ],
)
async def test_profile_bad_input_changes_nothing(
    gql: GraphQLClient, fields: dict[str, object], code: str, field: str
) -> None:
    account = await sign_up(gql, "ADVOCATE")
    before = await Advocate.get()
    result = (await gql.data(UPDATE_PROFILE, {"input": {"bio": "new", **fields}}, account.token))[
        "updateAdvocateProfile"
    ]
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [(code, field)]
    after = await Advocate.get()
    assert (after.bio, after.capacity, after.areas) == (before.bio, before.capacity, before.areas)


async def test_capacity_expected_on_can_be_set_and_cleared(gql: GraphQLClient) -> None:
    account = await sign_up(gql, "ADVOCATE")
    query = """
    mutation($d: Date) {
      updateAdvocateProfile(input: {capacityExpectedOn: $d}) { advocate { capacityExpectedOn } }
    }
    """
    set_ = await gql.data(query, {"d": "2099-01-31"}, account.token)
    assert set_["updateAdvocateProfile"]["advocate"]["capacityExpectedOn"] == "2099-01-31"
    cleared = await gql.data(query, {"d": None}, account.token)
    assert cleared["updateAdvocateProfile"]["advocate"]["capacityExpectedOn"] is None


async def test_unverified_profile_is_visible_only_to_its_owner_and_admins(gql: GraphQLClient) -> None:
    hidden = await advocate(gql, verified=False)
    query = "query($id: ID!) { advocate(id: $id) { id } node(id: $id) { id } }"
    family = await sign_up(gql)
    boss = await admin(gql)
    for token, visible in ((None, False), (family.token, False), (hidden.token, True), (boss.token, True)):
        data = await gql.data(query, {"id": hidden.advocate_id}, token)
        assert (data["advocate"] is not None) is visible
        assert (data["node"] is not None) is visible
