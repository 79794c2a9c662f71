"""Conventions every area relies on: node(id), errors, limits, HTTP details, the committed schema."""

from __future__ import annotations

import base64
import os
import socket
import uuid
from pathlib import Path

import httpx
import pytest

import resolvers.families
from models.accounts import User
from schema import print_schema
from tests.client import GraphQLClient
from tests.conftest import Live
from tests.factories import add_child, sign_up

NODE = "query($id: ID!) { node(id: $id) { __typename id ... on Child { displayName } } }"


def test_committed_schema_matches_the_code() -> None:
    committed = (Path(__file__).parent.parent / "schema.graphql").read_text()
    assert committed == print_schema(), (
        "schema.graphql is out of date: run `python -m schema > schema.graphql` and commit it"
    )


INTROSPECT_DESCRIPTIONS = """
{ __schema { types {
  name kind description
  fields(includeDeprecated: true) { name description args { name description } }
  inputFields { name description }
  enumValues(includeDeprecated: true) { name description }
} } }
"""


async def test_every_type_field_argument_and_enum_value_is_described(gql: GraphQLClient) -> None:
    """What SPA developers read in GraphiQL and their generated types: nothing left blank."""
    types = (await gql.data(INTROSPECT_DESCRIPTIONS))["__schema"]["types"]
    blank: list[str] = []
    for t in types:
        if t["name"].startswith("__"):
            continue
        if not t["description"]:
            blank.append(t["name"])
        for f in t["fields"] or []:
            if not f["description"]:
                blank.append(f"{t['name']}.{f['name']}")
            blank.extend(f"{t['name']}.{f['name']}({a['name']})" for a in f["args"] if not a["description"])
        blank.extend(f"{t['name']}.{f['name']}" for f in t["inputFields"] or [] if not f["description"])
        blank.extend(f"{t['name']}.{v['name']}" for v in t["enumValues"] or [] if not v["description"])
    assert blank == []


async def test_every_custom_scalar_names_its_specification(gql: GraphQLClient) -> None:
    """Code generators and clients type a scalar from its `specifiedByURL`; without it they fall
    back to `unknown`. GraphQL's own scalars (String, Int, ...) need none."""
    data = await gql.data("{ __schema { types { kind name specifiedByURL } } }")
    builtin = {"String", "Int", "Float", "Boolean", "ID"}
    custom = {t["name"]: t["specifiedByURL"] for t in data["__schema"]["types"] if t["kind"] == "SCALAR"}
    custom = {name: url for name, url in custom.items() if name not in builtin}
    assert {"Date", "DateTime"} <= set(custom)
    assert all(url and url.startswith("https://") for url in custom.values()), custom


async def test_node_returns_own_objects_and_null_for_anything_else(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    other = await sign_up(gql)
    child_id = await add_child(gql, family)
    own = (await gql.data(NODE, {"id": child_id}, family.token))["node"]
    assert own == {"__typename": "Child", "id": child_id, "displayName": "Alex"}
    # Someone else's child, an anonymous caller and an id that never existed look the same.
    assert (await gql.data(NODE, {"id": child_id}, other.token))["node"] is None
    assert (await gql.data(NODE, {"id": child_id}))["node"] is None
    missing = base64.b64encode(b"Child:999999").decode()
    assert (await gql.data(NODE, {"id": missing}, family.token))["node"] is None
    user = (await gql.data(NODE, {"id": family.user_id}, family.token))["node"]
    assert user == {"__typename": "User", "id": family.user_id}
    assert (await gql.data(NODE, {"id": family.user_id}, other.token))["node"] is None


async def test_malformed_global_id_is_a_client_error(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    body = await gql(NODE, {"id": "not base64 at all"}, family.token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_wrong_role_is_forbidden_and_anonymous_is_unauthenticated(gql: GraphQLClient) -> None:
    advocate = await sign_up(gql, "ADVOCATE")
    add = 'mutation { addChild(input: {displayName: "A", dateOfBirth: "2016-01-01"}) { child { id } } }'
    body = await gql(add, token=advocate.token)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await gql(add)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_unexpected_errors_are_masked_with_a_reference(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    family = await sign_up(gql)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(resolvers.families, "add_child", broken)
    body = await gql(
        'mutation { addChild(input: {displayName: "A", dateOfBirth: "2016-01-01"}) { child { id } } }',
        token=family.token,
    )
    error = body["errors"][0]
    assert error["message"] == "Unexpected error."
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "hunter2" not in str(body)
    assert error["extensions"]["requestId"] in caplog.text
    assert "hunter2" in caplog.text  # the detail is in the server log, for whoever investigates


async def test_an_unexpected_database_error_is_logged_without_the_values_it_quotes(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL's message for a broken unique key quotes the key (`DETAIL: Key (email_key)=(…)`):
    a statement that loses such a race unexpectedly is logged by its kind, constraint and stack,
    without the family's address."""
    address = f"private.person.{uuid.uuid4().hex[:8]}@example.test"
    family = await sign_up(gql, email=address)
    existing = await User.get(email_key=address)

    async def racing(*args: object, **kwargs: object) -> None:
        await User.create(
            email=address,
            email_key=address,
            password_hash="x",
            display_name="Someone",
            role=existing.role,
            created_at=existing.created_at,
        )

    monkeypatch.setattr(resolvers.families, "add_child", racing)
    body = await gql(
        'mutation { addChild(input: {displayName: "A", dateOfBirth: "2016-01-01"}) { child { id } } }',
        token=family.token,
    )
    error = body["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert address not in caplog.text
    logged = [r for r in caplog.records if error["extensions"]["requestId"] in r.getMessage()]
    assert logged
    assert "IntegrityError" in logged[0].getMessage()
    assert "racing" in logged[0].getMessage()  # the stack, down to the statement


async def test_alias_limit(gql: GraphQLClient) -> None:
    aliases = "{ " + " ".join(f"a{i}: viewer {{ id }}" for i in range(40)) + " }"
    body = await gql(aliases)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "aliases" in body["errors"][0]["message"]


async def test_token_limit(gql: GraphQLClient) -> None:
    huge = "{ viewer { " + "id " * 3000 + "} }"
    body = await gql(huge)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_queries_over_get_work_and_mutations_over_get_do_not(live_server: Live) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        ok = await http.get("/graphql", params={"query": "{ viewer { id } }"})
        assert ok.status_code == 200
        assert ok.json()["data"] == {"viewer": None}
        refused = await http.get("/graphql", params={"query": "mutation { logOut { userErrors { code } } }"})
        assert refused.status_code == 400
        assert "mutations are not allowed when using GET" in refused.text


async def test_graphiql_is_served_to_browsers(live_server: Live) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        page = await http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "GraphiQL" in page.text


async def test_oversized_body_is_refused_before_parsing(live_server: Live) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        big = await http.post(
            "/graphql",
            content=b'{"query": "' + b" " * (3 * 1024 * 1024) + b'{ viewer { id } }"}',
            headers={"content-type": "application/json"},
        )
    assert big.status_code == 413
    assert big.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_health_and_readiness(live_server: Live) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        health = (await http.get("/healthz")).json()
        this_process = f"{socket.gethostname()}:{os.getpid()}"
        assert health == {"status": "ok", "server": this_process}
        ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "ready": True,
        "checks": {"database": "ok", "broadcast": "ok", "storage": "ok"},
        "server": this_process,
    }


async def test_readiness_reports_a_broken_database(
    live_server: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    import server

    class Unreachable:
        async def execute_query(self, *args: object) -> None:
            raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(server, "get_connection", lambda name: Unreachable())
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "unavailable: ConnectionRefusedError"
