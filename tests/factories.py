"""Small factories for the worlds tests need.

Accounts are written straight to the database with one shared argon2 hash of `PASSWORD` (so
`logIn` still works): hashing a password per sign-up made account creation most of the suite's
time. Tests of sign-up itself use `sign_up_via_api`. Everything else goes through the public API,
as a client would.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from dataclasses import dataclass
from typing import Any

from strawberry.relay import GlobalID
from tortoise.transactions import in_transaction

from models.accounts import Role, Session, User
from models.families import Family
from resolvers import accounts, advocates, credentials, events
from resolvers.clock import Clock
from resolvers.services import Policy
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


_password_hash: asyncio.Future[str] | None = None


async def password_hash() -> str:
    """One argon2 hash of `PASSWORD` for every account a factory makes."""
    global _password_hash
    if _password_hash is None:
        _password_hash = asyncio.ensure_future(credentials.hash_password(PASSWORD))
    return await _password_hash


def _clock_and_policy(gql: GraphQLClient) -> tuple[Clock, Policy]:
    """The served app's clock (tests move it) and policy; a real clock for a server in another process."""
    services = gql.app.state.services if gql.app is not None else None
    return (services.clock, services.policy) if services is not None else (Clock(), Policy())


async def account_in_database(
    gql: GraphQLClient, role: Role, email: str | None = None, display_name: str | None = None
) -> tuple[Account, int]:
    """A signed-in account as `signUp` and `verifyEmail` (or `create-admin` and `logIn`) leave it;
    returns it and the database id of its family or advocate profile (0 for an admin)."""
    n = next(_counter)
    email = email or f"{role.value.lower()}{n}@example.test"
    name = display_name or f"Person {n}"
    clock, policy = _clock_and_policy(gql)
    now = clock.now()
    digest = await password_hash()
    token = accounts.SESSION_PREFIX + secrets.token_urlsafe(32)
    async with in_transaction():
        user = await User.create(
            email=email,
            email_key=email.lower(),
            password_hash=digest,
            display_name=name,
            role=role,
            created_at=now,
            email_verified_at=now,
        )
        profile_id = 0
        if role is Role.FAMILY:
            profile_id = (await Family.create(user=user, created_at=now)).id
        elif role is Role.ADVOCATE:
            profile_id = (await advocates.create_profile(user.id, name, now)).id
        await Session.create(
            user=user,
            token_hash=credentials.hash_token(token),
            created_at=now,
            expires_at=now + policy.session_ttl,
        )
    family_id = str(GlobalID("Family", str(profile_id))) if role is Role.FAMILY else None
    return Account(token, str(GlobalID("User", str(user.id))), email, family_id), profile_id


async def sign_up(gql: GraphQLClient, role: str = "FAMILY", **overrides: Any) -> Account:
    """A signed-in family (or advocate) account, made in the database."""
    account, _ = await account_in_database(
        gql, Role(role), overrides.pop("email", None), overrides.pop("displayName", None)
    )
    assert not overrides, f"sign_up does not set {sorted(overrides)}"
    return account


async def sign_up_via_api(gql: GraphQLClient, role: str = "FAMILY", **overrides: Any) -> Account:
    """A new account through `signUp`, for tests of signing up itself."""
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
    """A signed-in admin, made in the database (the command line's `create-admin` is tested on its own)."""
    account, _ = await account_in_database(gql, Role.ADMIN)
    return account


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


def db_id(global_id: str) -> int:
    """The database id inside a global id."""
    return int(GlobalID.from_id(global_id).node_id)


async def cursor_now(channel: str) -> str:
    """A cursor at the channel's newest event: a subscription given it as `after` receives every
    later event, however long the server takes to start listening (no sleeping to be sure)."""
    return events.encode_cursor(channel, await events.head(channel))


async def user_cursor(account: Account) -> str:
    """`cursor_now` for the feeds on a person's own channel (requests, notifications, accessRevoked)."""
    return await cursor_now(events.user_channel(db_id(account.user_id)))


async def sweep(gql: GraphQLClient) -> None:
    """Run the served app's clock-driven changes once, now (the app also sweeps by itself every
    0.1 s in tests): after moving the test clock, a test sweeps and then asserts, instead of
    polling until the background sweep has come round."""
    import server

    assert gql.app is not None, "sweep() needs the app served in this process"
    await server.sweep_once(gql.app.state.services)


async def advocate_cursor(account: AdvocateAccount) -> str:
    """`cursor_now` for the advocate's dashboard feed (`ticketUpdated`)."""
    return await cursor_now(events.advocate_channel(db_id(account.advocate_id)))


async def thread_cursor(global_id: str) -> str:
    """`cursor_now` for `messageAdded` of a request's or relationship's thread (by its global id)."""
    from models.support import SupportRelationship, SupportRequest

    kind = GlobalID.from_id(global_id).type_name
    model = SupportRequest if kind == "SupportRequest" else SupportRelationship
    row = await model.get(id=db_id(global_id))
    return await cursor_now(events.thread_channel(row.thread_id))


async def erase_now(services: Any, user_id: int) -> Any:
    """An account erased at once: its deletion due now (as `deleteAccount` and the grace period
    would leave it), then the erasure run; returns its record."""
    from models.accounts import User
    from resolvers import erasure

    # Under the sweep's lock, so the app's own sweep (every 0.1 s in tests) does not take the
    # erasure's lease first and leave this call to return before it has finished.
    async with services.sweeping:
        await User.filter(id=user_id).update(erasure_due_at=services.clock.now())
        record = await erasure.erase(services, user_id)
    assert record is not None
    return record
