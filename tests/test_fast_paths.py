"""The direct resolvers (`schema/fast_paths.py`) answer exactly what strawberry's own path does.

The demo data holds every kind of row (requests in each state, relationships, grants, evidence,
tickets with checklists and notes, reviews); each demo account's richest pages are asked once with
the direct resolvers and once with every field back on strawberry's path, and the answers must be
the same, errors included.
"""

from __future__ import annotations

from typing import Any

from strawberry.schema.schema_converter import CustomGraphQLEnumType

from resolvers.demo import ADVOCATES, DEMO_PASSWORD, FAMILY, SECOND_FAMILY, seed
from schema import fast_paths
from schema import schema as api_schema
from tests.client import GraphQLClient
from tests.conftest import Live
from tests.test_read_path import DASHBOARD, DASHBOARD_WIDE, FAMILY_HOME

LOG_IN = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }"

# The shared Vaults an advocate reads, everything in them; the family's own the same way.
VAULTS = """
query($n: Int) {
  viewer { id displayName role family { id children { id displayName ageYears ehcpStage } } }
  supportRelationships(first: $n) { edges { node {
    id status openedAt closedAt closeReason closeNote
    family { id displayName } advocate { id displayName rating { average count } }
    request { id status childDisplayName suggestedAlternatives { kind name note advocate { id } } }
    child { id displayName }
    closedBy { displayName }
    review { id rating text createdAt hidden }
    vaultGrants { id scopes createdAt expiresAt revokedAt endReason }
    messages(first: 3, after: null) { pageInfo { hasNextPage endCursor } edges { cursor node {
      id body createdAt fromViewer author { id displayName }
    } } }
    vault: child { id }
  } } }
  notifications(first: $n) { edges { node { id kind title body subjectId createdAt readAt } } }
}
"""


# A family's Vault, everything in it: what its own family sees, and an advocate through a grant.
VAULT = """
query($f: ID!) {
  vault(familyId: $f) {
    children { id displayName ageYears ehcpStage }
    evidence(first: 20) { pageInfo { hasNextPage } edges { node {
      id title category date description createdAt childRef
    } } }
    timeline(first: 20) { edges { node { id date title note childRef } } }
    ehcpCases { childRef stage localAuthority requestDate decisionDue finalPlanDue }
  }
}
"""


async def _answers(gql: GraphQLClient, token: str, document: str) -> dict[str, Any]:
    body = await gql(document, {"n": 20}, token)
    body.pop("extensions", None)
    return body


async def test_direct_resolvers_answer_what_strawberry_answers(gql: GraphQLClient, live_server: Live) -> None:
    await seed(live_server.app.state.services)
    accounts = [FAMILY[0], SECOND_FAMILY[0], *(advocate[0] for advocate in ADVOCATES)]
    compared = vaults = 0
    for email in accounts:
        token = (await gql.data(LOG_IN, {"e": email, "p": DEMO_PASSWORD}))["logIn"]["token"]
        for document in (DASHBOARD, DASHBOARD_WIDE, FAMILY_HOME, VAULTS):
            direct = await _answers(gql, token, document)
            with fast_paths.strawberry_path(api_schema):
                reference = await _answers(gql, token, document)
            assert direct == reference, (email, document[:60])
            compared += bool(direct.get("data"))
        for family_id in await _families(gql, token):
            direct = await gql(VAULT, {"f": family_id}, token)
            with fast_paths.strawberry_path(api_schema):
                reference = await gql(VAULT, {"f": family_id}, token)
            direct.pop("extensions", None)
            reference.pop("extensions", None)
            assert direct == reference, (email, family_id)
            vaults += bool((direct.get("data") or {}).get("vault"))
    # The pages were answered, not refused alike.
    assert compared >= len(accounts) * 2
    assert vaults >= 3  # both families' own, and at least one shared with an advocate


async def _families(gql: GraphQLClient, token: str) -> set[str]:
    """The families whose Vault this account might read: its own, its relationships'."""
    data = (await gql(VAULTS, {"n": 20}, token))["data"]
    found = {edge["node"]["family"]["id"] for edge in data["supportRelationships"]["edges"]}
    if data["viewer"]["family"]:
        found.add(data["viewer"]["family"]["id"])
    return found


def test_the_direct_resolvers_cover_the_fields_they_are_for() -> None:
    """Every Node's id, and the resolver methods with plain arguments (a count, so a change in
    strawberry that silently stops them from installing is seen)."""
    replaced = fast_paths.replaced_fields(api_schema)
    assert ("Ticket", "id") in replaced
    assert ("Ticket", "checklist") in replaced
    assert ("SupportRequest", "messages") in replaced  # Int and String arguments
    # Fields guarded by permission classes keep strawberry's path, with its checks.
    assert ("Query", "ticketQueue") not in replaced
    assert len(replaced) >= 60


def test_every_enum_value_is_named_as_strawberry_names_it() -> None:
    checked = 0
    for gql_type in api_schema._schema.type_map.values():
        if not isinstance(gql_type, CustomGraphQLEnumType):
            continue
        for name, value in gql_type.values.items():
            member: Any = gql_type.wrapped_cls(value.value)
            assert gql_type.coerce_output_value(member) == name
            assert CustomGraphQLEnumType.coerce_output_value(gql_type, member) == name
            checked += 1
    assert checked > 100
