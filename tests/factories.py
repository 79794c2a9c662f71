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


UPDATE_PROFILE = """
mutation($input: UpdateAdvocateProfileInput!) {
  updateAdvocateProfile(input: $input) {
    advocate { id displayName verification availability capacity activeCaseCount areas specialisms }
    userErrors { code message field }
  }
}
"""
REQUEST_VERIFICATION = (
    "mutation { requestVerification { advocate { id verification } userErrors { code field } } }"
)
VERIFY = """
mutation($input: VerifyAdvocateInput!) {
  verifyAdvocate(input: $input) { advocate { id verification } userErrors { code message field } }
}
"""
SEND_REQUEST = """
mutation($input: SendSupportRequestInput!) {
  sendSupportRequest(input: $input) {
    supportRequest { id status childAgeYears ehcpStage childDisplayName supportTypes message }
    userErrors { code message field }
  }
}
"""


async def admin(gql: GraphQLClient) -> Account:
    """An admin, made as the command line makes one, then signed in over the API."""
    from resolvers import accounts
    from resolvers.broadcast import Hub
    from resolvers.clock import Clock
    from resolvers.services import Services

    n = next(_counter)
    email = f"admin{n}@example.test"
    await accounts.create_admin(Services(Clock(), Hub("memory://")), email, PASSWORD, f"Admin {n}")
    data = await gql.data(
        "mutation($e: String!, $p: String!) {"
        " logIn(input: {email: $e, password: $p}) { token viewer { id } } }",
        {"e": email, "p": PASSWORD},
    )
    return Account(data["logIn"]["token"], data["logIn"]["viewer"]["id"], email)


@dataclass
class AdvocateAccount(Account):
    advocate_id: str = ""


async def advocate(
    gql: GraphQLClient, *, verified: bool = True, admin_account: Account | None = None, **profile: Any
) -> AdvocateAccount:
    """An advocate with a complete profile, verified by an admin unless told otherwise."""
    account = await sign_up(gql, "ADVOCATE")
    fields = {
        "bio": "Independent SEND advocate: EHC needs assessments and tribunals.",
        "specialisms": ["EHC_NEEDS_ASSESSMENT", "TRIBUNAL"],
        "areas": ["Leeds", "Bradford"],
        "capacity": 5,
        **profile,
    }
    data = await gql.data(UPDATE_PROFILE, {"input": fields}, account.token)
    assert data["updateAdvocateProfile"]["userErrors"] == [], data
    advocate_id = data["updateAdvocateProfile"]["advocate"]["id"]
    if verified:
        assert (await gql.data(REQUEST_VERIFICATION, token=account.token))["requestVerification"][
            "userErrors"
        ] == []
        boss = admin_account or await admin(gql)
        decided = await gql.data(
            VERIFY, {"input": {"advocateId": advocate_id, "decision": "VERIFIED"}}, boss.token
        )
        assert decided["verifyAdvocate"]["userErrors"] == [], decided
    return AdvocateAccount(account.token, account.user_id, account.email, None, advocate_id)


async def send_request(
    gql: GraphQLClient, family: Account, advocate_id: str, child_id: str, **overrides: Any
) -> dict[str, Any]:
    payload = {
        "advocateId": advocate_id,
        "childId": child_id,
        "message": "We need help with an EHC needs assessment refusal.",
        "supportTypes": ["EHC_NEEDS_ASSESSMENT"],
        **overrides,
    }
    data = await gql.data(SEND_REQUEST, {"input": payload}, family.token)
    result: dict[str, Any] = data["sendSupportRequest"]
    return result


async def api_token(gql: GraphQLClient, account: Account, scopes: list[str]) -> str:
    data = await gql.data(
        'mutation($s: [ApiScope!]!) { createApiToken(input: {name: "Integration", scopes: $s}) { secret } }',
        {"s": scopes},
        account.token,
    )
    secret: str = data["createApiToken"]["secret"]
    return secret
