"""A family's children: adding and changing them, bad input, someone else's child."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from models.families import Child
from resolvers.families import MAX_CHILDREN
from tests.client import GraphQLClient
from tests.factories import ADD_CHILD, add_child, sign_up

UPDATE_CHILD = """
mutation($input: UpdateChildInput!) {
  updateChild(input: $input) {
    child { id displayName dateOfBirth ehcpStage localAuthority }
    userErrors { code message field }
  }
}
"""
CHILDREN = "{ viewer { family { children { id displayName ehcpStage } } } }"


async def test_family_adds_a_child_and_sees_it_in_its_vault(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    child_id = await add_child(gql, family, displayName=" Alex ", ehcpStage="DRAFT_PLAN")
    data = await gql.data(CHILDREN, token=family.token)
    assert data["viewer"]["family"]["children"] == [
        {"id": child_id, "displayName": "Alex", "ehcpStage": "DRAFT_PLAN"}
    ]


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"displayName": ""}, "REQUIRED", "displayName"),
        ({"displayName": "x" * 10_000}, "TOO_LONG", "displayName"),
        (
            {"dateOfBirth": (datetime.now(UTC).date() + timedelta(days=2)).isoformat()},
            "DATE_IN_FUTURE",
            "dateOfBirth",
        ),
        ({"dateOfBirth": "1950-01-01"}, "OUT_OF_RANGE", "dateOfBirth"),
        ({"localAuthority": "x" * 101}, "TOO_LONG", "localAuthority"),
    ],
)
async def test_add_child_bad_input_changes_nothing(
    gql: GraphQLClient, overrides: dict[str, str], code: str, field: str
) -> None:
    family = await sign_up(gql)
    payload = {"displayName": "Alex", "dateOfBirth": "2016-03-14", **overrides}
    result = (await gql.data(ADD_CHILD, {"input": payload}, family.token))["addChild"]
    assert result["child"] is None
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [(code, field)]
    assert await Child.all().count() == 0


async def test_add_child_with_an_impossible_date_is_refused(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    body = await gql(ADD_CHILD, {"input": {"displayName": "A", "dateOfBirth": "2016-02-30"}}, family.token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await Child.all().count() == 0


async def test_update_child_changes_only_what_is_given(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    child_id = await add_child(gql, family)
    result = (
        await gql.data(
            UPDATE_CHILD, {"input": {"childId": child_id, "ehcpStage": "FINAL_PLAN"}}, family.token
        )
    )["updateChild"]
    assert result["userErrors"] == []
    assert result["child"] == {
        "id": child_id,
        "displayName": "Alex",
        "dateOfBirth": "2016-03-14",
        "ehcpStage": "FINAL_PLAN",
        "localAuthority": "Leeds",
    }


async def test_update_child_of_another_family_is_not_found_and_changes_nothing(
    gql: GraphQLClient,
) -> None:
    owner = await sign_up(gql)
    other = await sign_up(gql)
    child_id = await add_child(gql, owner)
    result = (
        await gql.data(UPDATE_CHILD, {"input": {"childId": child_id, "displayName": "Mine"}}, other.token)
    )["updateChild"]
    assert result["child"] is None
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [("NOT_FOUND", "childId")]
    assert (await Child.get()).display_name == "Alex"


@pytest.mark.parametrize("bad_id", ["Q2hpbGQ6OTk5OQ==", "VXNlcjox"])  # Child:9999, User:1
async def test_update_child_unknown_or_wrong_kind_of_id_is_not_found(gql: GraphQLClient, bad_id: str) -> None:
    family = await sign_up(gql)
    await add_child(gql, family)
    result = (await gql.data(UPDATE_CHILD, {"input": {"childId": bad_id, "displayName": "X"}}, family.token))[
        "updateChild"
    ]
    assert [e["code"] for e in result["userErrors"]] == ["NOT_FOUND"]


async def test_update_child_bad_input_changes_nothing(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    child_id = await add_child(gql, family)
    future = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    result = (
        await gql.data(
            UPDATE_CHILD,
            {"input": {"childId": child_id, "displayName": "New", "dateOfBirth": future}},
            family.token,
        )
    )["updateChild"]
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [("DATE_IN_FUTURE", "dateOfBirth")]
    child = await Child.get()
    assert (child.display_name, child.date_of_birth) == ("Alex", date(2016, 3, 14))


async def test_a_family_holds_at_most_max_children_and_the_next_changes_nothing(gql: GraphQLClient) -> None:
    """`Family.children` and `Vault.children` are plain lists: the cap is what bounds them."""
    family = await sign_up(gql)
    for n in range(MAX_CHILDREN):
        await add_child(gql, family, displayName=f"Child {n + 1}")
    one_more = {"displayName": "One more", "dateOfBirth": "2016-03-14", "ehcpStage": "ASSESSING"}
    data = await gql.data(ADD_CHILD, {"input": one_more}, family.token)
    assert data["addChild"]["child"] is None
    assert [e["code"] for e in data["addChild"]["userErrors"]] == ["TOO_MANY_CHILDREN"]
    children = (await gql.data(CHILDREN, token=family.token))["viewer"]["family"]["children"]
    assert len(children) == MAX_CHILDREN
    assert await Child.filter(display_name="One more").count() == 0
