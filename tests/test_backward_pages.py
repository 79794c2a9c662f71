"""`last` and `before` on every connection: walking a list backwards from its end, one item a page,
meets every item of the forward walk in the same order, with `pageInfo` saying where it stands;
`after` and `before` together bound a slice; and the mistakes a client can make are INVALID for
the argument at fault. Every connection type of the schema is reached (the demo has some of
everything), so a new connection cannot be left without them."""

from __future__ import annotations

import base64
from functools import partial
from pathlib import Path
from typing import Any

from resolvers.demo import ADMIN, ADVOCATES, DEMO_PASSWORD, FAMILY, seed
from tests.client import GraphQLClient
from tests.conftest import Live
from tests.test_total_count import CONNECTIONS, LOG_IN, NESTED, _dig, fill_what_the_demo_lacks

PAGE = "__typename totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor }"
# How each list that holds nested connections names its node type, for `node(id)`.
NESTED_TYPES = {
    "supportRequests": "SupportRequest",
    "supportRelationships": "SupportRelationship",
    "ticketQueue": "Ticket",
    "advocates": "Advocate",
}


def _connection_types() -> set[str]:
    schema = (Path(__file__).parent.parent / "schema.graphql").read_text()
    return {
        line.split()[1] for line in schema.splitlines() if line.startswith("type ") and "Connection" in line
    }


async def _tokens(gql: GraphQLClient, live_server: Live) -> dict[str, str | None]:
    emails = {"family": FAMILY[0], "admin": ADMIN[0], "sendiass": ADVOCATES[2][0]}
    tokens: dict[str, str | None] = {"anonymous": None}
    for who, email in emails.items():
        tokens[who] = (await gql.data(LOG_IN, {"e": email, "p": DEMO_PASSWORD}))["logIn"]["token"]
    await fill_what_the_demo_lacks(gql, live_server, tokens["family"])
    return tokens


async def _walk_back(fetch: Any) -> tuple[list[str], list[str]]:
    """(the forward walk's cursors, the backward walk's cursors put back in list order)."""
    whole = await fetch("first: 100")
    forward = [edge["cursor"] for edge in whole["edges"]]
    assert whole["pageInfo"]["hasPreviousPage"] is False
    backward: list[str] = []
    before: str | None = None
    while True:
        page = await fetch("last: 1" + (f', before: "{before}"' if before else ""))
        info = page["pageInfo"]
        assert info["hasNextPage"] is (before is not None), info
        assert page["totalCount"] == len(forward)
        if not page["edges"]:
            # An empty list.
            assert info["hasPreviousPage"] is False
            assert before is None
            break
        cursor = page["edges"][0]["cursor"]
        assert info["startCursor"] == info["endCursor"] == cursor
        backward.insert(0, cursor)
        assert len(backward) <= len(forward), "the backward walk did not end"
        if not info["hasPreviousPage"]:
            break
        before = cursor
    return forward, backward


async def _listed(
    gql: GraphQLClient,
    token: str | None,
    document: str,
    path: tuple[str, ...],
    variables: dict[str, Any],
    reached: set[str],
    args: str,
) -> Any:
    """One page of a top-level connection of `test_total_count.CONNECTIONS`, with `args`."""
    text = document.replace("first: $n", args).replace("$n: Int, ", "").replace("($n: Int)", "")
    connection = _dig(await gql.data(text % PAGE, variables, token), path)
    reached.add(connection["__typename"])
    return connection


async def _nested(
    gql: GraphQLClient,
    token: str | None,
    parent: str,
    node_type: str,
    field: str,
    reached: set[str],
    args: str,
) -> Any:
    """One page of a connection under the node `parent`, with `args`."""
    text = f"query($p: ID!) {{ node(id: $p) {{ ... on {node_type} {{ {field}({args}) {{ {PAGE} }} }} }} }}"
    connection = (await gql.data(text, {"p": parent}, token))["node"][field]
    reached.add(connection["__typename"])
    return connection


async def test_every_connection_walks_backwards_to_its_start(gql: GraphQLClient, live_server: Live) -> None:
    await seed(live_server.app.state.services)
    tokens = await _tokens(gql, live_server)
    family_id = (await gql.data("{ viewer { family { id } } }", token=tokens["family"]))["viewer"]["family"][
        "id"
    ]
    reached: set[str] = set()
    walked = 0
    for who, document, path in CONNECTIONS:
        variables: dict[str, Any] = {"f": family_id} if "$f" in document else {}
        fetch = partial(_listed, gql, tokens[who], document, path, variables, reached)
        forward, backward = await _walk_back(fetch)
        assert backward == forward, path
        walked += len(forward)
        if len(forward) >= 3:
            # A slice between two cursors, from either end.
            inner = forward[1:-1]
            bounds = f'after: "{forward[0]}", before: "{forward[-1]}"'
            assert [e["cursor"] for e in (await fetch(f"first: 100, {bounds}"))["edges"]] == inner
            assert [e["cursor"] for e in (await fetch(f"last: 100, {bounds}"))["edges"]] == inner
    for who, outer, field in NESTED:
        name = outer.split("(")[0]
        counted = f"{{ {outer} {{ edges {{ node {{ id {field}(first: 100) {{ totalCount }} }} }} }} }}"
        listing = await gql.data(counted, token=tokens[who])
        parents = [e["node"] for e in listing[name]["edges"]]
        parent = max(parents, key=lambda node: node[field]["totalCount"])
        fetch = partial(_nested, gql, tokens[who], parent["id"], NESTED_TYPES[name], field, reached)
        forward, backward = await _walk_back(fetch)
        assert backward == forward, (name, field)
        walked += len(forward)
    # An evidence item's documents (the demo has Alex's EP report), through node(id) as above.
    with_documents = "evidence(first: 100) { edges { node { id documents { totalCount } } } }"
    listed = await gql.data(
        f"query($f: ID!) {{ vault(familyId: $f) {{ {with_documents} }} }}", {"f": family_id}, tokens["family"]
    )
    evidence = [e["node"] for e in listed["vault"]["evidence"]["edges"]]
    holder = max(evidence, key=lambda node: node["documents"]["totalCount"])
    assert holder["documents"]["totalCount"] > 0
    fetch = partial(_nested, gql, tokens["family"], holder["id"], "Evidence", "documents", reached)
    forward, backward = await _walk_back(fetch)
    assert backward == forward
    walked += len(forward)
    assert walked > 0
    assert reached == _connection_types()


BAD_WINDOWS = [
    ("first: 2, last: 2", "last"),
    ("last: -1", "last"),
    ("last: 101", "last"),
    ('last: 2, before: "bm90IGEgY3Vyc29y"', "before"),
    ('before: "bm90IGEgY3Vyc29y"', "before"),
    # A cursor of nested brackets (deep recursion in a JSON decoder), and one far too long.
    (f'after: "{base64.urlsafe_b64encode(b"[" * 3000).decode()}"', "after"),
    ('before: "' + "A" * 600 + '"', "before"),
]


async def test_a_bad_window_is_invalid_for_its_argument(gql: GraphQLClient, live_server: Live) -> None:
    await seed(live_server.app.state.services)
    tokens = await _tokens(gql, live_server)
    for arguments, field in BAD_WINDOWS:
        for document in (
            "{ advocates(%s) { edges { cursor } } }",
            "{ ticketQueue(%s) { edges { cursor } } }",
            "{ supportRequests(first: 5) { edges { node { messages(%s) { edges { cursor } } } } } }",
        ):
            who = "sendiass" if "ticketQueue" in document else "family"
            body = await gql(document % arguments, token=tokens[who])
            errors = body.get("errors") or []
            assert errors, (document, body)
            assert {(e["extensions"]["code"], e["extensions"]["reason"]) for e in errors} == {
                ("BAD_USER_INPUT", "INVALID")
            }, errors
            assert {e["extensions"]["field"] for e in errors} == {field}, errors


async def test_last_takes_the_place_of_first_s_default(gql: GraphQLClient, live_server: Live) -> None:
    """`messages` pages 50 by default; `last: 2` alone is the thread's newest two, oldest first."""
    await seed(live_server.app.state.services)
    tokens = await _tokens(gql, live_server)
    cursors = "{ edges { cursor } }"
    document = (
        f"{{ supportRequests(first: 20) {{ edges {{ node {{ all: messages(first: 100) {cursors} "
        f"tail: messages(last: 2) {cursors} same: messages(first: 50, last: 2) {cursors} }} }} }} }}"
    )
    data = await gql.data(document, token=tokens["family"])
    seen = 0
    for edge in data["supportRequests"]["edges"]:
        node = edge["node"]
        whole = [e["cursor"] for e in node["all"]["edges"]]
        assert [e["cursor"] for e in node["tail"]["edges"]] == whole[-2:]
        assert node["same"] == node["tail"]
        seen += len(whole) >= 2
    assert seen > 0
