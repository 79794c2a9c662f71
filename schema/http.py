"""The HTTP side of the GraphQL view: every refusal is JSON with a code, as GraphQL errors are.

strawberry answers a body it cannot use with plain text (or, for JSON nested past Python's recursion
limit, a body that is not an object, or a subscription over HTTP, with an internal error): here
each is a 4xx with `{"errors": [{"message", "extensions": {"code"}}]}`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable
from functools import lru_cache
from typing import Any, cast

import orjson
from cross_web import HTTPException
from graphql import GraphQLError, GraphQLFormattedError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from resolvers import db
from schema import graphiql, transport
from schema.context import Context
from schema.errors import SERVICE_UNAVAILABLE, database_unavailable
from schema.persisted import PersistedDocuments, Refused
from schema.sse import StreamConnection, until_closed

log = logging.getLogger("senvault.http")

# Seconds a client should wait before retrying while the database is down.
RETRY_AFTER = "5"
_CODES = {
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    429: "TOO_MANY_CONNECTIONS",
}


def refusal(
    status: int, message: str, code: str | None = None, request_id: str | None = None
) -> JSONResponse:
    """A request refused before any operation ran (with its request id, when it has one)."""
    extensions: dict[str, str] = {"code": code or _CODES.get(status, "BAD_REQUEST")}
    if request_id is not None:
        extensions["requestId"] = request_id
    return _Refusal({"errors": [{"message": message, "extensions": extensions}]}, status_code=status)


class _Refusal(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            # The message echoes what the client sent (an operation name), an unpaired surrogate
            # included: escaped, as `encode_json` does for results.
            return json.dumps(content, separators=(",", ":")).encode()


def unavailable(request_id: str | None = None) -> JSONResponse:
    """The database cannot be reached: come back shortly (the server reconnects by itself)."""
    response = refusal(503, "The service is unavailable; retry shortly.", SERVICE_UNAVAILABLE, request_id)
    response.headers["Retry-After"] = RETRY_AFTER
    return response


GRAPHQL_RESPONSE_JSON = "application/graphql-response+json; charset=utf-8"
# Where a request's sub-response is kept for `process_result`, which is not given it.
_SUB_RESPONSE = "senvault.sub_response"


class _SubResponse(Response):
    """The headers and status an operation sets, and the media type the client accepts."""

    graphql_response = False


def accepts_graphql_response(accept: str) -> bool:
    """Whether to answer `application/graphql-response+json` (GraphQL over HTTP): when the client
    lists it, and not after `application/json`. Without it (Apollo Client, older clients) the
    answer is `application/json`, as before."""
    if "graphql-response+json" not in accept:
        return False
    return _ranks_graphql_response_first(accept)


@lru_cache(maxsize=256)
def _ranks_graphql_response_first(accept: str) -> bool:
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept.split(",")):
        media, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranked.append((-quality, index, media.strip().lower()))
    for _, _, media in sorted(ranked):
        if media == "application/graphql-response+json":
            return True
        if media in ("application/json", "*/*", "application/*"):
            return False
    return False


class HTTPBoundary(GraphQL[Context, None]):
    # Documents clients may send by hash (schema/persisted.py); the app gives its own.
    persisted = PersistedDocuments()
    websocket_adapter_class = transport.SocketAdapter

    def socket_entry(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[Any]:
        """A websocket, run as `GraphQL.__call__` runs it, without being a coroutine of its own:
        `server.App` hands sockets here, so an open socket waits under one layer fewer."""
        return self.run(WebSocket(scope, receive=receive, send=send))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            # One database connection for the whole request, authentication included.
            async with db.request_scope():
                response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as exc:
            response = refusal(exc.status_code, exc.reason)
        except ClientDisconnect:
            # The client went away before its body arrived: nobody to answer, and nothing of ours
            # failed, so no traceback.
            log.debug("client disconnected before sending its whole request")
            return
        except Exception as exc:
            # Before any operation ran (signing the viewer in reads the database).
            if not database_unavailable(exc):
                raise
            log.warning("database unavailable: %r", exc)
            response = unavailable(scope.get("state", {}).get("request_id"))
        await response(scope, receive, send)

    async def render_graphql_ide(self, request: Request) -> Response:
        # The server's own GraphiQL (schema/graphiql.py): nothing loaded from elsewhere.
        return HTMLResponse(
            graphiql.PAGE,
            headers={
                "Content-Security-Policy": (
                    "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
                    "connect-src 'self' ws: wss:; frame-ancestors 'none'"
                ),
                "Cache-Control": "no-store",
            },
        )

    def should_render_graphql_ide(self, request: Any) -> bool:
        # GraphiQL for a browser opening /graphql: not for a GET that names an operation by hash
        # (persisted queries), nor for a client that accepts anything (`*/*`: curl, fetch).
        params = request.query_params
        return (
            request.method == "GET"
            and params.get("query") is None
            and params.get("extensions") is None
            and "text/html" in request.headers.get("accept", "")
        )

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = _SubResponse()
        sub_response.status_code = None  # type: ignore[assignment]
        del sub_response.headers["content-length"]
        if isinstance(request, Request):
            sub_response.graphql_response = accepts_graphql_response(request.headers.get("accept", ""))
            request.scope[_SUB_RESPONSE] = sub_response
        return sub_response

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        processed = await super().process_result(request, result)
        if result.data is None and result.errors and all(error.path is None for error in result.errors):
            # A request error (the document did not parse or validate, a variable did not coerce,
            # a limit refused it): nothing ran, so there is no `data` (GraphQL spec, "Response").
            # Served as application/graphql-response+json, it is a 400 (GraphQL over HTTP).
            processed.pop("data", None)
            sub_response = request.scope.get(_SUB_RESPONSE)
            if isinstance(sub_response, _SubResponse) and sub_response.graphql_response:
                sub_response.status_code = sub_response.status_code or 400
        return processed

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        # An operation that lost the database answers 503, so clients and proxies retry it.
        results = response_data if isinstance(response_data, list) else [response_data]
        if any(
            (error.get("extensions") or {}).get("code") == SERVICE_UNAVAILABLE
            for result in results
            for error in cast("list[GraphQLFormattedError]", result.get("errors") or [])
        ):
            sub_response.status_code = 503
            sub_response.headers["Retry-After"] = RETRY_AFTER
        response = super().create_response(response_data, sub_response)
        if isinstance(sub_response, _SubResponse) and sub_response.graphql_response:
            response.headers["content-type"] = GRAPHQL_RESPONSE_JSON
        return response

    def encode_json(self, data: object) -> str | bytes:
        # orjson: the same compact JSON (non-ASCII as UTF-8 rather than escaped) at a fraction of the
        # CPU. As text: websocket messages must go out as text frames. A string it cannot encode
        # (an unpaired surrogate echoed in an error message) falls back to the standard library,
        # which escapes it.
        try:
            return orjson.dumps(data).decode()
        except orjson.JSONEncodeError:
            return json.dumps(data, separators=(",", ":"))

    def decode_json(self, data: str | bytes) -> object:
        # Bytes that are not UTF-8, and nesting past the recursion limit (100,000 `[`), are as
        # unparseable as a missing brace: both transports answer a JSONDecodeError already.
        try:
            # orjson for speed; the standard library for what it refuses but JSON allows (a lone
            # surrogate escape, an integer past 64 bits) and for its error.
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
        try:
            return json.loads(data)
        except RecursionError:
            raise json.JSONDecodeError("JSON nested too deeply", "", 0) from None
        except UnicodeDecodeError:
            raise json.JSONDecodeError("JSON must be UTF-8", "", 0) from None
        except json.JSONDecodeError:
            raise
        except ValueError:
            # An integer of more digits than Python converts from text (4,300).
            raise json.JSONDecodeError("JSON number too long", "", 0) from None

    def parse_json(self, data: str | bytes) -> Any:
        # HTTP only (websocket frames go through decode_json): a body or `variables` that is JSON
        # but not an object or a batch (`null`, `1`, `"x"`) has nothing to run.
        parsed = super().parse_json(data)
        if not isinstance(parsed, dict | list):
            raise HTTPException(400, "The body must be a JSON object.")
        return parsed

    async def execute_operation(
        self,
        request: Any,
        request_adapter: Any,
        request_data: Any,
        context: Context,
        root_value: Any,
        sub_response: Any,
    ) -> Any:
        if isinstance(request_data, list) or self._get_stream_transport(request_data.protocol) is None:
            return await super().execute_operation(
                request, request_adapter, request_data, context, root_value, sub_response
            )
        # A subscription over SSE (schema/sse.py).
        query = self.persisted.resolve(request_data.query or None, request_data.extensions)
        if isinstance(query, Refused):
            # Coded as over plain HTTP: an APQ client sends the text after PERSISTED_QUERY_NOT_FOUND.
            return self._refusal(query, sub_response)
        if not query:
            raise HTTPException(400, "No GraphQL query found in the request.")
        request_data.query = query
        viewer = context.viewer
        if viewer is None:
            raise HTTPException(401, "Subscriptions need a signed-in session or an API token.")
        try:
            transport.check_socket_quota(context, viewer)  # a stream counts as a socket
        except transport.TooManySockets:
            raise HTTPException(
                429, "Too many open subscriptions for this credential; close one and try again."
            ) from None
        connection = StreamConnection(viewer)
        context.connection = connection
        results = await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )
        if isinstance(results, ExecutionResult):
            return results  # refused before it started (a limit, a validation error)
        return until_closed(cast("AsyncIterator[Any]", results), connection, context)

    @staticmethod
    def _refusal(refused: Refused, sub_response: Any) -> ExecutionResult:
        sub_response.status_code = refused.status
        return ExecutionResult(
            data=None, errors=[GraphQLError(refused.message, extensions={"code": refused.code})]
        )

    async def execute_single(
        self,
        request: Any,
        request_adapter: Any,
        sub_response: Any,
        context: Any,
        root_value: Any,
        request_data: Any,
    ) -> ExecutionResult:
        # Subscriptions are served over websockets only; strawberry would run one over HTTP as if
        # it were a query and fail inside it.
        allowed = OperationType.from_http(request_adapter.method) - {OperationType.SUBSCRIPTION}
        if not self.allow_queries_via_get and request_adapter.method == "GET":
            allowed -= {OperationType.QUERY}
        query = self.persisted.resolve(request_data.query or None, request_data.extensions)
        if isinstance(query, Refused):
            return self._refusal(query, sub_response)
        if not query:
            raise HTTPException(400, "No GraphQL query found in the request.")
        try:
            return await self.schema.execute(
                query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as exc:
            raise HTTPException(400, exc.as_http_error_reason()) from exc
        except InvalidOperationTypeError as exc:
            if exc.operation_type is OperationType.SUBSCRIPTION:
                raise HTTPException(
                    400, "Subscriptions run over a websocket (graphql-transport-ws), not over HTTP."
                ) from exc
            raise HTTPException(400, exc.as_http_error_reason(request_adapter.method)) from exc
