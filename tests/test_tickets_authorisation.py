"""Who may touch the ticket queue, as a matrix: each new query, mutation and subscription against each
kind of caller. Tickets are the advocate's alone: families, other advocates and admins are refused or
see nothing, and API tokens need REQUESTS_READ to read, REQUESTS_WRITE to change, and
EVENTS_SUBSCRIBE (with REQUESTS_READ) to listen.

Each row runs its refusals first and the permitted callers last, on a fresh world, and checks that
no refusal changed anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from models.advocates import Advocate
from models.tickets import ChecklistItem, ChecklistTemplate, Ticket, TicketNote
from tests.client import GraphQLClient
from tests.factories import Account, add_child, admin, advocate, api_token, send_request, sign_up
from tests.test_support_requests import WITHDRAW
from tests.test_tickets import ADD_ITEM, ADD_NOTE, CREATE_TEMPLATE, TICKET_OF

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
EVERY_SCOPE = ["REQUESTS_READ", "REQUESTS_WRITE", "VAULT_READ", "VAULT_WRITE", "EVENTS_SUBSCRIBE"]


@dataclass
class World:
    tokens: dict[str, str | None]
    ids: dict[str, str] = field(default_factory=dict)


async def _world(gql: GraphQLClient, scopes: list[str], *, closed: bool = False) -> World:
    """An advocate with one ticket (a checklist item, a note) and a template; `scopes` are what the
    scoped tokens carry, and the unscoped ones carry every other scope."""
    boss = await admin(gql)
    adv = await advocate(gql, admin_account=boss)
    other_adv = await advocate(gql, admin_account=boss)
    family = await sign_up(gql)
    other_family = await sign_up(gql)
    child = await add_child(gql, family)
    request_id = (await send_request(gql, family, adv.advocate_id, child))["supportRequest"]["id"]
    if closed:
        await gql.data(WITHDRAW, {"input": {"requestId": request_id}}, family.token)
    ticket_id = (await gql.data(TICKET_OF, {"r": request_id}, adv.token))["node"]["ticket"]["id"]
    item = await gql.data(ADD_ITEM, {"input": {"ticketId": ticket_id, "text": "Read the request"}}, adv.token)
    note = await gql.data(ADD_NOTE, {"input": {"ticketId": ticket_id, "body": "Private"}}, adv.token)
    template = await gql.data(CREATE_TEMPLATE, {"input": {"name": "Intake", "items": ["Call"]}}, adv.token)
    without = [s for s in EVERY_SCOPE if s not in scopes]
    return World(
        tokens={
            "anonymous": None,
            "family": family.token,
            "other_family": other_family.token,
            "advocate": adv.token,
            "other_advocate": other_adv.token,
            "admin": boss.token,
            "family_token_scoped": await api_token(gql, family, scopes),
            "family_token_unscoped": await api_token(gql, family, without),
            "advocate_token_scoped": await api_token(gql, adv, scopes),
            "advocate_token_unscoped": await api_token(gql, adv, without),
        },
        ids={
            "r": request_id,
            "t": ticket_id,
            "i": item["addChecklistItem"]["checklistItem"]["id"],
            "n": note["addTicketNote"]["ticketNote"]["id"],
            "p": template["createChecklistTemplate"]["checklistTemplate"]["id"],
        },
    )


def _outcome(body: dict[str, Any], field_name: str) -> str:
    """OK, NULL, EMPTY, a top-level error code, or the first user error's code."""
    if body.get("errors"):
        return str(body["errors"][0]["extensions"]["code"])
    value = body["data"][field_name]
    if value is None:
        return "NULL"
    if isinstance(value, dict) and "userErrors" in value:
        return value["userErrors"][0]["code"] if value["userErrors"] else "OK"
    if isinstance(value, dict) and "edges" in value:
        return "OK" if value["edges"] else "EMPTY"
    if isinstance(value, list):
        return "OK" if value else "EMPTY"
    return "OK"


async def _state() -> tuple[Any, ...]:
    """Everything a refused caller might have changed."""
    return (
        [(i.id, i.text, i.position, i.done) for i in await ChecklistItem.all().order_by("id")],
        [(n.id, n.body) for n in await TicketNote.all().order_by("id")],
        [(t.id, t.name) for t in await ChecklistTemplate.all().order_by("id")],
        [(t.id, t.status, t.outcome) for t in await Ticket.all().order_by("id")],
        [
            (a.id, a.response_sla_hours, a.first_message_sla_hours)
            for a in await Advocate.all().order_by("id")
        ],
    )


@dataclass
class Operation:
    name: str
    query: str
    scope: str
    expected: dict[str, str]
    closed: bool = False


_ADVOCATE_WRITES = {
    "anonymous": "UNAUTHENTICATED",
    "family": "FORBIDDEN",
    "other_family": "FORBIDDEN",
    "admin": "FORBIDDEN",
    "family_token_scoped": "FORBIDDEN",
    "family_token_unscoped": "FORBIDDEN",
    "advocate_token_unscoped": "FORBIDDEN",
    "other_advocate": "NOT_FOUND",
    "advocate_token_scoped": "OK",
}
_REPEATABLE = {**_ADVOCATE_WRITES, "advocate": "OK"}
_ADVOCATE_READS = {
    "anonymous": "UNAUTHENTICATED",
    "family": "FORBIDDEN",
    "other_family": "FORBIDDEN",
    "admin": "FORBIDDEN",
    "family_token_scoped": "FORBIDDEN",
    "family_token_unscoped": "FORBIDDEN",
    "advocate_token_unscoped": "FORBIDDEN",
    "other_advocate": "EMPTY",
    "advocate_token_scoped": "OK",
    "advocate": "OK",
}
_OWNER_ONLY_NODE = {
    **dict.fromkeys(CALLERS, "NULL"),
    "advocate": "OK",
    "advocate_token_scoped": "OK",
}


def _mutation(name: str, fields: str) -> str:
    """A mutation taking the world's IDs it names ($t ticket, $i item, $n note, $p template)."""
    used = sorted(set(re.findall(r"\$(\w)", fields)))
    declared = f"({', '.join(f'${v}: ID!' for v in used)})" if used else ""
    return f"mutation{declared} {{ {name}(input: {{ {fields} }}) {{ userErrors {{ code }} }} }}"


READS = [
    Operation("ticketQueue", "{ ticketQueue { edges { node { id } } } }", "REQUESTS_READ", _ADVOCATE_READS),
    Operation("checklistTemplates", "{ checklistTemplates { id } }", "REQUESTS_READ", _ADVOCATE_READS),
    Operation("node(Ticket)", "query($t: ID!) { node(id: $t) { id } }", "REQUESTS_READ", _OWNER_ONLY_NODE),
    Operation(
        "node(ChecklistItem)", "query($i: ID!) { node(id: $i) { id } }", "REQUESTS_READ", _OWNER_ONLY_NODE
    ),
    Operation(
        "node(TicketNote)", "query($n: ID!) { node(id: $n) { id } }", "REQUESTS_READ", _OWNER_ONLY_NODE
    ),
    Operation(
        "node(ChecklistTemplate)",
        "query($p: ID!) { node(id: $p) { id } }",
        "REQUESTS_READ",
        _OWNER_ONLY_NODE,
    ),
]

WRITES = [
    Operation(
        "addChecklistItem",
        _mutation("addChecklistItem", 'ticketId: $t, text: "Another"'),
        "REQUESTS_WRITE",
        _REPEATABLE,
    ),
    Operation(
        "tickChecklistItem", _mutation("tickChecklistItem", "itemId: $i"), "REQUESTS_WRITE", _REPEATABLE
    ),
    Operation(
        "untickChecklistItem",
        _mutation("untickChecklistItem", "itemId: $i"),
        "REQUESTS_WRITE",
        _REPEATABLE,
    ),
    Operation(
        "removeChecklistItem",
        _mutation("removeChecklistItem", "itemId: $i"),
        "REQUESTS_WRITE",
        _ADVOCATE_WRITES,
    ),
    Operation(
        "reorderChecklistItems",
        _mutation("reorderChecklistItems", "ticketId: $t, itemIds: [$i]"),
        "REQUESTS_WRITE",
        _REPEATABLE,
    ),
    Operation(
        "createChecklistTemplate",
        _mutation("createChecklistTemplate", 'name: "Mine", items: ["A"]'),
        "REQUESTS_WRITE",
        # Another advocate makes a template of their own.
        {**_REPEATABLE, "other_advocate": "OK"},
    ),
    Operation(
        "deleteChecklistTemplate",
        _mutation("deleteChecklistTemplate", "templateId: $p"),
        "REQUESTS_WRITE",
        _ADVOCATE_WRITES,
    ),
    Operation(
        "applyChecklistTemplate",
        _mutation("applyChecklistTemplate", "ticketId: $t, templateId: $p"),
        "REQUESTS_WRITE",
        _REPEATABLE,
    ),
    Operation(
        "addTicketNote",
        _mutation("addTicketNote", 'ticketId: $t, body: "More"'),
        "REQUESTS_WRITE",
        _REPEATABLE,
    ),
    Operation(
        "deleteTicketNote",
        _mutation("deleteTicketNote", "noteId: $n"),
        "REQUESTS_WRITE",
        _ADVOCATE_WRITES,
    ),
    Operation(
        "resolveTicket",
        _mutation("resolveTicket", "ticketId: $t, outcome: NO_FURTHER_ACTION"),
        "REQUESTS_WRITE",
        _ADVOCATE_WRITES,
        closed=True,
    ),
    Operation(
        "updateSlaTargets",
        _mutation("updateSlaTargets", "responseHours: 12"),
        "REQUESTS_WRITE",
        # A setting of the advocate's own, like the profile: signed-in sessions only.
        {
            **_ADVOCATE_WRITES,
            "advocate_token_scoped": "FORBIDDEN",
            "other_advocate": "OK",
            "advocate": "OK",
        },
    ),
]


async def test_ticket_reads_matrix(gql: GraphQLClient) -> None:
    """Reads change nothing, so every read runs against one world."""
    world = await _world(gql, ["REQUESTS_READ"])
    before = await _state()
    for operation in READS:
        seen = {
            caller: _outcome(
                await gql(operation.query, dict(world.ids), world.tokens[caller]),
                operation.name.split("(")[0],
            )
            for caller in CALLERS
        }
        assert seen == operation.expected, operation.name
    assert await _state() == before


@pytest.mark.parametrize("operation", WRITES, ids=lambda o: o.name)
async def test_ticket_writes_matrix(gql: GraphQLClient, operation: Operation) -> None:
    world = await _world(gql, [operation.scope], closed=operation.closed)
    field_name = operation.name.split("(")[0]
    seen: dict[str, str] = {}
    for caller, _ in sorted(operation.expected.items(), key=lambda kv: kv[1] == "OK"):
        before = await _state()
        body = await gql(operation.query, dict(world.ids), world.tokens[caller])
        seen[caller] = _outcome(body, field_name)
        if seen[caller] != "OK":
            assert await _state() == before, caller
    assert seen == operation.expected


async def test_a_requests_ticket_is_shown_only_to_its_advocate(gql: GraphQLClient) -> None:
    world = await _world(gql, ["REQUESTS_READ"])
    query = "query($r: ID!) { node(id: $r) { ... on SupportRequest { id ticket { id } } } }"
    seen = {}
    for caller in CALLERS:
        node = (await gql.data(query, {"r": world.ids["r"]}, world.tokens[caller]))["node"]
        seen[caller] = "NO_REQUEST" if node is None else ("NULL" if node["ticket"] is None else "OK")
    assert seen == {
        **dict.fromkeys(CALLERS, "NO_REQUEST"),
        # The family sees its request, never the advocate's ticket for it.
        "family": "NULL",
        "family_token_scoped": "NULL",
        "advocate": "OK",
        "advocate_token_scoped": "OK",
    }


LIVE = "subscription { ticketUpdated { changes ticket { id } } }"


async def test_ticket_updated_subscription_matrix(gql: GraphQLClient) -> None:
    world = await _world(gql, ["EVENTS_SUBSCRIBE", "REQUESTS_READ"])
    adv = Account(str(world.tokens["advocate"]), "", "")
    tokens = dict(world.tokens)
    # Listening needs both scopes: either alone is refused.
    tokens["advocate_token_events_only"] = await api_token(gql, adv, ["EVENTS_SUBSCRIBE", "REQUESTS_WRITE"])
    tokens["advocate_token_read_only"] = await api_token(gql, adv, ["REQUESTS_READ", "REQUESTS_WRITE"])
    receives = {"advocate", "advocate_token_scoped"}
    silent = {"other_advocate"}
    for caller, token in tokens.items():
        if token is None:
            async with gql.socket(None) as sock:
                assert await sock.closed_code() == 4403
            continue
        async with gql.socket(token) as sock:
            await sock.ack()
            op = await sock.subscribe(LIVE)
            if caller not in receives | silent:
                result = await sock.next_event(op)
                assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN", caller
                continue
            await sock.expect_silence(0.2)
            await gql.data(ADD_NOTE, {"input": {"ticketId": world.ids["t"], "body": "x"}}, adv.token)
            if caller in receives:
                event = (await sock.next_event(op))["data"]["ticketUpdated"]
                assert event == {"changes": ["NOTE_ADDED"], "ticket": {"id": world.ids["t"]}}, caller
            else:
                await sock.expect_silence(0.4)
