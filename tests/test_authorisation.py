"""Who may do what, as a matrix: each operation against each kind of caller.

Callers: anonymous, the family, another family, the advocate, another advocate, an admin, and API
tokens of the family and of the advocate with and without the scope the operation needs. Each
row runs its refusals first and the permitted callers last, on one fresh request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from models.support import Message, RequestStatus, SupportRequest
from tests.client import GraphQLClient
from tests.factories import add_child, admin, advocate, api_token, send_request, sign_up
from tests.test_support_requests import ACCEPT, ASK, DECLINE, SEND_MESSAGE, WITHDRAW

CALLERS = [
    "anonymous",
    "family",
    "other_family",
    "advocate",
    "other_advocate",
    "admin",
    "family_token_scoped",
    "family_token_unscoped",
    "advocate_token_scoped",
    "advocate_token_unscoped",
]


@dataclass
class World:
    tokens: dict[str, str | None]
    request_id: str
    child_id: str
    advocate_id: str


async def _world(gql: GraphQLClient, scope: str) -> World:
    adv = await advocate(gql)
    other_adv = await advocate(gql)
    family = await sign_up(gql)
    other_family = await sign_up(gql)
    child = await add_child(gql, family)
    request_id = (await send_request(gql, family, adv.advocate_id, child))["supportRequest"]["id"]
    everything = ["REQUESTS_READ", "REQUESTS_WRITE", "VAULT_READ", "VAULT_WRITE", "EVENTS_SUBSCRIBE"]
    without = [s for s in everything if s != scope]
    return World(
        tokens={
            "anonymous": None,
            "family": family.token,
            "other_family": other_family.token,
            "advocate": adv.token,
            "other_advocate": other_adv.token,
            "admin": (await admin(gql)).token,
            "family_token_scoped": await api_token(gql, family, [scope]),
            "family_token_unscoped": await api_token(gql, family, without),
            "advocate_token_scoped": await api_token(gql, adv, [scope]),
            "advocate_token_unscoped": await api_token(gql, adv, without),
        },
        request_id=request_id,
        child_id=child,
        advocate_id=adv.advocate_id,
    )


def _outcome(body: dict[str, Any], field: str) -> str:
    """OK, NULL, EMPTY, a top-level error code, or the first user error's code."""
    if body.get("errors"):
        return str(body["errors"][0]["extensions"]["code"])
    value = body["data"][field]
    if value is None:
        return "NULL"
    if isinstance(value, dict) and "userErrors" in value:
        return value["userErrors"][0]["code"] if value["userErrors"] else "OK"
    if isinstance(value, dict) and "edges" in value:
        return "OK" if value["edges"] else "EMPTY"
    return "OK"


@dataclass
class Operation:
    name: str
    query: str
    scope: str
    expected: dict[str, str]  # caller -> outcome; the permitted ones run last

    def variables(self, world: World) -> dict[str, Any]:
        return {"r": world.request_id, "c": world.child_id, "a": world.advocate_id}


_DENY_ANON = {"anonymous": "UNAUTHENTICATED"}

OPERATIONS = [
    Operation(
        "node(supportRequest)",
        "query($r: ID!) { node(id: $r) { id } }",
        "REQUESTS_READ",
        {
            **dict.fromkeys(CALLERS, "NULL"),
            "family_token_unscoped": "NULL",
            "advocate_token_unscoped": "NULL",
            "family": "OK",
            "advocate": "OK",
            "family_token_scoped": "OK",
            "advocate_token_scoped": "OK",
        },
    ),
    Operation(
        "supportRequests",
        "{ supportRequests { edges { node { id } } } }",
        "REQUESTS_READ",
        {
            **_DENY_ANON,
            "admin": "FORBIDDEN",
            "family_token_unscoped": "FORBIDDEN",
            "advocate_token_unscoped": "FORBIDDEN",
            "other_family": "EMPTY",
            "other_advocate": "EMPTY",
            "family": "OK",
            "advocate": "OK",
            "family_token_scoped": "OK",
            "advocate_token_scoped": "OK",
        },
    ),
    Operation(
        "sendMessage",
        'mutation($r: ID!) { sendMessage(input: {requestId: $r, body: "Hi"}) { userErrors { code } } }',
        "REQUESTS_WRITE",
        {
            **_DENY_ANON,
            "admin": "NOT_FOUND",
            "family_token_unscoped": "FORBIDDEN",
            "advocate_token_unscoped": "FORBIDDEN",
            "other_family": "NOT_FOUND",
            "other_advocate": "NOT_FOUND",
            "family": "OK",
            "advocate": "OK",
            "family_token_scoped": "OK",
            "advocate_token_scoped": "OK",
        },
    ),
    Operation(
        "sendSupportRequest",
        """mutation($a: ID!, $c: ID!) { sendSupportRequest(input: {advocateId: $a, childId: $c,
           message: "Again", supportTypes: [ADVICE]}) { userErrors { code } } }""",
        "REQUESTS_WRITE",
        {
            **_DENY_ANON,
            "admin": "FORBIDDEN",
            "advocate": "FORBIDDEN",
            "other_advocate": "FORBIDDEN",
            "advocate_token_scoped": "FORBIDDEN",
            "advocate_token_unscoped": "FORBIDDEN",
            "family_token_unscoped": "FORBIDDEN",
            "other_family": "NOT_FOUND",
            # The request already open makes the owner's attempt a duplicate: authorised, refused by rule.
            "family": "DUPLICATE_REQUEST",
            "family_token_scoped": "DUPLICATE_REQUEST",
        },
    ),
    Operation(
        "requestMoreInformation",
        'mutation($r: ID!) { requestMoreInformation(input: {requestId: $r, message: "Q?"})'
        " { userErrors { code } } }",
        "REQUESTS_WRITE",
        {
            **_DENY_ANON,
            "admin": "FORBIDDEN",
            "family": "FORBIDDEN",
            "other_family": "FORBIDDEN",
            "family_token_scoped": "FORBIDDEN",
            "family_token_unscoped": "FORBIDDEN",
            "advocate_token_unscoped": "FORBIDDEN",
            "other_advocate": "NOT_FOUND",
            "advocate_token_scoped": "OK",
            "advocate": "OK",
        },
    ),
    Operation(
        "acceptSupportRequest",
        "mutation($r: ID!) { acceptSupportRequest(input: {requestId: $r}) { userErrors { code } } }",
        "REQUESTS_WRITE",
        {
            **_DENY_ANON,
            "admin": "FORBIDDEN",
            "family": "FORBIDDEN",
            "other_family": "FORBIDDEN",
            "family_token_scoped": "FORBIDDEN",
            "family_token_unscoped": "FORBIDDEN",
            "advocate_token_unscoped": "FORBIDDEN",
            "other_advocate": "NOT_FOUND",
            "advocate_token_scoped": "OK",
        },
    ),
    Operation(
        "declineSupportRequest",
        "mutation($r: ID!) { declineSupportRequest(input: {requestId: $r, reason: OTHER})"
        " { userErrors { code } } }",
        "REQUESTS_WRITE",
        {
            **_DENY_ANON,
            "admin": "FORBIDDEN",
            "family": "FORBIDDEN",
            "other_family": "FORBIDDEN",
            "family_token_unscoped": "FORBIDDEN",
            "advocate_token_unscoped": "FORBIDDEN",
            "other_advocate": "NOT_FOUND",
            "advocate": "OK",
        },
    ),
    Operation(
        "withdrawSupportRequest",
        "mutation($r: ID!) { withdrawSupportRequest(input: {requestId: $r}) { userErrors { code } } }",
        "REQUESTS_WRITE",
        {
            **_DENY_ANON,
            "admin": "FORBIDDEN",
            "advocate": "FORBIDDEN",
            "other_advocate": "FORBIDDEN",
            "advocate_token_scoped": "FORBIDDEN",
            "family_token_unscoped": "FORBIDDEN",
            "other_family": "NOT_FOUND",
            "family_token_scoped": "OK",
        },
    ),
]


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda o: o.name)
async def test_request_operations_matrix(gql: GraphQLClient, operation: Operation) -> None:
    world = await _world(gql, operation.scope)
    seen: dict[str, str] = {}
    for caller, _ in sorted(operation.expected.items(), key=lambda kv: kv[1] == "OK"):
        before = (await SupportRequest.get()).status, await Message.all().count()
        body = await gql(operation.query, operation.variables(world), world.tokens[caller])
        seen[caller] = _outcome(body, operation.name.split("(")[0])
        if seen[caller] != "OK" and operation.name != "supportRequests":
            # A refusal changes nothing.
            assert ((await SupportRequest.get()).status, await Message.all().count()) == before, caller
    assert seen == operation.expected
    if operation.name == "withdrawSupportRequest":
        assert (await SupportRequest.get()).status is RequestStatus.WITHDRAWN


SUBSCRIPTIONS = {
    "newSupportRequest": "subscription { newSupportRequest { supportRequest { id } } }",
    "supportRequestUpdated": "subscription { supportRequestUpdated { supportRequest { id } } }",
}


@pytest.mark.parametrize("name", list(SUBSCRIPTIONS))
async def test_subscription_matrix(gql: GraphQLClient, name: str) -> None:
    world = await _world(gql, "EVENTS_SUBSCRIBE")
    # Who receives an event when the advocate answers (or, for new requests, when one is sent).
    receives = {"advocate", "advocate_token_scoped"}
    if name == "supportRequestUpdated":
        receives |= {"family", "family_token_scoped"}
    refused = {
        "family_token_unscoped",
        "advocate_token_unscoped",
        "admin" if name == "newSupportRequest" else "",
    }
    if name == "newSupportRequest":
        refused |= {"family", "other_family", "family_token_scoped"}
    for caller in CALLERS:
        token = world.tokens[caller]
        if token is None:
            async with gql.socket(None) as sock:
                assert await sock.closed_code() == 4403
            continue
        # A scoped API token needs REQUESTS_READ too to read what the event carries.
        if caller.endswith("_token_scoped"):
            owner = "family" if caller.startswith("family") else "advocate"
            token = await api_token_for(gql, world, owner)
        async with gql.socket(token) as sock:
            await sock.ack()
            op = await sock.subscribe(SUBSCRIPTIONS[name])
            if caller in refused:
                result = await sock.next_event(op)
                assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN", caller
                continue
            await sock.expect_silence(0.2)
            await _trigger(gql, world, name)
            if caller in receives:
                event = (await sock.next_event(op))["data"][name]
                assert event["supportRequest"]["id"], caller
            else:
                await sock.expect_silence(0.4)


async def api_token_for(gql: GraphQLClient, world: World, owner: str) -> str:
    from tests.factories import Account

    account = Account(str(world.tokens[owner]), "", "")
    return await api_token(gql, account, ["EVENTS_SUBSCRIBE", "REQUESTS_READ"])


_triggered: dict[int, int] = {}


async def _trigger(gql: GraphQLClient, world: World, name: str) -> None:
    """Make one event of the kind `name` delivers."""
    if name == "newSupportRequest":
        family = world.tokens["family"]
        data = await gql.data(
            "mutation($i: AddChildInput!) { addChild(input: $i) { child { id } } }",
            {"i": {"displayName": "Sib", "dateOfBirth": "2018-01-01"}},
            family,
        )
        child = data["addChild"]["child"]["id"]
        from tests.factories import Account

        await send_request(gql, Account(str(family), "", ""), world.advocate_id, child)
    else:
        await gql.data(
            ASK, {"input": {"requestId": world.request_id, "message": "More?"}}, world.tokens["advocate"]
        )


__all__ = ["ACCEPT", "DECLINE", "SEND_MESSAGE", "WITHDRAW"]
