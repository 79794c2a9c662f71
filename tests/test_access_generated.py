"""Who sees what, generated from the schema: every Node type and every field that shows family, child
or Vault data has an entry here saying which actors see it, and every actor is checked through every
path (node(id), nested fields and connections, subscription replay, notifications, mutation payloads).

The schema is read by introspection: a Node type, or a field whose type is one of the Vault's, with
no entry below fails the test, so the next one cannot be added without deciding who may see it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from resolvers.clock import Clock
from resolvers.events import encode_cursor, user_channel
from tests.access_world import (
    ADMIN,
    ADV_EHCP,
    ADV_EVIDENCE,
    ADV_EXPIRED,
    ADV_REVOKED,
    ADV_TIMELINE,
    FAMILY,
    OTHER_FAMILY,
    Actor,
    World,
    build,
)
from tests.client import DEADLINE, GraphQLClient
from tests.documents import EP_REPORT

# Types whose values are the family's, the child's or the Vault's: a field of one of these types
# (or a list or connection of them) anywhere in the schema needs an entry in FIELDS.
VAULT_TYPES = {
    "Child",
    "Evidence",
    "TimelineEntry",
    "EhcpCase",
    "VaultGrant",
    "VaultAccessLogEntry",
    "Family",
    "Vault",
    "Document",
}
# Fields of other types that give Vault data away all the same: each needs an entry in FIELDS too.
VAULT_KEYS = {"Document.downloadUrl"}

Expect = Callable[[World], set[str]]


def holders(person: str, *scopes: str) -> Expect:
    """`person`'s session, and its API tokens that hold every one of `scopes`."""

    def expect(world: World) -> set[str]:
        return {
            a.name for a in world.actors.values() if a.person == person and all(a.holds(s) for s in scopes)
        }

    return expect


def anyone(world: World) -> set[str]:
    return set(world.actors)


def union(*parts: Expect) -> Expect:
    return lambda world: set().union(*(p(world) for p in parts))


def names(*actors: str) -> Expect:
    return lambda world: set(actors)


GRANTED_ANY = union(*(holders(a, "VAULT_READ") for a in (ADV_EVIDENCE, ADV_TIMELINE, ADV_EHCP)))
REQUEST_ADVOCATES = (ADV_EVIDENCE, ADV_TIMELINE, ADV_EHCP, ADV_EXPIRED, ADV_REVOKED)


# --- node(id): one entry per Node type ----------------------------------------------------------

NODES: dict[str, Expect] = {
    # The family's own Vault records: the family, with VAULT_READ. Advocates read the Vault only
    # through `vault(familyId)`, where each read is logged.
    "Child": holders(FAMILY, "VAULT_READ"),
    "Evidence": holders(FAMILY, "VAULT_READ"),
    "Document": holders(FAMILY, "VAULT_READ"),
    "TimelineEntry": holders(FAMILY, "VAULT_READ"),
    "VaultAccessLogEntry": holders(FAMILY, "VAULT_READ"),
    # The family record (its name and when it joined, not its Vault): the family's own account.
    "Family": holders(FAMILY),
    # A grant: the family and the advocate it was made for, with VAULT_READ.
    "VaultGrant": union(holders(FAMILY, "VAULT_READ"), holders(ADV_EVIDENCE, "VAULT_READ")),
    # Requests, relationships and their thread: the two parties, with REQUESTS_READ.
    "SupportRequest": union(holders(FAMILY, "REQUESTS_READ"), holders(ADV_EVIDENCE, "REQUESTS_READ")),
    "SupportRelationship": union(holders(FAMILY, "REQUESTS_READ"), holders(ADV_EVIDENCE, "REQUESTS_READ")),
    "Message": union(holders(FAMILY, "REQUESTS_READ"), holders(ADV_EVIDENCE, "REQUESTS_READ")),
    # The advocate's working record: its own advocate only.
    "Ticket": holders(ADV_EVIDENCE, "REQUESTS_READ"),
    "ChecklistItem": holders(ADV_EVIDENCE, "REQUESTS_READ"),
    "TicketNote": holders(ADV_EVIDENCE, "REQUESTS_READ"),
    "ChecklistTemplate": holders(ADV_EVIDENCE, "REQUESTS_READ"),
    "Notification": holders(FAMILY, "NOTIFICATIONS_READ"),
    # A user on its own resolves for the user (any credential of theirs); tokens only for their
    # maker, signed in.
    "User": holders(FAMILY),
    "ApiToken": names(FAMILY),
    # The family's own signed-in session: to the family, signed in.
    "Session": names(FAMILY),
    # The family's data export: to the family, signed in (its link is tested in test_data_rights).
    "DataExport": names(FAMILY),
    # What an erasure did (counts, no content): to admins only.
    "ErasureRecord": names(ADMIN),
    # Public: a verified advocate's profile and its visible reviews.
    "Advocate": anyone,
    "Review": anyone,
}


# --- fields that show family, child or Vault data --------------------------------------------------


@dataclass(frozen=True)
class Read:
    """A query, and where in its answer the field's value stands (`*` walks a list)."""

    document: str
    path: str
    expect: Expect


class Write(Read):
    """A mutation each actor tries; the field is in its payload. Run after the reads."""


class Download(Read):
    """A read whose value is a download URL: each one given out is fetched, and must answer the
    document's bytes (the URL is authorised again, for the credential it was issued to)."""


@dataclass(frozen=True)
class Live:
    """A subscription replayed from the start of the actor's own channel; `path` in each event."""

    subscription: str
    path: str
    expect: Expect


Check = Read | Live

REQUESTS = "query { supportRequests { edges { node { %s } } } }"
RELATIONSHIPS = "query { supportRelationships { edges { node { %s } } } }"
VAULT = "query($family: ID!) { vault(familyId: $family) { %s } }"
FAMILY_SIDE = union(
    holders(FAMILY, "REQUESTS_READ"), *(holders(a, "REQUESTS_READ") for a in REQUEST_ADVOCATES)
)
CHILD_RECORD = holders(FAMILY, "REQUESTS_READ", "VAULT_READ")
EVENT = "subscription($after: String) { %s(after: $after) { %s } }"

FIELDS: dict[str, list[Check]] = {
    "Query.vault": [Read(VAULT % "__typename", "vault", union(holders(FAMILY, "VAULT_READ"), GRANTED_ANY))],
    "Vault.children": [
        Read(VAULT % "children { id }", "vault.children", union(holders(FAMILY, "VAULT_READ"), GRANTED_ANY))
    ],
    "Vault.evidence": [
        Read(
            VAULT % "evidence { edges { node { id title } } }",
            "vault.evidence",
            union(holders(FAMILY, "VAULT_READ"), holders(ADV_EVIDENCE, "VAULT_READ")),
        )
    ],
    "Evidence.documents": [
        Read(
            VAULT % "evidence { edges { node { documents { edges { node { id filename } } } } } }",
            "vault.evidence.edges.*.node.documents",
            union(holders(FAMILY, "VAULT_READ"), holders(ADV_EVIDENCE, "VAULT_READ")),
        ),
        Read(
            "query($evidence: ID!) { node(id: $evidence) { ... on Evidence {"
            " documents { edges { node { id } } } } } }",
            "node.documents",
            holders(FAMILY, "VAULT_READ"),
        ),
    ],
    "Document.evidence": [
        Read(
            VAULT % "evidence { edges { node { documents { edges { node { evidence { id } } } } } } }",
            "vault.evidence.edges.*.node.documents.edges.*.node.evidence",
            union(holders(FAMILY, "VAULT_READ"), holders(ADV_EVIDENCE, "VAULT_READ")),
        ),
        Read(
            "query($document: ID!) { node(id: $document) { ... on Document { evidence { id } } } }",
            "node.evidence",
            holders(FAMILY, "VAULT_READ"),
        ),
    ],
    # A signed link: to the family, and to the advocate whose live EVIDENCE grant covers the child
    # (never to the advocates whose grants expired or were revoked, nor to other scopes).
    "Document.downloadUrl": [
        Download(
            VAULT % "evidence { edges { node { documents { edges { node { downloadUrl } } } } } }",
            "vault.evidence.edges.*.node.documents.edges.*.node.downloadUrl",
            union(holders(FAMILY, "VAULT_READ"), holders(ADV_EVIDENCE, "VAULT_READ")),
        ),
        Download(
            "query($document: ID!) { node(id: $document) { ... on Document { downloadUrl } } }",
            "node.downloadUrl",
            holders(FAMILY, "VAULT_READ"),
        ),
    ],
    "Vault.timeline": [
        Read(
            VAULT % "timeline { edges { node { id title } } }",
            "vault.timeline",
            union(holders(FAMILY, "VAULT_READ"), holders(ADV_TIMELINE, "VAULT_READ")),
        )
    ],
    "Vault.ehcpCases": [
        Read(
            VAULT % "ehcpCases { stage }",
            "vault.ehcpCases",
            union(holders(FAMILY, "VAULT_READ"), holders(ADV_EHCP, "VAULT_READ")),
        )
    ],
    # Each family's own (the other family sees its own here).
    "User.family": [
        Read("{ viewer { family { id } } }", "viewer.family", union(holders(FAMILY), names(OTHER_FAMILY)))
    ],
    "Family.children": [
        Read(
            "{ viewer { family { children { id } } } }",
            "viewer.family.children",
            holders(FAMILY, "VAULT_READ"),
        ),
        Read(
            REQUESTS % "family { children { id } }",
            "supportRequests.edges.*.node.family.children",
            CHILD_RECORD,
        ),
    ],
    "Family.vaultAccessLog": [
        Read(
            "{ viewer { family { vaultAccessLog { edges { node { id what } } } } } }",
            "viewer.family.vaultAccessLog",
            holders(FAMILY, "VAULT_READ"),
        )
    ],
    "Family.vaultGrants": [
        Read(
            "{ viewer { family { vaultGrants { id } } } }",
            "viewer.family.vaultGrants",
            holders(FAMILY, "VAULT_READ"),
        ),
        Read(
            REQUESTS % "family { vaultGrants { id } }",
            "supportRequests.edges.*.node.family.vaultGrants",
            CHILD_RECORD,
        ),
    ],
    "Family.grants": [
        Read(
            "{ viewer { family { grants { edges { node { id } } } } } }",
            "viewer.family.grants",
            holders(FAMILY, "VAULT_READ"),
        ),
        Read(
            REQUESTS % "family { grants { edges { node { id } } } }",
            "supportRequests.edges.*.node.family.grants",
            CHILD_RECORD,
        ),
    ],
    "SupportRequest.child": [
        Read(REQUESTS % "child { id displayName }", "supportRequests.edges.*.node.child", CHILD_RECORD),
        Live(
            EVENT % ("supportRequestUpdated", "supportRequest { child { id } }"),
            "supportRequest.child",
            holders(FAMILY, "REQUESTS_READ", "VAULT_READ", "EVENTS_SUBSCRIBE"),
        ),
    ],
    "SupportRequest.family": [
        Read(REQUESTS % "family { id }", "supportRequests.edges.*.node.family", FAMILY_SIDE),
        Live(
            EVENT % ("supportRequestUpdated", "supportRequest { family { id } }"),
            "supportRequest.family",
            union(
                holders(FAMILY, "REQUESTS_READ", "EVENTS_SUBSCRIBE"),
                *(holders(a, "REQUESTS_READ", "EVENTS_SUBSCRIBE") for a in REQUEST_ADVOCATES),
            ),
        ),
    ],
    "SupportRelationship.child": [
        Read(RELATIONSHIPS % "child { id }", "supportRelationships.edges.*.node.child", CHILD_RECORD)
    ],
    "SupportRelationship.family": [
        Read(RELATIONSHIPS % "family { id }", "supportRelationships.edges.*.node.family", FAMILY_SIDE)
    ],
    "SupportRelationship.vaultGrants": [
        Read(
            RELATIONSHIPS % "vaultGrants { id status }",
            "supportRelationships.edges.*.node.vaultGrants",
            union(CHILD_RECORD, *(holders(a, "REQUESTS_READ", "VAULT_READ") for a in REQUEST_ADVOCATES)),
        )
    ],
    "SupportRelationship.grants": [
        Read(
            RELATIONSHIPS % "grants { edges { node { id status } } }",
            "supportRelationships.edges.*.node.grants",
            union(CHILD_RECORD, *(holders(a, "REQUESTS_READ", "VAULT_READ") for a in REQUEST_ADVOCATES)),
        )
    ],
    # Only the advocates whose grants ended hear of it, and only with VAULT_READ.
    "AccessRevokedEvent.vaultGrant": [
        Live(
            EVENT % ("accessRevoked", "vaultGrant { id status }"),
            "vaultGrant",
            names(ADV_EXPIRED, ADV_REVOKED),
        )
    ],
    "AccessRevokedEvent.family": [
        Live(EVENT % ("accessRevoked", "family { id }"), "family", names(ADV_EXPIRED, ADV_REVOKED))
    ],
    # Payloads give back what the writer just wrote: the family, with VAULT_WRITE.
    "AddChildPayload.child": [
        Write(
            'mutation { addChild(input: {displayName: "New", dateOfBirth: "2019-01-01"}) { child { id } } }',
            "addChild.child",
            union(holders(FAMILY, "VAULT_WRITE"), names(OTHER_FAMILY)),
        )
    ],
    "UpdateChildPayload.child": [
        Write(
            "mutation($child: ID!) {"
            ' updateChild(input: {childId: $child, localAuthority: "Leeds"}) { child { id } } }',
            "updateChild.child",
            holders(FAMILY, "VAULT_WRITE"),
        )
    ],
    "EvidencePayload.evidence": [
        Write(
            "mutation($child: ID!) { addEvidence(input: {childId: $child,"
            ' title: "Letter", category: EP_REPORT, date: "2025-01-01"}) { evidence { id } } }',
            "addEvidence.evidence",
            holders(FAMILY, "VAULT_WRITE"),
        )
    ],
    "CreateDocumentUploadPayload.document": [
        Write(
            "mutation($evidence: ID!) { createDocumentUpload(input: {evidenceId: $evidence,"
            ' filename: "a.pdf", contentType: "application/pdf", byteSize: 10,'
            ' sha256: "0000000000000000000000000000000000000000000000000000000000000000"})'
            " { document { id } } }",
            "createDocumentUpload.document",
            holders(FAMILY, "VAULT_WRITE"),
        )
    ],
    # The family's session deletes it first (actors are tried in order); to every later writer it
    # is gone (NOT_FOUND), and everyone else is refused before: only the family ever sees it.
    "DocumentPayload.document": [
        Write(
            "mutation($doomed: ID!) { deleteDocument(input: {documentId: $doomed}) { document { id } } }",
            "deleteDocument.document",
            names(FAMILY),
        )
    ],
    # As deleteDocument: the family's session deletes them first, and no one else ever sees them.
    "DeleteChildPayload.child": [
        Write(
            "mutation($doomedChild: ID!) { deleteChild(input: {childId: $doomedChild}) { child { id } } }",
            "deleteChild.child",
            names(FAMILY),
        )
    ],
    "DeleteTimelineEntryPayload.timelineEntry": [
        Write(
            "mutation($doomedEntry: ID!) {"
            " deleteTimelineEntry(input: {timelineEntryId: $doomedEntry}) { timelineEntry { id } } }",
            "deleteTimelineEntry.timelineEntry",
            names(FAMILY),
        )
    ],
    "TimelineEntryPayload.timelineEntry": [
        Write(
            "mutation($child: ID!) { addTimelineEntry(input: {childId: $child,"
            ' date: "2025-02-01", title: "Call"}) { timelineEntry { id } } }',
            "addTimelineEntry.timelineEntry",
            holders(FAMILY, "VAULT_WRITE"),
        )
    ],
    "EhcpCasePayload.ehcpCase": [
        Write(
            "mutation($child: ID!) { updateEhcpCase(input: {childId: $child, stage: ASSESSING})"
            " { ehcpCase { stage } } }",
            "updateEhcpCase.ehcpCase",
            holders(FAMILY, "VAULT_WRITE"),
        )
    ],
    "VaultGrantPayload.vaultGrant": [
        Write(
            "mutation($child: ID!, $relationship: ID!) { grantVaultAccess(input:"
            " {relationshipId: $relationship, scopes: [EVIDENCE], childIds: [$child]})"
            " { vaultGrant { id } } }",
            "grantVaultAccess.vaultGrant",
            holders(FAMILY, "VAULT_WRITE"),
        )
    ],
}

# A notification opens what it is about only for whoever that thing's own rule lets see it.
NOTIFICATION_SUBJECTS = union(
    holders(FAMILY, "NOTIFICATIONS_READ", "REQUESTS_READ"),
    *(holders(a, "NOTIFICATIONS_READ", "REQUESTS_READ") for a in REQUEST_ADVOCATES),
)

INTROSPECT = """
{
  node: __type(name: "Node") { possibleTypes { name } }
  __schema {
    types {
      name kind
      fields(includeDeprecated: true) { name type { ...T } }
    }
  }
}
fragment T on __Type { name kind ofType { name kind ofType { name kind ofType { name kind } } } }
"""


def _named(t: dict[str, Any]) -> str:
    while t.get("ofType"):
        t = t["ofType"]
    return str(t["name"])


async def _schema_entries(gql: GraphQLClient) -> tuple[set[str], set[str]]:
    """Node types, and the fields whose type is (a list or connection of) a Vault type."""
    data = await gql.data(INTROSPECT)
    node_types = {t["name"] for t in data["node"]["possibleTypes"]}
    types = {t["name"]: t for t in data["__schema"]["types"]}

    def inner(name: str) -> str:
        if name.endswith("Connection"):
            edge = _named(next(f for f in types[name]["fields"] if f["name"] == "edges")["type"])
            return _named(next(f for f in types[edge]["fields"] if f["name"] == "node")["type"])
        return name

    fields = set()
    for name, t in types.items():
        if t["kind"] != "OBJECT" or name.startswith("__") or name.endswith(("Connection", "Edge")):
            continue
        for f in t["fields"] or []:
            if inner(_named(f["type"])) in VAULT_TYPES or f"{name}.{f['name']}" in VAULT_KEYS:
                fields.add(f"{name}.{f['name']}")
    return node_types, fields


def _dig(value: Any, path: str) -> list[Any]:
    values = [value]
    for step in path.split("."):
        out: list[Any] = []
        for v in values:
            if step == "*":
                out.extend(v if isinstance(v, list) else [])
            elif isinstance(v, dict):
                out.append(v.get(step))
        values = out
    return values


def _present(values: list[Any]) -> bool:
    for v in values:
        if isinstance(v, dict) and "edges" in v:
            if v["edges"]:
                return True
        elif isinstance(v, list):
            if v:
                return True
        elif v is not None:
            return True
    return False


async def _live(
    gql: GraphQLClient,
    actor: Actor,
    subscriptions: list[tuple[str, Live]],
    expected: set[str],
    gate: asyncio.Semaphore,
) -> dict[str, bool]:
    """Each subscription replayed from the start of the actor's channel, all on one socket. An
    operation is decided by its first event or its error. Those the tables say the actor sees are
    waited for as long as it takes (only a hang fails); once none of those is pending, the rest
    get a second of silence. Slowness can therefore hide nothing the actor should see, and can
    only make the test miss, never invent, a leak."""
    seen = dict.fromkeys((key for key, _ in subscriptions), False)
    if actor.token is None or actor.user_id is None:
        return seen
    after = encode_cursor(user_channel(actor.user_id), 0)
    async with gate, gql.socket(actor.token) as sock:
        await sock.ack()
        ops = {
            await sock.subscribe(live.subscription, {"after": after}): (key, live)
            for key, live in subscriptions
        }
        undecided = set(ops)
        while undecided:
            awaited = any(ops[op][0] in expected for op in undecided)
            try:
                message = await sock.receive(DEADLINE if awaited else 1.0)
            except TimeoutError:
                break
            op = message.get("id")
            if op not in undecided:
                continue
            undecided.discard(op)
            if message["type"] in ("next", "data"):
                key, live = ops[op]
                event = next(iter((message["payload"].get("data") or {}).values()), None)
                seen[key] = event is not None and _present(_dig(event, live.path))
    return seen


async def test_every_node_type_and_vault_field_for_every_actor_and_path(
    gql: GraphQLClient, clock: Clock
) -> None:
    node_types, vault_fields = await _schema_entries(gql)
    missing = sorted(node_types - set(NODES)) + sorted(vault_fields - set(FIELDS))
    assert not missing, f"no access entry for: {', '.join(missing)} (add one to NODES or FIELDS)"
    assert not set(NODES) - node_types, "entries for Node types that are gone"
    assert not set(FIELDS) - vault_fields, f"entries for fields that are gone: {set(FIELDS) - vault_fields}"

    world = await build(gql, clock)
    actors = world.actors
    failures: list[str] = []

    def compare(what: str, expected: set[str], seen: set[str]) -> None:
        for name in sorted(seen - expected):
            failures.append(f"{what}: {name} sees it and must not")
        for name in sorted(expected - seen):
            failures.append(f"{what}: {name} does not see it and should")

    # node(id), every Node type.
    node_query = "query($id: ID!) { node(id: $id) { __typename id } }"
    for type_name, expect in sorted(NODES.items()):
        seen = set()
        for actor in actors.values():
            body = await gql(node_query, {"id": world.ids[type_name]}, actor.token)
            if (body.get("data") or {}).get("node"):
                seen.add(actor.name)
        compare(f"node({type_name})", expect(world), seen)

    variables = {
        "family": world.family.family_id,
        "child": world.ids["Child"],
        "relationship": world.ids["EvidenceRelationship"],
        "evidence": world.ids["Evidence"],
        "document": world.ids["Document"],
        "doomed": world.ids["DoomedDocument"],
        "doomedChild": world.ids["DoomedChild"],
        "doomedEntry": world.ids["DoomedEntry"],
    }

    def used(query: str) -> dict[str, Any]:
        return {k: v for k, v in variables.items() if f"${k}" in query}

    async def ask_everyone(kind: type[Read]) -> None:
        for key, checks in sorted(FIELDS.items()):
            for check in checks:
                if type(check) is not kind:
                    continue
                assert isinstance(check, Read)
                seen = set()
                for actor in actors.values():
                    body = await gql(check.document, used(check.document), actor.token)
                    values = _dig(body.get("data") or {}, check.path)
                    if _present(values):
                        seen.add(actor.name)
                    if isinstance(check, Download):
                        for url in (v for v in values if v):
                            fetched = await gql.http.get(url)
                            if fetched.status_code != 200 or fetched.content != EP_REPORT:
                                failures.append(f"{key}: {actor.name}'s link answers {fetched.status_code}")
                compare(f"{key} [{check.path}]", check.expect(world), seen)

    # Nested fields and connections, and the download links among them.
    await ask_everyone(Read)
    await ask_everyone(Download)

    # Subscriptions, replayed from the start of each actor's channel (the path live events take too).
    live = [
        (f"{key} [{c.path}] #{n}", c)
        for key, cs in FIELDS.items()
        for n, c in enumerate(cs)
        if isinstance(c, Live)
    ]
    gate = asyncio.Semaphore(6)
    expectations = {label: check.expect(world) for label, check in live}
    results = await asyncio.gather(
        *(
            _live(
                gql,
                actor,
                live,
                {label for label, names in expectations.items() if actor.name in names},
                gate,
            )
            for actor in actors.values()
        )
    )
    for label, _ in live:
        seen = {actor.name for actor, result in zip(actors.values(), results, strict=True) if result[label]}
        compare(f"{label.rsplit(' #', 1)[0]} (subscription replay)", expectations[label], seen)

    # Notifications: each opens its subject only for whoever the subject's own rule lets see it.
    seen = set()
    for actor in actors.values():
        body = await gql("{ notifications { edges { node { subjectId } } } }", None, actor.token)
        subjects = [s for s in _dig(body.get("data") or {}, "notifications.edges.*.node.subjectId") if s]
        for subject in subjects:
            opened = await gql(node_query, {"id": subject}, actor.token)
            if (opened.get("data") or {}).get("node"):
                seen.add(actor.name)
    compare("notification subjects", NOTIFICATION_SUBJECTS(world), seen)

    # Mutation payloads, last: they add to the world.
    await ask_everyone(Write)

    assert not failures, "\n".join(["who sees what differs from the tables:", *failures])
    assert ADMIN in actors
