"""Each `viewerCan…` field predicts its mutation: asked of every viewer about every request of the
demo (in each state, with advocates at and under capacity), and then the mutation is tried, the
field's answer must be whether it succeeded. A prediction is read afresh before each try, since a
success changes what comes next."""

from __future__ import annotations

from typing import Any

from resolvers.demo import ADMIN, ADVOCATES, DEMO_PASSWORD, FAMILY, SECOND_FAMILY, seed
from tests.client import GraphQLClient
from tests.conftest import Live
from tests.factories import SEND_REQUEST
from tests.test_support_requests import ACCEPT, ASK, DECLINE, SEND_MESSAGE, WITHDRAW
from tests.test_tickets import RESOLVE
from tests.test_vault import END, GRANT, REVIEW, REVOKE

LOG_IN = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }"
CAN = """
query($id: ID!) { node(id: $id) { ... on SupportRequest {
  viewerCanAccept viewerCanDecline viewerCanRequestInformation viewerCanRequestMoreInformation
  viewerCanWithdraw viewerCanMessage
} } }
"""
REQUESTS = "{ supportRequests(first: 100) { edges { node { id } } } }"
CHILDREN = "{ viewer { family { children { id } } } }"
CREATE_TOKEN = 'mutation($s: [ApiScope!]!) { createApiToken(input: {name: "CRM", scopes: $s}) { secret } }'

# field: (mutation, its payload's name, its input besides requestId)
PREDICTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "viewerCanRequestInformation": (ASK, "requestMoreInformation", {"message": "Which LA?"}),
    "viewerCanMessage": (SEND_MESSAGE, "sendMessage", {"body": "Hello again."}),
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
                if node:  # the deprecated name answers the same
                    assert node["viewerCanRequestMoreInformation"] == node["viewerCanRequestInformation"]
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


CAN_RELATIONSHIP = """
query($id: ID!) { node(id: $id) { ... on SupportRelationship {
  viewerCanMessage viewerCanGrant viewerCanReview child { id }
} } }
"""
# field: (mutation, its payload's name, its input besides relationshipId; `$child` is the child's id)
RELATIONSHIP_PREDICTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "viewerCanMessage": (SEND_MESSAGE, "sendMessage", {"body": "Hello again."}),
    "viewerCanGrant": (GRANT, "grantVaultAccess", {"scopes": ["EVIDENCE"], "childIds": ["$child"]}),
    "viewerCanReview": (REVIEW, "leaveReview", {"rating": 5, "text": "Thank you."}),
}
REVIEWS = "{ advocates(first: 50) { edges { node { reviews(first: 50) { edges { node { id } } } } } } }"
CAN_HIDE = "query($id: ID!) { node(id: $id) { ... on Review { viewerCanHide } } }"
HIDE = "mutation($input: HideReviewInput!) { hideReview(input: $input) { userErrors { code } } }"
TICKETS = "{ ticketQueue(first: 100) { edges { node { id } } } }"
CAN_RESOLVE = "query($id: ID!) { node(id: $id) { ... on Ticket { viewerCanResolve } } }"


async def _done(
    gql: GraphQLClient, mutation: str, payload: str, variables: dict[str, Any], token: str
) -> bool:
    body = await gql(mutation, {"input": variables}, token)
    return not body.get("errors") and body["data"][payload]["userErrors"] == []


async def test_message_grant_review_hide_and_resolve_predict_their_mutations(
    gql: GraphQLClient, live_server: Live
) -> None:
    """The relationship's fields before and after every relationship ends (each field then seen
    both ways), a review's `viewerCanHide` while it is shown, and a ticket's `viewerCanResolve`
    once the cases have closed."""
    await seed(live_server.app.state.services)
    tokens = await _sign_in_all(gql)
    relationships: dict[str, str] = {}  # id: its child's id, as its family sees it
    for token in tokens.values():
        for edge in (await gql.data(RELATIONSHIPS, token=token))["supportRelationships"]["edges"]:
            node = (await gql.data(CAN_RELATIONSHIP, {"id": edge["node"]["id"]}, token))["node"]
            if node["child"]:
                relationships[edge["node"]["id"]] = node["child"]["id"]
    # An admin, who has no relationships of its own, may hide reviews.
    tokens[ADMIN[0]] = (await gql.data(LOG_IN, {"e": ADMIN[0], "p": DEMO_PASSWORD}))["logIn"]["token"]
    assert relationships
    outcomes: dict[str, set[bool]] = {field: set() for field in (*RELATIONSHIP_PREDICTS, "hide", "resolve")}

    async def try_every_relationship() -> None:
        for relationship_id, child_id in sorted(relationships.items()):
            for field, (mutation, payload, extra) in RELATIONSHIP_PREDICTS.items():
                for who, token in tokens.items():
                    node = (await gql.data(CAN_RELATIONSHIP, {"id": relationship_id}, token))["node"]
                    predicted = bool(node and node[field])
                    given = {k: ([child_id] if v == ["$child"] else v) for k, v in extra.items()}
                    happened = await _done(
                        gql, mutation, payload, {"relationshipId": relationship_id, **given}, token
                    )
                    assert predicted == happened, (field, who, relationship_id)
                    outcomes[field].add(happened)

    await try_every_relationship()
    for relationship_id in relationships:
        await gql(
            END, {"input": {"relationshipId": relationship_id, "reason": "RESOLVED"}}, tokens[FAMILY[0]]
        )
        await gql(
            END,
            {"input": {"relationshipId": relationship_id, "reason": "RESOLVED"}},
            tokens[SECOND_FAMILY[0]],
        )
    await try_every_relationship()
    await try_every_relationship()  # now each ended relationship has its one review

    reviews = [
        review["node"]["id"]
        for advocate in (await gql.data(REVIEWS))["advocates"]["edges"]
        for review in advocate["node"]["reviews"]["edges"]
    ]
    assert reviews
    for review_id in reviews:
        for who, token in tokens.items():  # the admin comes last: once hidden, no one sees it
            node = (await gql.data(CAN_HIDE, {"id": review_id}, token))["node"]
            predicted = bool(node and node["viewerCanHide"])
            happened = await _done(gql, HIDE, "hideReview", {"reviewId": review_id}, token)
            assert predicted == happened, ("viewerCanHide", who, review_id)
            outcomes["hide"].add(happened)

    tickets = {
        edge["node"]["id"]
        for email, *_ in ADVOCATES
        for edge in (await gql.data(TICKETS, token=tokens[email]))["ticketQueue"]["edges"]
    }
    assert tickets
    for ticket_id in sorted(tickets):
        for who, token in tokens.items():
            node = (await gql.data(CAN_RESOLVE, {"id": ticket_id}, token))["node"]
            predicted = bool(node and node["viewerCanResolve"])
            happened = await _done(
                gql, RESOLVE, "resolveTicket", {"ticketId": ticket_id, "outcome": "RESOLVED"}, token
            )
            assert predicted == happened, ("viewerCanResolve", who, ticket_id)
            outcomes["resolve"].add(happened)
    assert all(seen == {True, False} for seen in outcomes.values()), outcomes
