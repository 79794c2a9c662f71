"""Property-based fuzzing of the whole API (SPEC §12: `INTERNAL_SERVER_ERROR` means a bug).

hypothesis-graphql generates queries and mutations from the served schema, valid ones and ones with
one schema violation each. Each is sent over HTTP or on a new websocket (graphql-transport-ws) as
one of the actors of the generated access test's world (anonymous, the family, advocates with each
kind of grant, other people, an admin, single-scope API tokens). Arguments of type `ID` are drawn
from the world's real ids of every Node type as well as from arbitrary text, so that mutations
reach their checks and not only id parsing.

No answer may be a 5xx or carry `INTERNAL_SERVER_ERROR`, and a socket may close only by refusing a
missing or ended credential (4403). The examples are derandomised and bounded, so every run sends
the same operations and the test stays quick; `FUZZ_EXAMPLES` raises the number for a longer hunt.
"""

from __future__ import annotations

import os
from typing import Any

import graphql
from graphql import StringValueNode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes
from websockets.exceptions import ConnectionClosed

from resolvers.clock import Clock
from schema import schema
from tests.access_world import World, build
from tests.client import TRANSPORT_WS, GraphQLClient

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
SDL = schema.as_str()
# Fields whose success would end the actors the rest of the run needs; they are covered by their own tests.
SPARED = {"logOut"}
_roots = graphql.build_schema(SDL)
assert _roots.query_type is not None
assert _roots.mutation_type is not None
MUTATIONS = [name for name in _roots.mutation_type.fields if name not in SPARED]
QUERIES = list(_roots.query_type.fields)

_text = st.text(max_size=40)


def _strings(values: st.SearchStrategy[str]) -> st.SearchStrategy[StringValueNode]:
    return values.map(nodes.String)


def _scalars(world_ids: list[str]) -> dict[str, st.SearchStrategy[StringValueNode]]:
    dates = st.dates().map(lambda d: d.isoformat())
    datetimes = st.datetimes().map(lambda d: d.isoformat() + "Z")
    ids = st.sampled_from(world_ids) if world_ids else _text
    return {
        "Date": _strings(st.one_of(dates, _text)),
        "DateTime": _strings(st.one_of(datetimes, _text)),
        "ID": _strings(st.one_of(ids, ids, _text)),
    }


def _operations(world_ids: list[str]) -> st.SearchStrategy[Any]:
    scalars = _scalars(world_ids)
    return st.one_of(
        from_schema(SDL, fields=QUERIES, custom_scalars=scalars),
        from_schema(SDL, fields=MUTATIONS, custom_scalars=scalars),
        from_schema(SDL, fields=QUERIES, custom_scalars=scalars, mode=Mode.NEGATIVE),
        from_schema(SDL, fields=MUTATIONS, custom_scalars=scalars, mode=Mode.NEGATIVE),
    )


_world: World | None = None


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_no_generated_operation_is_an_internal_error(
    gql: GraphQLClient, clock: Clock, data: st.DataObject
) -> None:
    global _world
    # Fixtures run once for all examples; the world is built on the first.
    if _world is None:
        _world = await build(gql, clock)
    world = _world
    actor = world.actors[data.draw(st.sampled_from(sorted(world.actors)), label="actor")]
    query = data.draw(_operations(sorted(set(world.ids.values()))), label="operation")
    if data.draw(st.sampled_from(["http", "websocket"]), label="transport") == "http":
        answer = await gql.http.post(
            "/graphql",
            json={"query": query},
            headers={"Authorization": f"Bearer {actor.token}"} if actor.token else {},
        )
        assert answer.status_code < 500, (actor.name, query, answer.status_code, answer.text)
        errors = answer.json().get("errors") or []
    else:
        try:
            errors = await _over_a_socket(gql, actor.token, query)
        except Exception as exc:  # The operation, in the report hypothesis gives.
            raise AssertionError((actor.name, query)) from exc
    codes = [(e.get("extensions") or {}).get("code") for e in errors]
    assert "INTERNAL_SERVER_ERROR" not in codes, (actor.name, query, errors)


async def _over_a_socket(gql: GraphQLClient, token: str | None, query: str) -> list[dict[str, Any]]:
    """The errors of `query` run as one operation on a new socket, up to its `complete`."""
    errors: list[dict[str, Any]] = []
    async with gql.socket(token, TRANSPORT_WS) as sock:
        try:
            first = await sock.receive()
        except ConnectionClosed:
            # Sockets need a live credential: anonymous ones, and revoked or expired tokens, are refused.
            assert sock.ws.close_code == 4403
            return errors
        assert first["type"] == "connection_ack", first
        op_id = await sock.subscribe(query)
        while True:
            message = await sock.receive()
            assert message.get("id") == op_id, message
            if message["type"] == "next":
                errors += message["payload"].get("errors") or []
            elif message["type"] == "error":
                refused: list[dict[str, Any]] = message["payload"]
                return errors + refused
            else:
                assert message["type"] == "complete", message
                return errors
