"""`totalCount` on every connection: the number of items the whole list holds, for its viewer,
whatever the page size (the demo data has some of everything)."""

from __future__ import annotations

from typing import Any

from strawberry.relay import GlobalID

from resolvers import exports
from resolvers.demo import ADMIN, ADVOCATES, DEMO_PASSWORD, FAMILY, seed
from tests.client import GraphQLClient
from tests.conftest import Live
from tests.factories import erase_now, sign_up

LOG_IN = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }"
CREATE_TOKEN = "mutation($n: String!) { createApiToken(input: {name: $n, scopes: [VAULT_READ]}) { secret } }"

# (who, document, path to the connection): each connection of the schema, asked of a viewer whose
# list holds something. `$n` is the page size.
CONNECTIONS: list[tuple[str, str, tuple[str, ...]]] = [
    ("anonymous", "query($n: Int) { advocates(first: $n) { %s } }", ("advocates",)),
    ("admin", "query($n: Int) { verificationQueue(first: $n) { %s } }", ("verificationQueue",)),
    ("family", "query($n: Int) { supportRequests(first: $n) { %s } }", ("supportRequests",)),
    ("family", "query($n: Int) { supportRelationships(first: $n) { %s } }", ("supportRelationships",)),
    ("family", "query($n: Int) { notifications(first: $n) { %s } }", ("notifications",)),
    ("sendiass", "query($n: Int) { ticketQueue(first: $n) { %s } }", ("ticketQueue",)),
    ("family", "query($n: Int) { viewer { family { vaultAccessLog(first: $n) { %s } } } }",
     ("viewer", "family", "vaultAccessLog")),
    ("family", "query($n: Int, $f: ID!) { vault(familyId: $f) { evidence(first: $n) { %s } } }",
     ("vault", "evidence")),
    ("family", "query($n: Int, $f: ID!) { vault(familyId: $f) { timeline(first: $n) { %s } } }",
     ("vault", "timeline")),
    ("family", "query($n: Int) { viewer { family { grants(first: $n) { %s } } } }",
     ("viewer", "family", "grants")),
    ("family", "query($n: Int) { viewer { apiTokens(first: $n) { %s } } }", ("viewer", "apiTokens")),
    ("family", "query($n: Int) { viewer { sessions(first: $n) { %s } } }", ("viewer", "sessions")),
    ("family", "query($n: Int) { viewer { dataExports(first: $n) { %s } } }", ("viewer", "dataExports")),
    ("admin", "query($n: Int) { erasureRecords(first: $n) { %s } }", ("erasureRecords",)),
]  # fmt: skip
# Connections under each node of a list: every node's count, in one statement for the page.
NESTED: list[tuple[str, str, str]] = [
    ("family", "supportRequests(first: 20)", "messages"),
    ("family", "supportRelationships(first: 20)", "messages"),
    ("sendiass", "ticketQueue(first: 20)", "notes"),
    ("family", "supportRelationships(first: 20)", "grants"),
    ("anonymous", "advocates(first: 20)", "reviews"),
]


async def fill_what_the_demo_lacks(gql: GraphQLClient, live_server: Live, family_token: str | None) -> None:
    """API tokens, data exports and an erasure record, which the demo does not make."""
    for name in ("CRM", "Calendar", "Backup"):
        await gql.data(CREATE_TOKEN, {"n": name}, family_token)
    for _ in range(2):
        await gql.data("mutation { requestDataExport { dataExport { id } } }", token=family_token)
        await exports.run_pending(live_server.app.state.services)
    for _ in range(2):
        gone = await sign_up(gql)
        await erase_now(live_server.app.state.services, int(GlobalID.from_id(gone.user_id).node_id))


def _dig(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


async def test_total_count_is_the_whole_list_on_every_connection(
    gql: GraphQLClient, live_server: Live
) -> None:
    await seed(live_server.app.state.services)
    emails = {"family": FAMILY[0], "admin": ADMIN[0], "sendiass": ADVOCATES[2][0]}
    tokens: dict[str, str | None] = {"anonymous": None}
    for who, email in emails.items():
        tokens[who] = (await gql.data(LOG_IN, {"e": email, "p": DEMO_PASSWORD}))["logIn"]["token"]
    await fill_what_the_demo_lacks(gql, live_server, tokens["family"])
    family_id = (await gql.data("{ viewer { family { id } } }", token=tokens["family"]))["viewer"]["family"][
        "id"
    ]
    counted = 0
    for who, document, path in CONNECTIONS:
        variables: dict[str, Any] = {"f": family_id} if "$f" in document else {}
        whole = await gql.data(document % "edges { cursor }", {**variables, "n": 100}, tokens[who])
        items = len(_dig(whole, path)["edges"])
        for size in (1, 100):
            page = await gql.data(
                document % "totalCount edges { cursor }", {**variables, "n": size}, tokens[who]
            )
            assert _dig(page, path)["totalCount"] == items, (path, size)
        counted += items > 0
    assert counted >= len(CONNECTIONS) - 1  # the demo fills (nearly) every list
    nested_seen = 0
    for who, outer, inner in NESTED:
        name = outer.split("(")[0]
        document = "{ %s { edges { node { %s(first: 1) { totalCount } all: %s(first: 100) { %s } } } } }"
        data = await gql.data(document % (outer, inner, inner, "edges { cursor }"), token=tokens[who])
        for edge in data[name]["edges"]:
            node = edge["node"]
            assert node[inner]["totalCount"] == len(node["all"]["edges"]), (name, inner)
            nested_seen += node[inner]["totalCount"]
    assert nested_seen > 0
