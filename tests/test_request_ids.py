"""Request ids: answered in `X-Request-ID`, shown in an error's `requestId`, on every log line."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import uuid

import pytest
from websockets.asyncio.client import connect

import server
from tests.client import TRANSPORT_WS, GraphQLClient, eventually
from tests.factories import sign_up
from tests.servers import serve

VIEWER = "{ viewer { id } }"


async def test_every_answer_carries_a_request_id_of_its_own(gql: GraphQLClient) -> None:
    first = await gql.http.post("/graphql", json={"query": VIEWER})
    second = await gql.http.post("/graphql", json={"query": VIEWER})
    ids = [first.headers["X-Request-ID"], second.headers["X-Request-ID"]]
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids), ids
    assert ids[0] != ids[1]
    # Refusals before the API too: a body past the limit.
    too_large = await gql.http.post("/graphql", content=b"x" * (3 * 1024 * 1024))
    assert too_large.status_code == 413
    assert too_large.headers["X-Request-ID"]


async def test_a_well_formed_client_request_id_is_kept_and_any_other_replaced(gql: GraphQLClient) -> None:
    kept = await gql.http.post("/graphql", json={"query": VIEWER}, headers={"X-Request-ID": "spa-42:retry.1"})
    assert kept.headers["X-Request-ID"] == "spa-42:retry.1"
    for bad in (b"x" * 65, b"has space", b"<script>", "\u00e9t\u00e9".encode()):
        replaced = await gql.http.post("/graphql", json={"query": VIEWER}, headers={b"X-Request-ID": bad})
        assert re.fullmatch(r"[0-9a-f]{16}", replaced.headers["X-Request-ID"]), bad


async def test_the_log_lines_of_a_request_carry_its_id(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Every line written while a request is served names it (the ORM's statements here)."""
    account = await sign_up(gql)
    with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
        answer = await gql.http.post(
            "/graphql",
            json={"query": VIEWER},
            headers={"Authorization": f"Bearer {account.token}", "X-Request-ID": "trace-me-123"},
        )
    assert answer.json()["data"]["viewer"]["id"] == account.user_id
    lines = [
        r
        for r in caplog.records
        if r.name == "tortoise.db_client" and getattr(r, "request_id", None) == "trace-me-123"
    ]
    assert lines, "the request's statements were not logged with its id"


async def test_the_access_log_of_a_served_process_names_each_request(settings: server.Settings) -> None:
    env = {"DATABASE_URL": settings.database_url, "BROADCAST_NAMESPACE": f"ids-{uuid.uuid4().hex[:8]}"}
    async with serve(env) as served:
        answer = await served.client.http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"X-Request-ID": "access-log-check"}
        )
        assert answer.headers["X-Request-ID"] == "access-log-check"

        async def logged() -> bool:
            return "access-log-check" in served.output()

        await eventually(logged, "the access log line of the request")
        line = next(line for line in served.output().splitlines() if "access-log-check" in line)
    assert '"POST /graphql HTTP/1.1" 200' in line
    assert "[access-log-check]" in line


async def test_a_websocket_has_one_access_line_when_it_closes(settings: server.Settings) -> None:
    """With its request id, its upgrade request, 101 and how long it was open; uvicorn's own line
    per handshake is not written at INFO."""
    env = {"DATABASE_URL": settings.database_url, "BROADCAST_NAMESPACE": f"ids-{uuid.uuid4().hex[:8]}"}
    async with serve(env) as served:
        account = await sign_up(served.client)
        async with connect(
            served.client.ws_url,
            subprotocols=[TRANSPORT_WS],  # type: ignore[list-item]
            additional_headers={"X-Request-ID": "socket-log-check"},
        ) as ws:
            assert ws.response is not None
            assert ws.response.headers["X-Request-ID"] == "socket-log-check"
            await ws.send(
                json.dumps(
                    {"type": "connection_init", "payload": {"authorization": f"Bearer {account.token}"}}
                )
            )
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            assert "socket-log-check" not in served.output()

        async def logged() -> bool:
            return "socket-log-check" in served.output()

        await eventually(logged, "the access log line of the socket")
        output = served.output()
    (line,) = [line for line in output.splitlines() if "socket-log-check" in line]
    assert '"GET /graphql HTTP/1.1" 101' in line
    assert "[accepted]" not in output


async def test_json_logs_are_one_object_a_line_with_the_request_id(
    live_server: object, settings: server.Settings
) -> None:
    """LOG_FORMAT=json: the access log and every other line are JSON objects an aggregator reads;
    the access line holds no query string (a GET operation's variables can name a child)."""
    env = {
        "DATABASE_URL": settings.database_url,
        "BROADCAST_NAMESPACE": f"ids-{uuid.uuid4().hex[:8]}",
        "LOG_FORMAT": "json",
    }
    async with serve(env) as served:
        answer = await served.client.http.get(
            "/graphql",
            params={"query": "query($n: String) { __typename }", "variables": '{"n": "Alex"}'},
            headers={"X-Request-ID": "json-log-check", "Accept": "application/json"},
        )
        assert answer.status_code == 200, answer.text

        async def logged() -> bool:
            return "json-log-check" in served.output()

        await eventually(logged, "the access log line of the request")
        output = served.output()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    access = [line for line in lines if line.get("request_id") == "json-log-check"]
    assert len(access) == 1, access
    assert access[0]["logger"] == "senvault.access"
    assert (access[0]["method"], access[0]["path"], access[0]["status"]) == ("GET", "/graphql", 200)
    assert access[0]["duration_ms"] >= 0
    assert "Alex" not in output
    # uvicorn's own lines (startup) are JSON too, outside any request.
    assert any(line["logger"].startswith("uvicorn") and line["request_id"] == "-" for line in lines), lines
    # With mail written to a folder (the embedded default), the server says so as it starts.
    assert any(
        line["level"] == "WARNING" and line["logger"] == "senvault.mail" and "MAIL_URL" in line["message"]
        for line in lines
    ), lines


def test_an_unknown_log_format_is_refused_at_start() -> None:
    with pytest.raises(SystemExit, match="LOG_FORMAT must be one of text, json"):
        server.Settings.from_env({"LOG_FORMAT": "yaml"})


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_statements_and_their_values_stay_out_of_the_log_even_at_debug(fmt: str) -> None:
    """The ORM logs each statement with its parameters (names, titles) at DEBUG: with the served
    logging turned up to DEBUG, those lines are still not written (in a process of its own, so
    this one's logging is left alone)."""
    script = (
        "import logging, logging.config, sys\n"
        "from resolvers.logs import log_config\n"
        f"config = log_config({fmt!r})\n"
        "config['root']['level'] = 'DEBUG'\n"
        "logging.config.dictConfig(config)\n"
        "logging.getLogger('tortoise.db_client').debug('SELECT %s', 'Alex Smith')\n"
        "logging.getLogger('senvault.check').debug('debug lines are written')\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    written = ran.stdout + ran.stderr
    assert "debug lines are written" in written
    assert "Alex Smith" not in written
