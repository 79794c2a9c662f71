"""Who may do what with accounts, children, advocate profiles and notifications, as a matrix.

Callers: anonymous, a family, another family, an advocate, another advocate, an admin, and API tokens
of the family with and without the scope an operation needs (and an advocate's token). Each cell is
the outcome: OK, NULL/EMPTY (nothing to see), a user error's code, or a top-level error's code.
"""

from __future__ import annotations

from typing import Any

from models.accounts import ApiToken
from tests.client import GraphQLClient
from tests.factories import PASSWORD, add_child, admin, advocate, api_token, sign_up

CALLERS = [
    "anonymous",
    "family",
    "other_family",
    "advocate",
    "other_advocate",
    "admin",
    "family_token_scoped",
    "family_token_unscoped",
    "advocate_token",
]
ALL_SCOPES = ["REQUESTS_READ", "REQUESTS_WRITE", "VAULT_READ", "VAULT_WRITE", "EVENTS_SUBSCRIBE"]


def _outcome(body: dict[str, Any], field: str) -> str:
    if body.get("errors"):
        return str(body["errors"][0]["extensions"]["code"])
    value = body["data"][field]
    if value is None:
        return "NULL"
    if isinstance(value, dict) and "userErrors" in value:
        return str(value["userErrors"][0]["code"]) if value["userErrors"] else "OK"
    if isinstance(value, dict) and "edges" in value:
        return "OK" if value["edges"] else "EMPTY"
    if isinstance(value, list):
        return "OK" if value else "EMPTY"
    return "OK"


async def _callers(gql: GraphQLClient, scope: str) -> tuple[dict[str, str | None], dict[str, Any]]:
    family = await sign_up(gql)
    child = await add_child(gql, family)
    adv = await advocate(gql, verified=False)
    boss = await admin(gql)
    # A sign-in gives the family and the admin a notification (NEW_SIGN_IN) of their own.
    for person in (family, boss):
        await gql.data(
            "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }",
            {"e": person.email, "p": PASSWORD},
        )
    await gql.data("mutation { requestVerification { userErrors { code } } }", token=adv.token)
    tokens: dict[str, str | None] = {
        "anonymous": None,
        "family": family.token,
        "other_family": (await sign_up(gql)).token,
        "advocate": adv.token,
        "other_advocate": (await advocate(gql)).token,
        "admin": boss.token,
        "family_token_scoped": await api_token(gql, family, [scope]),
        "family_token_unscoped": await api_token(gql, family, [s for s in ALL_SCOPES if s != scope]),
        "advocate_token": await api_token(gql, adv, ALL_SCOPES + ["NOTIFICATIONS_READ"]),
    }
    await api_token(gql, family, ["REQUESTS_READ"])  # the one revokeApiToken aims at: the newest
    token_id = (await gql.data("{ apiTokens { id } }", token=family.token))["apiTokens"][0]["id"]
    return tokens, {"c": child, "a": adv.advocate_id, "t": token_id}


async def _matrix(gql: GraphQLClient, query: str, field: str, scope: str) -> dict[str, str]:
    tokens, variables = await _callers(gql, scope)
    used = {k: v for k, v in variables.items() if f"${k}" in query}
    return {caller: _outcome(await gql(query, used, tokens[caller]), field) for caller in CALLERS}


SESSION_ONLY = {
    "anonymous": "UNAUTHENTICATED",
    "family_token_scoped": "FORBIDDEN",
    "family_token_unscoped": "FORBIDDEN",
    "advocate_token": "FORBIDDEN",
}


async def test_api_token_management_is_for_signed_in_people_only(gql: GraphQLClient) -> None:
    listed = await _matrix(gql, "{ apiTokens { id } }", "apiTokens", "VAULT_READ")
    assert listed == {
        **SESSION_ONLY,
        "family": "OK",
        "other_family": "EMPTY",
        "advocate": "OK",
        "other_advocate": "EMPTY",
        "admin": "EMPTY",
    }
    made = await _matrix(
        gql,
        'mutation { createApiToken(input: {name: "CRM", scopes: [REQUESTS_READ]}) { userErrors { code } } }',
        "createApiToken",
        "VAULT_READ",
    )
    assert made == {
        **SESSION_ONLY,
        **dict.fromkeys(["family", "other_family", "advocate", "admin"], "OK"),
        "other_advocate": "OK",
    }


async def test_revoking_an_api_token_is_for_its_owner_only(gql: GraphQLClient) -> None:
    before = await ApiToken.filter(revoked_at__isnull=True).count()
    seen = await _matrix(
        gql,
        "mutation($t: ID!) { revokeApiToken(input: {apiTokenId: $t}) { userErrors { code } } }",
        "revokeApiToken",
        "VAULT_READ",
    )
    assert seen == {
        **SESSION_ONLY,
        "other_family": "NOT_FOUND",
        "advocate": "NOT_FOUND",
        "other_advocate": "NOT_FOUND",
        "admin": "NOT_FOUND",
        "family": "OK",
    }
    assert await ApiToken.filter(revoked_at__isnull=True).count() == before + 4 - 1


async def test_log_out_is_for_sessions(gql: GraphQLClient) -> None:
    tokens, _ = await _callers(gql, "VAULT_READ")
    query = "mutation { logOut { userErrors { code } } }"
    seen = {caller: _outcome(await gql(query, None, tokens[caller]), "logOut") for caller in CALLERS}
    assert seen == {
        **SESSION_ONLY,
        **dict.fromkeys(["family", "other_family", "advocate"], "OK"),
        "other_advocate": "OK",
        "admin": "OK",
    }
    for caller in ("family", "advocate", "admin"):
        assert (await gql("{ viewer { id } }", None, tokens[caller]))["data"]["viewer"] is None


async def test_children_are_changed_by_their_family_only(gql: GraphQLClient) -> None:
    expected_add = {
        "anonymous": "UNAUTHENTICATED",
        "advocate": "FORBIDDEN",
        "other_advocate": "FORBIDDEN",
        "admin": "FORBIDDEN",
        "advocate_token": "FORBIDDEN",
        "family_token_unscoped": "FORBIDDEN",
        "family": "OK",
        "other_family": "OK",  # a child of its own
        "family_token_scoped": "OK",
    }
    added = await _matrix(
        gql,
        'mutation { addChild(input: {displayName: "Kit", dateOfBirth: "2017-01-01", ehcpStage: ASSESSING,'
        ' localAuthority: "York"}) { userErrors { code } } }',
        "addChild",
        "VAULT_WRITE",
    )
    assert added == expected_add
    updated = await _matrix(
        gql,
        'mutation($c: ID!) { updateChild(input: {childId: $c, displayName: "Kit"}) { userErrors { code } } }',
        "updateChild",
        "VAULT_WRITE",
    )
    assert updated == {**expected_add, "other_family": "NOT_FOUND"}


async def test_advocate_profiles_are_changed_by_their_advocate_and_verified_by_admins(
    gql: GraphQLClient,
) -> None:
    advocates_only = {
        **SESSION_ONLY,
        "family": "FORBIDDEN",
        "other_family": "FORBIDDEN",
        "admin": "FORBIDDEN",
        "advocate": "OK",
        "other_advocate": "OK",  # their own profile
    }
    profile = await _matrix(
        gql,
        'mutation { updateAdvocateProfile(input: {bio: "Tribunal specialist."}) { userErrors { code } } }',
        "updateAdvocateProfile",
        "VAULT_READ",
    )
    assert profile == advocates_only
    admins_only = {
        **SESSION_ONLY,
        **dict.fromkeys(["family", "other_family", "advocate", "other_advocate"], "FORBIDDEN"),
        "admin": "OK",
    }
    queue = await _matrix(
        gql, "{ verificationQueue { edges { node { id } } } }", "verificationQueue", "VAULT_READ"
    )
    assert queue == admins_only
    verified = await _matrix(
        gql,
        "mutation($a: ID!) { verifyAdvocate(input: {advocateId: $a, decision: VERIFIED})"
        " { userErrors { code } } }",
        "verifyAdvocate",
        "VAULT_READ",
    )
    assert verified == admins_only


async def test_the_directory_is_public_and_unverified_profiles_are_not(gql: GraphQLClient) -> None:
    directory = await _matrix(gql, "{ advocates { edges { node { id } } } }", "advocates", "VAULT_READ")
    assert directory == dict.fromkeys(CALLERS, "OK")
    pending = await _matrix(gql, "query($a: ID!) { advocate(id: $a) { id } }", "advocate", "VAULT_READ")
    assert pending == {
        **dict.fromkeys(CALLERS, "NULL"),
        "advocate": "OK",
        "advocate_token": "OK",
        "admin": "OK",
    }


async def test_notifications_are_each_persons_own(gql: GraphQLClient) -> None:
    seen = await _matrix(
        gql, "{ notifications { edges { node { id } } } }", "notifications", "NOTIFICATIONS_READ"
    )
    # Each sees only their own: the family its sign-in, the admin its own, the verified advocate its
    # verification; the rest have none. Tokens need the scope.
    assert seen == {
        "anonymous": "UNAUTHENTICATED",
        "family": "OK",
        "family_token_scoped": "OK",
        "family_token_unscoped": "FORBIDDEN",
        "other_family": "EMPTY",
        "advocate": "EMPTY",
        "advocate_token": "EMPTY",
        "other_advocate": "OK",
        "admin": "OK",
    }
    marked = await _matrix(
        gql,
        "mutation { markNotificationsRead(input: {}) { userErrors { code } } }",
        "markNotificationsRead",
        "NOTIFICATIONS_READ",
    )
    assert marked == {
        **dict.fromkeys(CALLERS, "OK"),
        "anonymous": "UNAUTHENTICATED",
        "family_token_unscoped": "FORBIDDEN",
    }


USER_TOKENS = (
    "query($u: ID!) { node(id: $u) { ... on User { apiTokens { totalCount edges { node { id } } } } } }"
)


async def test_a_users_api_token_connection_is_theirs_alone_signed_in(gql: GraphQLClient) -> None:
    """`User.apiTokens`: the user, signed in, sees every token (revoked ones too); the user's own
    API token, another person and an admin see an empty page, whatever path they take."""
    family = await sign_up(gql)
    token = await api_token(gql, family, ["REQUESTS_READ", "VAULT_READ"])
    await api_token(gql, family, ["REQUESTS_READ"])
    user_id = (await gql.data("{ viewer { id } }", token=family.token))["viewer"]["id"]
    own = (await gql.data(USER_TOKENS, {"u": user_id}, family.token))["node"]["apiTokens"]
    assert own["totalCount"] == 2
    assert len(own["edges"]) == 2
    through_viewer = await gql.data(
        "{ viewer { apiTokens(last: 1) { totalCount edges { node { id } } } } }", token=family.token
    )
    assert through_viewer["viewer"]["apiTokens"]["edges"] == own["edges"][-1:]
    by_token = await gql.data("{ viewer { apiTokens { totalCount edges { node { id } } } } }", token=token)
    assert by_token["viewer"]["apiTokens"] == {"totalCount": 0, "edges": []}
    for stranger in ((await sign_up(gql)).token, (await admin(gql)).token):
        node = (await gql.data(USER_TOKENS, {"u": user_id}, stranger))["node"]
        assert node is None or node["apiTokens"] == {"totalCount": 0, "edges": []}
