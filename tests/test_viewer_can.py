"""Each `viewerCan…` field predicts its mutation: asked of every viewer about every request of the
demo (in each state, with advocates at and under capacity), and then the mutation is tried, the
field's answer must be whether it succeeded. A prediction is read afresh before each try, since a
success changes what comes next."""

from __future__ import annotations

from typing import Any

from resolvers.demo import ADVOCATES, DEMO_PASSWORD, FAMILY, SECOND_FAMILY, seed
from tests.client import GraphQLClient
from tests.conftest import Live
from tests.factories import SEND_REQUEST
from tests.test_support_requests import ACCEPT, ASK, DECLINE, WITHDRAW
from tests.test_vault import END, REVOKE

LOG_IN = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }"
CAN = """
query($id: ID!) { node(id: $id) { ... on SupportRequest {
  viewerCanAccept viewerCanDecline viewerCanRequestMoreInformation viewerCanWithdraw
} } }
"""
REQUESTS = "{ supportRequests(first: 100) { edges { node { id } } } }"
CHILDREN = "{ viewer { family { children { id } } } }"
CREATE_TOKEN = 'mutation($s: [ApiScope!]!) { createApiToken(input: {name: "CRM", scopes: $s}) { secret } }'

# field: (mutation, its payload's name, its input besides requestId)
PREDICTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "viewerCanRequestMoreInformation": (ASK, "requestMoreInformation", {"message": "Which LA?"}),
    "viewerCanWithdraw": (WITHDRAW, "withdrawSupportRequest", {}),
    "viewerCanDecline": (DECLINE, "declineSupportRequest", {"reason": "NO_CAPACITY"}),
    "viewerCanAccept": (ACCEPT, "acceptSupportRequest", {}),
}


async def _succeeded(gql: GraphQLClient, field: str, request_id: str, token: str) -> bool:
    mutation, payload, extra = PREDICTS[field]
    body = await gql(mutation, {"input": {"requestId": request_id, **extra}}, token)
    if body.get("errors"):
        return False
    return bool(body["data"][payload]["userErrors"] == [])


async def _sign_in_all(gql: GraphQLClient) -> dict[str, str]:
    """Every demo family and advocate, by email, after read-only API tokens of a family and an
    advocate: they may read and change nothing, and come first, asked while everything is live."""
    tokens: dict[str, str] = {}
    for email in (FAMILY[0], SECOND_FAMILY[0], *(a[0] for a in ADVOCATES)):
        tokens[email] = (await gql.data(LOG_IN, {"e": email, "p": DEMO_PASSWORD}))["logIn"]["token"]
    read_only: dict[str, str] = {}
    for email, scopes in ((FAMILY[0], ["REQUESTS_READ", "VAULT_READ"]), (ADVOCATES[0][0], ["REQUESTS_READ"])):
        made = await gql.data(CREATE_TOKEN, {"s": scopes}, tokens[email])
        read_only[f"{email} read-only token"] = made["createApiToken"]["secret"]
    return {**read_only, **tokens}


async def test_every_viewer_can_predicts_its_mutation(gql: GraphQLClient, live_server: Live) -> None:
    await seed(live_server.app.state.services)
    tokens = await _sign_in_all(gql)
    # More open requests than the demo has: both families to the directory's advocates.
    directory = (await gql.data("{ advocates(first: 20) { edges { node { id } } } }"))["advocates"]["edges"]
    for family in (FAMILY[0], SECOND_FAMILY[0]):
        children = (await gql.data(CHILDREN, token=tokens[family]))["viewer"]["family"]["children"]
        for child in children:
            for edge in directory:
                request = {
                    "advocateId": edge["node"]["id"],
                    "childId": child["id"],
                    "message": "We need help with an EHC needs assessment.",
                    "supportTypes": ["EHC_NEEDS_ASSESSMENT"],
                }
                await gql(SEND_REQUEST, {"input": request}, tokens[family])  # some refuse: fine
    request_ids: set[str] = set()
    for token in tokens.values():
        edges = (await gql.data(REQUESTS, token=token))["supportRequests"]["edges"]
        request_ids.update(edge["node"]["id"] for edge in edges)
    assert len(request_ids) >= 5
    outcomes: dict[str, set[bool]] = {field: set() for field in PREDICTS}
    fields = list(PREDICTS)
    for index, request_id in enumerate(sorted(request_ids)):
        # Each request tries the fields in another order, so that each is tried first on some
        # open request (the first success closes or changes it for the rest).
        for field in fields[index % len(fields) :] + fields[: index % len(fields)]:
            for who, token in tokens.items():
                node = (await gql.data(CAN, {"id": request_id}, token))["node"]
                predicted = bool(node and node[field])
                happened = await _succeeded(gql, field, request_id, token)
                assert predicted == happened, (field, who, request_id)
                outcomes[field].add(happened)
    # Each field was seen both ways.
    assert all(seen == {True, False} for seen in outcomes.values()), outcomes


RELATIONSHIPS = "{ supportRelationships(first: 50) { edges { node { id vaultGrants { id } } } } }"
CAN_END = "query($id: ID!) { node(id: $id) { ... on SupportRelationship { viewerCanEnd } } }"
CAN_REVOKE = (
    "query($id: ID!) { node(id: $id) { ... on SupportRelationship { vaultGrants { id viewerCanRevoke } } } }"
)


async def test_viewer_can_revoke_and_end_predict_their_mutations(
    gql: GraphQLClient, live_server: Live
) -> None:
    await seed(live_server.app.state.services)
    tokens = await _sign_in_all(gql)
    relationships: dict[str, list[str]] = {}
    for token in tokens.values():
        for edge in (await gql.data(RELATIONSHIPS, token=token))["supportRelationships"]["edges"]:
            relationships[edge["node"]["id"]] = [g["id"] for g in edge["node"]["vaultGrants"]]
    revoke_seen: set[bool] = set()
    for relationship_id, grant_ids in sorted(relationships.items()):
        for grant_id in grant_ids:
            for who, token in tokens.items():
                node = (await gql.data(CAN_REVOKE, {"id": relationship_id}, token))["node"]
                listed = {g["id"]: g["viewerCanRevoke"] for g in (node or {}).get("vaultGrants", [])}
                predicted = bool(listed.get(grant_id))
                body = await gql(REVOKE, {"input": {"grantId": grant_id}}, token)
                happened = not body.get("errors") and body["data"]["revokeVaultAccess"]["userErrors"] == []
                assert predicted == happened, ("viewerCanRevoke", who, grant_id)
                revoke_seen.add(happened)
    end_seen: set[bool] = set()
    for relationship_id in sorted(relationships):
        for who, token in tokens.items():
            node = (await gql.data(CAN_END, {"id": relationship_id}, token))["node"]
            predicted = bool(node and node["viewerCanEnd"])
            body = await gql(END, {"input": {"relationshipId": relationship_id, "reason": "OTHER"}}, token)
            happened = not body.get("errors") and body["data"]["endSupportRelationship"]["userErrors"] == []
            assert predicted == happened, ("viewerCanEnd", who, relationship_id)
            end_seen.add(happened)
    assert revoke_seen == {True, False}
    assert end_seen == {True, False}
