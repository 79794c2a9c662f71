"""No client mistake is an internal error (SPEC §12): each is answered with a code, nothing changes,
and nothing is logged as a failure of ours.

Every test drives the served app over HTTP or websockets and watches the server's logs: a masked
INTERNAL_SERVER_ERROR, a 5xx or a logged traceback is a bug.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport
from strawberry.relay import GlobalID
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from models.families import Child
from models.vault import VaultGrant
from resolvers.pagination import encode_cursor
from tests.client import DEADLINE, LEGACY_WS, GraphQLClient
from tests.conftest import Live
from tests.factories import ADD_CHILD, add_child, advocate, send_request, sign_up
from tests.test_vault import GRANT, _supported

HUGE = 2**63
NODE = "query($id: ID!) { node(id: $id) { id } }"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def failures() -> Iterator[list[logging.LogRecord]]:
    """What the server logs while the test runs (uvicorn's loggers do not propagate to the root
    logger, so they are watched too); `_no_failures` picks out errors and tracebacks."""
    handler = _Collect()
    watched = [logging.getLogger(), logging.getLogger("uvicorn"), logging.getLogger("uvicorn.error")]
    for logger in watched:
        logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        for logger in watched:
            logger.removeHandler(handler)


def _gid(type_name: str, node_id: object) -> str:
    return base64.b64encode(f"{type_name}:{node_id}".encode()).decode()


def _codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []]


def _no_failures(failures: list[logging.LogRecord]) -> None:
    assert [(r.name, r.getMessage()) for r in failures if r.levelno >= logging.ERROR or r.exc_info] == []


# --- global ids -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "global_id",
    [
        _gid("Nope", 1),  # a type the schema does not have
        _gid("UserError", 1),  # a type that is not a Node
        _gid("Vault", 1),  # a type that is not a Node
        "not-an-id!",  # not base64
        base64.b64encode(b"no colon").decode(),
    ],
)
async def test_node_with_an_id_of_no_node_type_is_bad_user_input(
    gql: GraphQLClient, failures: list[logging.LogRecord], global_id: str
) -> None:
    family = await sign_up(gql)
    body = await gql(NODE, {"id": global_id}, family.token)
    assert body["data"] == {"node": None}
    assert _codes(body) == ["BAD_USER_INPUT"]
    await asyncio.sleep(0)
    _no_failures(failures)


@pytest.mark.parametrize("type_name", ["User", "Child", "SupportRequest", "Message", "Ticket"])
@pytest.mark.parametrize("node_id", [HUGE, 2**64 + 5, -1, 0, "12abc", "1e3", " 1"])
async def test_node_with_an_id_that_cannot_name_a_row_is_null(
    gql: GraphQLClient, failures: list[logging.LogRecord], type_name: str, node_id: object
) -> None:
    family = await sign_up(gql)
    body = await gql(NODE, {"id": _gid(type_name, node_id)}, family.token)
    assert (body.get("data") == {"node": None} and not body.get("errors")) or _codes(body) == ["NOT_FOUND"], (
        body
    )
    _no_failures(failures)


async def test_huge_ids_in_mutation_inputs_are_not_found_and_change_nothing(
    gql: GraphQLClient, failures: list[logging.LogRecord]
) -> None:
    family, child, adv, request_id, relationship = await _supported(gql)
    huge_child = _gid("Child", HUGE)
    result = (
        await gql.data(
            GRANT,
            {"input": {"relationshipId": relationship, "scopes": ["EVIDENCE"], "childIds": [huge_child]}},
            family.token,
        )
    )["grantVaultAccess"]
    assert result["userErrors"] == [
        {"code": "NOT_FOUND", "message": result["userErrors"][0]["message"], "field": "childIds"}
    ]
    result = (
        await gql.data(
            GRANT,
            {
                "input": {
                    "relationshipId": _gid("SupportRelationship", HUGE),
                    "scopes": ["EVIDENCE"],
                    "childIds": [child],
                }
            },
            family.token,
        )
    )["grantVaultAccess"]
    assert [e["code"] for e in result["userErrors"]] == ["NOT_FOUND"]
    accept = """mutation($r: ID!) { acceptSupportRequest(input: {requestId: $r}) { userErrors { code } } }"""
    for bad in (_gid("SupportRequest", HUGE), _gid("SupportRequest", "x"), _gid("Nope", 1)):
        data = await gql.data(accept, {"r": bad}, adv.token)
        assert data["acceptSupportRequest"]["userErrors"] == [{"code": "NOT_FOUND"}], bad
    assert await VaultGrant.all().count() == 0
    _no_failures(failures)


@pytest.mark.parametrize("row_id", [HUGE, 2**64, -(2**63) - 1])
async def test_cursors_past_the_id_range_are_bad_user_input(
    gql: GraphQLClient, failures: list[logging.LogRecord], row_id: int
) -> None:
    family = await sign_up(gql)
    query = "query($a: String) { notifications(after: $a) { edges { node { id } } } }"
    body = await gql(query, {"a": encode_cursor("notification", row_id)}, family.token)
    assert (body.get("data") == {"notifications": {"edges": []}} and not body.get("errors")) or _codes(
        body
    ) == ["BAD_USER_INPUT"], body
    adv = await advocate(gql)
    query = "query($a: String) { ticketQueue(after: $a) { edges { node { id } } } }"
    for cursor in (encode_cursor("ticket", row_id), "eyJ0aWNrZXQiLCIxIl0", "W10", "bnVsbA"):
        body = await gql(query, {"a": cursor}, adv.token)
        assert body.get("data") is None or _codes(body) in ([], ["BAD_USER_INPUT"]), body
        assert "INTERNAL_SERVER_ERROR" not in _codes(body)
    _no_failures(failures)


# --- strings and dates ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["\ud800", "Al\udfffex", "Al\x00ex"])
async def test_lone_surrogates_and_nul_are_bad_user_input_anywhere(
    gql: GraphQLClient, failures: list[logging.LogRecord], bad: str
) -> None:
    family = await sign_up(gql)
    payload = {"displayName": bad, "dateOfBirth": "2016-03-14", "localAuthority": "Leeds"}
    raw = json.dumps({"query": ADD_CHILD, "variables": {"input": payload}})
    response = await gql.http.post(
        "/graphql",
        content=raw,
        headers={"Authorization": f"Bearer {family.token}", "Content-Type": "application/json"},
    )
    assert response.status_code in (200, 400), response.text
    body = response.json()
    assert _codes(body) == ["BAD_USER_INPUT"] or body["data"]["addChild"]["userErrors"][0]["code"] == (
        "INVALID"
    ), body
    # As a literal in the document, and in a string that is not stored (a password).
    escaped = bad.encode("unicode_escape").decode().replace("\\x", "\\u00")
    literal = f'mutation {{ logIn(input: {{email: "a@b.test", password: "{escaped}"}}) {{ token }} }}'
    response = await gql.http.post("/graphql", content=json.dumps({"query": literal}))
    assert response.status_code in (200, 400), response.text
    assert "INTERNAL_SERVER_ERROR" not in _codes(response.json())
    assert await Child.all().count() == 0
    _no_failures(failures)


@pytest.mark.parametrize(
    "expires_at",
    ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59.999999-00:01"],
)
async def test_dates_out_of_range_are_bad_user_input(
    gql: GraphQLClient, failures: list[logging.LogRecord], expires_at: str
) -> None:
    family, child, _, _, relationship = await _supported(gql)
    body = await gql(
        GRANT,
        {
            "input": {
                "relationshipId": relationship,
                "scopes": ["EVIDENCE"],
                "childIds": [child],
                "expiresAt": expires_at,
            }
        },
        family.token,
    )
    assert _codes(body) == ["BAD_USER_INPUT"], body
    token = (
        "mutation($e: DateTime) { createApiToken(input: "
        '{name: "x", scopes: [VAULT_READ], expiresAt: $e}) { secret } }'
    )
    body = await gql(token, {"e": expires_at}, family.token)
    assert _codes(body) == ["BAD_USER_INPUT"], body
    assert await VaultGrant.all().count() == 0
    _no_failures(failures)


# --- transports -------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["abc", _gid("SupportRequest", "abc"), _gid("SupportRequest", HUGE)])
async def test_message_added_with_a_non_numeric_id_is_an_error_for_that_operation(
    gql: GraphQLClient, failures: list[logging.LogRecord], bad: str
) -> None:
    family = await sign_up(gql)
    query = "subscription($r: ID) { messageAdded(requestId: $r) { cursor } }"
    async with gql.socket(family.token) as sock:
        await sock.ack()
        op = await sock.subscribe(query, {"r": bad})
        result = await sock.next_event(op)
        assert [e["extensions"]["code"] for e in result["errors"]] in (["NOT_FOUND"], ["BAD_USER_INPUT"])
    _no_failures(failures)


async def test_queries_and_mutations_over_the_legacy_protocol_run_as_over_http(
    gql: GraphQLClient, live_server: Live, failures: list[logging.LogRecord]
) -> None:
    family = await sign_up(gql)
    # Python gql offers the legacy `graphql-ws` protocol by default.
    transport = WebsocketsTransport(
        url=live_server.ws_url, init_payload={"authorization": f"Bearer {family.token}"}
    )
    async with Client(transport=transport) as session:
        viewer = await session.execute(GraphQLRequest("{ viewer { id } }"))
        assert viewer == {"viewer": {"id": family.user_id}}
        added = await session.execute(
            GraphQLRequest(
                ADD_CHILD, variable_values={"input": {"displayName": "Sam", "dateOfBirth": "2017-01-01"}}
            )
        )
        assert added["addChild"]["userErrors"] == []
    assert await Child.all().count() == 1
    # The same rules as HTTP: a bad document is a coded error.
    async with gql.socket(family.token, protocol=LEGACY_WS) as sock:
        await sock.ack()
        op = await sock.subscribe("{ nope }")
        errors = (await sock.next_event(op))["errors"]
        # The legacy protocol's `error` carries one error, not a list.
        assert errors["extensions"]["code"] == "BAD_USER_INPUT", errors
    _no_failures(failures)


async def test_a_subscription_posted_over_http_is_a_coded_error(
    gql: GraphQLClient, failures: list[logging.LogRecord]
) -> None:
    family = await sign_up(gql)
    response = await gql.http.post(
        "/graphql",
        json={"query": "subscription { notificationReceived { cursor } }"},
        headers={"Authorization": f"Bearer {family.token}"},
    )
    assert response.status_code == 400, response.text
    assert _codes(response.json()) == ["BAD_REQUEST"], response.text
    _no_failures(failures)


@pytest.mark.parametrize("depth", [100_000, 2_000])
async def test_deeply_nested_json_is_a_json_error_with_a_code(
    gql: GraphQLClient, failures: list[logging.LogRecord], depth: int
) -> None:
    for body in (
        "[" * depth + "]" * depth,
        '{"query": "{ viewer { id } }", "variables": ' + '{"a":' * depth + "1" + "}" * depth + "}",
    ):
        response = await gql.http.post("/graphql", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, response.text
        assert _codes(response.json()) == ["BAD_REQUEST"], response.text
    _no_failures(failures)


async def test_a_body_that_is_not_json_is_a_json_error_with_a_code(
    gql: GraphQLClient, failures: list[logging.LogRecord]
) -> None:
    for body in ("{", "\xff", "null", "[]", "1", '{"query": 1}'):
        response = await gql.http.post(
            "/graphql", content=body.encode("latin-1"), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, (body, response.text)
        assert _codes(response.json()) in (["BAD_REQUEST"], ["BAD_USER_INPUT"]), (body, response.text)
    _no_failures(failures)


async def test_grant_ids_of_another_type_are_not_found(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    child = await add_child(gql, family)
    adv = await advocate(gql)
    sent = await send_request(gql, family, GlobalID("Advocate", str(HUGE)).__str__(), child)
    assert [e["code"] for e in sent["userErrors"]] == ["NOT_FOUND"]
    sent = await send_request(gql, family, adv.advocate_id, _gid("Advocate", 1))
    assert [e["code"] for e in sent["userErrors"]] == ["NOT_FOUND"]


async def test_an_unknown_http_method_or_path_is_not_a_5xx(gql: GraphQLClient) -> None:
    for method in ("PUT", "DELETE", "PATCH"):
        response = await gql.http.request(method, "/graphql")
        assert response.status_code < 500
    response = await gql.http.get("/graphql", params={"query": "mutation { logOut { userErrors { code } } }"})
    assert response.status_code < 500
    assert isinstance(response, httpx.Response)


async def test_a_client_that_disconnects_mid_body_is_not_logged_as_an_error(
    gql: GraphQLClient, live_server: Live, failures: list[logging.LogRecord]
) -> None:
    host, port = live_server.url.removeprefix("http://").split(":")
    for _ in range(3):
        reader, writer = await asyncio.open_connection(host, int(port))
        # With `Expect: 100-continue` the server says when the app starts reading the body, so the
        # client hangs up while the request is being read, not before it began.
        writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: 1000\r\n\r\n"
        )
        await writer.drain()
        assert (await asyncio.wait_for(reader.readline(), DEADLINE)).startswith(b"HTTP/1.1 100")
        writer.write(b'{"query": "{ viewer')
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    # The server notices each disconnect on its next turn of the loop: these requests are served
    # after it has (a loaded machine can only make this test pass wrongly, never fail wrongly).
    for _ in range(20):
        assert (await gql.http.get("/healthz")).status_code == 200
    _no_failures(failures)


@pytest.mark.parametrize("subprotocols", [None, ["graphql-sse"]])
async def test_a_socket_without_a_graphql_subprotocol_is_closed_with_4406(
    live_server: Live, subprotocols: list[str] | None
) -> None:
    async with connect(live_server.ws_url, subprotocols=subprotocols) as ws:  # type: ignore[arg-type]
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), DEADLINE)
        assert ws.close_code == 4406


# --- numbers and names the interpreter refuses --------------------------------------------------

# More digits than Python converts from text (its 4,300-digit limit).
LONG_NUMBER = "9" * 5000


async def test_an_integer_of_thousands_of_digits_is_a_coded_error_everywhere(
    gql: GraphQLClient, failures: list[logging.LogRecord]
) -> None:
    """As a JSON variable (HTTP and websocket) and as a literal in the document."""
    body = '{"query": "query($n: Int) { __typename }", "variables": {"n": ' + LONG_NUMBER + "}}"
    response = await gql.http.post("/graphql", content=body, headers={"Content-Type": "application/json"})
    assert (response.status_code, _codes(response.json())) == (400, ["BAD_REQUEST"]), response.text
    literal = await gql.http.post(
        "/graphql", json={"query": "{ advocates(first: " + LONG_NUMBER + ") { totalCount } }"}
    )
    assert _codes(literal.json()) == ["BAD_USER_INPUT"], literal.text
    family = await sign_up(gql)
    async with gql.socket(family.token) as sock:
        await sock.ack()
        await sock.ws.send(
            '{"id": "1", "type": "subscribe", "payload": {"query": "query($n: Int) { __typename }",'
            ' "variables": {"n": ' + LONG_NUMBER + "}}}"
        )
        # Not JSON this server can read: the protocol's close code for a malformed message.
        assert await sock.closed_code() == 4400
    async with gql.socket(family.token) as sock:
        await sock.ack()
        op = await sock.subscribe("{ advocates(first: " + LONG_NUMBER + ") { totalCount } }")
        refused = await sock.next_event(op)
        assert [e["extensions"]["code"] for e in refused["errors"]] == ["BAD_USER_INPUT"]
    _no_failures(failures)


async def test_an_operation_name_with_a_lone_surrogate_is_a_400(
    gql: GraphQLClient, failures: list[logging.LogRecord]
) -> None:
    body = b'{"query": "query A { __typename }", "operationName": "\\ud800"}'
    response = await gql.http.post("/graphql", content=body, headers={"Content-Type": "application/json"})
    assert (response.status_code, _codes(response.json())) == (400, ["BAD_REQUEST"]), response.text
    _no_failures(failures)


async def test_an_unknown_operation_name_is_a_bad_request_on_every_transport(
    gql: GraphQLClient, failures: list[logging.LogRecord]
) -> None:
    family = await sign_up(gql)
    http = await gql.http.post("/graphql", json={"query": "query A { __typename }", "operationName": "Nope"})
    assert (http.status_code, _codes(http.json())) == (400, ["BAD_REQUEST"]), http.text
    async with gql.socket(family.token) as sock:
        await sock.ack()
        await sock.send(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": "query A { __typename }", "operationName": "Nope"},
            }
        )
        refused = await sock.receive()
        assert refused["type"] == "error", refused
        assert [e["extensions"]["code"] for e in refused["payload"]] == ["BAD_REQUEST"]
        assert "Nope" in refused["payload"][0]["message"]
        # The socket goes on: another operation runs.
        op = await sock.subscribe("{ __typename }")
        assert (await sock.next_event(op))["data"] == {"__typename": "Query"}
    sse = await gql.http.post(
        "/graphql",
        json={"query": "subscription A { notificationReceived { cursor } }", "operationName": "Nope"},
        headers={"Authorization": f"Bearer {family.token}", "Accept": "text/event-stream"},
    )
    first = sse.text.split("\r\n\r\n")[0]
    assert first.startswith("event: next\r\ndata: "), sse.text
    shown = json.loads(first.split("data: ", 1)[1])
    assert [e["extensions"]["code"] for e in shown["errors"]] == ["BAD_REQUEST"], sse.text
    _no_failures(failures)


async def test_several_operations_without_a_name_run_none_on_a_socket(
    gql: GraphQLClient, failures: list[logging.LogRecord]
) -> None:
    """The GraphQL spec: a document of several operations needs `operationName`."""
    family = await sign_up(gql)
    document = "query A { __typename } query B { viewer { id } }"
    async with gql.socket(family.token) as sock:
        await sock.ack()
        await sock.send({"id": "1", "type": "subscribe", "payload": {"query": document}})
        refused = await sock.receive()
        assert refused["type"] == "error", refused
        assert [e["extensions"]["code"] for e in refused["payload"]] == ["BAD_REQUEST"]
        named = {"query": document, "operationName": "B"}
        await sock.send({"id": "2", "type": "subscribe", "payload": named})
        assert (await sock.next_event("2"))["data"]["viewer"]["id"]
    _no_failures(failures)
