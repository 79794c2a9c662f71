"""Small factories that go through the public API, as a client would."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from tests.client import GraphQLClient

PASSWORD = "correct horse battery"
_counter = itertools.count(1)

SIGN_UP = """
mutation($input: SignUpInput!) {
  signUp(input: $input) {
    token
    viewer { id displayName role email family { id } }
    userErrors { code message field }
  }
}
"""

ADD_CHILD = """
mutation($input: AddChildInput!) {
  addChild(input: $input) {
    child { id displayName dateOfBirth ehcpStage localAuthority ageYears }
    userErrors { code message field }
  }
}
"""


@dataclass
class Account:
    token: str
    user_id: str
    email: str
    family_id: str | None = None


async def sign_up(gql: GraphQLClient, role: str = "FAMILY", **overrides: Any) -> Account:
    n = next(_counter)
    email = overrides.pop("email", f"person{n}@example.test")
    payload = {
        "email": email,
        "password": PASSWORD,
        "displayName": f"Person {n}",
        "role": role,
        **overrides,
    }
    data = await gql.data(SIGN_UP, {"input": payload})
    result = data["signUp"]
    assert result["userErrors"] == [], result
    viewer = result["viewer"]
    family = viewer["family"]
    return Account(result["token"], viewer["id"], email, family["id"] if family else None)


async def add_child(gql: GraphQLClient, account: Account, **overrides: Any) -> str:
    payload = {
        "displayName": "Alex",
        "dateOfBirth": "2016-03-14",
        "ehcpStage": "ASSESSING",
        "localAuthority": "Leeds",
        **overrides,
    }
    data = await gql.data(ADD_CHILD, {"input": payload}, account.token)
    assert data["addChild"]["userErrors"] == [], data
    child_id: str = data["addChild"]["child"]["id"]
    return child_id
