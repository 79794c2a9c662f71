"""One world with something of every kind, and every kind of actor, for the generated access test.

Built once through the public API: a family with a child, evidence with a document, a timeline
entry and an EHCP case; five advocates, each with an accepted request and a grant (one per Vault
scope, one expired, one revoked); a ticket with a checklist item, a note and a template; a message;
an access-log entry; a review; another family, another advocate, an admin; API tokens for each
single scope.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from strawberry.relay import GlobalID

from resolvers.clock import Clock
from tests.client import GraphQLClient
from tests.documents import upload
from tests.factories import Account, add_child, admin, advocate, erase_now, send_request, sign_up, sweep

SCOPES = [
    "REQUESTS_READ",
    "REQUESTS_WRITE",
    "VAULT_READ",
    "VAULT_WRITE",
    "EVENTS_SUBSCRIBE",
    "NOTIFICATIONS_READ",
]
# Tokens that hold more than one scope, for the reads that legitimately need two.
FAMILY_COMBOS = [
    ["REQUESTS_READ", "VAULT_READ"],
    ["EVENTS_SUBSCRIBE", "REQUESTS_READ"],
    ["EVENTS_SUBSCRIBE", "REQUESTS_READ", "VAULT_READ"],
    ["EVENTS_SUBSCRIBE", "NOTIFICATIONS_READ"],
]
GRANTED = {"EVIDENCE": ["EVIDENCE"], "TIMELINE": ["TIMELINE"], "EHCP_CASE": ["EHCP_CASE"]}
ALL_PARTS = ["EVIDENCE", "TIMELINE", "EHCP_CASE"]

# Actor names. A token's name is its owner's, then the scopes it holds.
ANONYMOUS = "anonymous"
FAMILY = "family"
OTHER_FAMILY = "other family"
ADV_EVIDENCE = "advocate:EVIDENCE"
ADV_TIMELINE = "advocate:TIMELINE"
ADV_EHCP = "advocate:EHCP_CASE"
ADV_EXPIRED = "advocate:expired grant"
ADV_REVOKED = "advocate:revoked grant"
OTHER_ADVOCATE = "other advocate"
ADMIN = "admin"


def token_name(owner: str, scopes: list[str]) -> str:
    return f"{owner} token:{'+'.join(sorted(scopes))}"


@dataclass
class Actor:
    name: str
    token: str | None
    # The person behind it: its user's row id (for its event channel), and who that person is.
    user_id: int | None
    person: str
    # None for a session (every scope its person has); the scopes of an API token.
    scopes: frozenset[str] | None = None

    def holds(self, scope: str) -> bool:
        return self.token is not None and (self.scopes is None or scope in self.scopes)


@dataclass
class World:
    family: Account
    actors: dict[str, Actor] = field(default_factory=dict)
    # A sample global id of each Node type, and other ids the checks need.
    ids: dict[str, str] = field(default_factory=dict)


def row_id(global_id: str) -> int:
    return int(base64.b64decode(global_id).decode().split(":", 1)[1])


async def _token(gql: GraphQLClient, account: Account, scopes: list[str]) -> tuple[str, str]:
    data = await gql.data(
        'mutation($s: [ApiScope!]!) { createApiToken(input: {name: "Integration", scopes: $s}) {'
        " secret apiToken { id } } }",
        {"s": scopes},
        account.token,
    )
    created = data["createApiToken"]
    return created["secret"], created["apiToken"]["id"]


async def _mutate(gql: GraphQLClient, query: str, variables: dict[str, Any], token: str, name: str) -> Any:
    data = await gql.data(query, variables, token)
    result = data[name]
    assert result.get("userErrors", []) == [], result
    return result


async def build(gql: GraphQLClient, clock: Clock) -> World:
    family = await sign_up(gql)
    world = World(family)
    ids = world.ids
    child = await add_child(gql, family)
    ids["Child"] = child
    ids["Family"] = family.family_id or ""
    ids["User"] = family.user_id
    ids["Evidence"] = (
        await _mutate(
            gql,
            'mutation($c: ID!) { addEvidence(input: {childId: $c, title: "EP report", category: EP_REPORT,'
            ' date: "2025-05-01", description: "Private"}) { evidence { id } userErrors { code } } }',
            {"c": child},
            family.token,
            "addEvidence",
        )
    )["evidence"]["id"]
    ids["TimelineEntry"] = (
        await _mutate(
            gql,
            'mutation($c: ID!) { addTimelineEntry(input: {childId: $c, date: "2025-01-01", title: "Review"})'
            " { timelineEntry { id } userErrors { code } } }",
            {"c": child},
            family.token,
            "addTimelineEntry",
        )
    )["timelineEntry"]["id"]
    # A document under the evidence, and one more to be deleted by a payload check.
    ids["Document"] = (await upload(gql, family, ids["Evidence"]))["id"]
    ids["DoomedDocument"] = (await upload(gql, family, ids["Evidence"], filename="old.pdf"))["id"]
    # A child with no case and a timeline entry, for deleteChild and deleteTimelineEntry to take.
    ids["DoomedChild"] = await add_child(gql, family, displayName="Sam")
    ids["DoomedEntry"] = (
        await gql.data(
            'mutation($c: ID!) { addTimelineEntry(input: {childId: $c, date: "2025-01-02", title: "Old"}) {'
            " timelineEntry { id } } }",
            {"c": ids["Child"]},
            family.token,
        )
    )["addTimelineEntry"]["timelineEntry"]["id"]
    await _mutate(
        gql,
        "mutation($c: ID!) { updateEhcpCase(input: {childId: $c, stage: ASSESSING})"
        " { userErrors { code } } }",
        {"c": child},
        family.token,
        "updateEhcpCase",
    )

    boss = await admin(gql)
    advocates = {}
    for name in (ADV_EVIDENCE, ADV_TIMELINE, ADV_EHCP, ADV_EXPIRED, ADV_REVOKED, OTHER_ADVOCATE):
        advocates[name] = await advocate(gql, admin_account=boss)
    grants: dict[str, str] = {}
    relationships: dict[str, str] = {}
    requests: dict[str, str] = {}
    soon = (datetime.now(UTC) + clock.offset + timedelta(hours=1)).isoformat()
    for name, parts in (
        (ADV_EVIDENCE, GRANTED["EVIDENCE"]),
        (ADV_TIMELINE, GRANTED["TIMELINE"]),
        (ADV_EHCP, GRANTED["EHCP_CASE"]),
        (ADV_EXPIRED, ALL_PARTS),
        (ADV_REVOKED, ALL_PARTS),
    ):
        adv = advocates[name]
        request = (await send_request(gql, family, adv.advocate_id, child))["supportRequest"]["id"]
        accepted = await _mutate(
            gql,
            "mutation($r: ID!) { acceptSupportRequest(input: {requestId: $r}) {"
            " supportRequest { relationship { id } } userErrors { code } } }",
            {"r": request},
            adv.token,
            "acceptSupportRequest",
        )
        requests[name] = request
        relationships[name] = accepted["supportRequest"]["relationship"]["id"]
        grant_input: dict[str, Any] = {
            "relationshipId": relationships[name],
            "scopes": parts,
            "childIds": [child],
        }
        if name == ADV_EXPIRED:
            grant_input["expiresAt"] = soon
        granted = await _mutate(
            gql,
            "mutation($i: GrantVaultAccessInput!) { grantVaultAccess(input: $i) {"
            " vaultGrant { id } userErrors { code } } }",
            {"i": grant_input},
            family.token,
            "grantVaultAccess",
        )
        grants[name] = granted["vaultGrant"]["id"]
    ids["SupportRequest"] = requests[ADV_EVIDENCE]
    ids["SupportRelationship"] = relationships[ADV_EVIDENCE]
    ids["VaultGrant"] = grants[ADV_EVIDENCE]
    ids["Advocate"] = advocates[ADV_EVIDENCE].advocate_id
    ids["EvidenceRelationship"] = relationships[ADV_EVIDENCE]

    # Revoked, then the relationship ended and reviewed.
    await _mutate(
        gql,
        "mutation($g: ID!) { revokeVaultAccess(input: {grantId: $g}) { userErrors { code } } }",
        {"g": grants[ADV_REVOKED]},
        family.token,
        "revokeVaultAccess",
    )
    await _mutate(
        gql,
        "mutation($r: ID!) { endSupportRelationship(input: {relationshipId: $r, reason: RESOLVED}) {"
        " userErrors { code } } }",
        {"r": relationships[ADV_REVOKED]},
        family.token,
        "endSupportRelationship",
    )
    ids["Review"] = (
        await _mutate(
            gql,
            "mutation($r: ID!) { leaveReview(input: {relationshipId: $r, rating: 5}) {"
            " review { id } userErrors { code } } }",
            {"r": relationships[ADV_REVOKED]},
            family.token,
            "leaveReview",
        )
    )["review"]["id"]

    # The evidence advocate's thread, ticket, checklist, note and template, and one logged read.
    adv_e = advocates[ADV_EVIDENCE]
    ids["Message"] = (
        await _mutate(
            gql,
            'mutation($r: ID!) { sendMessage(input: {relationshipId: $r, body: "Hello"}) {'
            " message { id } userErrors { code } } }",
            {"r": relationships[ADV_EVIDENCE]},
            family.token,
            "sendMessage",
        )
    )["message"]["id"]
    ticket = (
        await gql.data(
            "query($r: ID!) { node(id: $r) { ... on SupportRequest { ticket { id } } } }",
            {"r": requests[ADV_EVIDENCE]},
            adv_e.token,
        )
    )["node"]["ticket"]["id"]
    ids["Ticket"] = ticket
    ids["ChecklistItem"] = (
        await _mutate(
            gql,
            'mutation($t: ID!) { addChecklistItem(input: {ticketId: $t, text: "Call"}) {'
            " checklistItem { id } userErrors { code } } }",
            {"t": ticket},
            adv_e.token,
            "addChecklistItem",
        )
    )["checklistItem"]["id"]
    ids["TicketNote"] = (
        await _mutate(
            gql,
            'mutation($t: ID!) { addTicketNote(input: {ticketId: $t, body: "Private note"}) {'
            " ticketNote { id } userErrors { code } } }",
            {"t": ticket},
            adv_e.token,
            "addTicketNote",
        )
    )["ticketNote"]["id"]
    ids["ChecklistTemplate"] = (
        await _mutate(
            gql,
            'mutation { createChecklistTemplate(input: {name: "Case", items: ["One"]}) {'
            " checklistTemplate { id } userErrors { code } } }",
            {},
            adv_e.token,
            "createChecklistTemplate",
        )
    )["checklistTemplate"]["id"]
    await gql.data(
        "query($f: ID!) { vault(familyId: $f) { evidence { edges { node { id } } } } }",
        {"f": family.family_id},
        adv_e.token,
    )
    log = await gql.data(
        "{ viewer { family { vaultAccessLog { edges { node { id } } } } } }", token=family.token
    )
    ids["VaultAccessLogEntry"] = log["viewer"]["family"]["vaultAccessLog"]["edges"][0]["node"]["id"]
    sessions = await gql.data("{ viewer { sessions { edges { node { id } } } } }", token=family.token)
    ids["Session"] = sessions["viewer"]["sessions"]["edges"][0]["node"]["id"]
    notes = await gql.data("{ notifications { edges { node { id } } } }", token=family.token)
    ids["Notification"] = notes["notifications"]["edges"][0]["node"]["id"]

    # The expired grant: its expiry passes, and the sweeper tells its advocate.
    clock.offset += timedelta(hours=2)
    await sweep(gql)
    status = await gql.data(
        "query($g: ID!) { node(id: $g) { ... on VaultGrant { status revokedAt } } }",
        {"g": grants[ADV_EXPIRED]},
        advocates[ADV_EXPIRED].token,
    )
    assert status["node"]["status"] == "EXPIRED", status

    # The actors.
    actors = world.actors
    actors[ANONYMOUS] = Actor(ANONYMOUS, None, None, ANONYMOUS)
    actors[FAMILY] = Actor(FAMILY, family.token, row_id(family.user_id), FAMILY)
    for scopes in [[s] for s in SCOPES] + FAMILY_COMBOS:
        secret, token_id = await _token(gql, family, scopes)
        name = token_name(FAMILY, scopes)
        actors[name] = Actor(name, secret, row_id(family.user_id), FAMILY, frozenset(scopes))
        if scopes == ["VAULT_READ"]:
            ids["ApiToken"] = token_id
    other = await sign_up(gql)
    actors[OTHER_FAMILY] = Actor(OTHER_FAMILY, other.token, row_id(other.user_id), OTHER_FAMILY)
    for name, adv in advocates.items():
        actors[name] = Actor(name, adv.token, row_id(adv.user_id), name)
    for scopes in [[s] for s in SCOPES]:
        secret, _ = await _token(gql, adv_e, scopes)
        name = token_name(ADV_EVIDENCE, scopes)
        actors[name] = Actor(name, secret, row_id(adv_e.user_id), ADV_EVIDENCE, frozenset(scopes))
    actors[ADMIN] = Actor(ADMIN, boss.token, row_id(boss.user_id), ADMIN)

    # The family's data export, and the record of another family's erasure.
    made = await gql.data("mutation { requestDataExport { dataExport { id } } }", token=family.token)
    ids["DataExport"] = made["requestDataExport"]["dataExport"]["id"]
    gone = await sign_up(gql)
    record = await erase_now(gql.app.state.services, row_id(gone.user_id))
    ids["ErasureRecord"] = str(GlobalID("ErasureRecord", str(record.id)))
    return world
