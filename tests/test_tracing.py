"""OpenTelemetry traces, read by a real OTLP/HTTP receiver: a span for each operation, named, with
its type, its document's digest and the request id, and spans for its work; and nothing of what
the family sent, whether in variables or written inline in the document."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import server
from tests.client import eventually
from tests.conftest import Live
from tests.factories import ADD_CHILD, sign_up
from tests.servers import serve

CHILD_NAME = "Marigold Featherstonehaugh"
LOCAL_AUTHORITY = "Borsetshire Unlikely Council"
INLINE = (
    'mutation AddInline { addChild(input: {displayName: "%s", dateOfBirth: "2016-03-14", '
    'ehcpStage: ASSESSING, localAuthority: "%s"}) { child { id } userErrors { code } } }'
)


class Receiver:
    """An OTLP/HTTP trace receiver on a free port: what it was sent, raw and decoded."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(self.rfile.read(length))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def spans(self) -> list[Any]:
        found = []
        for body in list(self.bodies):
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    found.extend(scope.spans)
        return found


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    thread = threading.Thread(target=running.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.server.shutdown()
        running.server.server_close()


def _attributes(span: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for attribute in span.attributes:
        value = attribute.value
        values[attribute.key] = getattr(value, value.WhichOneof("value"))
    return values


async def test_operations_are_traced_without_what_the_family_sent(
    live_server: Live, settings: server.Settings, receiver: Receiver
) -> None:
    env = {
        "DATABASE_URL": settings.database_url,
        "BROADCAST_NAMESPACE": f"otel-{uuid.uuid4().hex[:8]}",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    async with serve(env) as served:
        gql = served.client
        family = await sign_up(gql)
        inline = INLINE % (CHILD_NAME, LOCAL_AUTHORITY)
        response = await gql.http.post(
            "/graphql",
            json={"query": inline},
            headers={"Authorization": f"Bearer {family.token}", "X-Request-ID": "trace-me-0001"},
        )
        assert response.json()["data"]["addChild"]["userErrors"] == []
        variables = {
            "displayName": CHILD_NAME + " II",
            "dateOfBirth": "2017-05-01",
            "ehcpStage": "ASSESSING",
            "localAuthority": LOCAL_AUTHORITY,
        }
        added = await gql.data(ADD_CHILD, {"input": variables}, family.token)
        assert added["addChild"]["userErrors"] == []
        await gql.data(
            "query Children { viewer { family { children { displayName } } } }", token=family.token
        )

        async def traced() -> bool:
            names = {span.name for span in receiver.spans()}
            return {"GraphQL AddInline", "GraphQL Children"} <= names

        await eventually(traced, "the operations' spans reach the receiver")

    spans = receiver.spans()
    operation = next(span for span in spans if span.name == "GraphQL AddInline")
    attributes = _attributes(operation)
    assert attributes["graphql.operation.name"] == "AddInline"
    assert attributes["graphql.operation.type"] == "mutation"
    assert attributes["graphql.document.sha256"] == hashlib.sha256(inline.encode()).hexdigest()
    assert attributes["senvault.request_id"] == "trace-me-0001"
    # Its work is traced under it: at least the resolver of `addChild`.
    children = [span for span in spans if span.trace_id == operation.trace_id and span is not operation]
    assert any(span.name == "GraphQL Resolving: addChild" for span in children), [s.name for s in children]
    # Nothing the family sent is in any span, in any form the exporter sent.
    everything = b"".join(receiver.bodies)
    for secret in (CHILD_NAME, LOCAL_AUTHORITY, family.email, family.token):
        assert secret.encode() not in everything, secret
