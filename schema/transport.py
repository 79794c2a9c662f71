"""The websocket side of the server: both GraphQL subprotocols with the same rules, and a uvicorn
protocol whose close never waits on a peer that has stopped reading.

Each acknowledged socket is registered in `services.connections` with the credential it was opened
with, so that signing out, revoking an API token or falling behind closes it at once (close codes
in README, "Close codes").
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections.abc import AsyncGenerator
from json import JSONDecodeError
from typing import Any, cast

from graphql import GraphQLError, GraphQLFormattedError
from starlette.websockets import WebSocket, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived, WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage as TransportInit,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ErrorMessage as TransportError
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message as TransportMessage
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    NextMessage,
    NextMessagePayload,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionAckMessage,
    ConnectionInitMessage,
    OperationMessage,
    StartMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import ErrorMessage as LegacyError
from strawberry.types.execution import ExecutionResult, PreExecutionError
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from resolvers import db
from resolvers.collector import COLLECTOR
from resolvers.connections import Connection
from resolvers.viewer import Viewer
from schema.context import Context
from schema.fanout import (
    FRAME_WRITER,
    HANDOVER,
    OPERATION_POLICY,
    SUBSCRIPTION_EXECUTOR,
    Handover,
    Member,
)
from schema.limits import refused_early

SUBSCRIPTION_LIMIT = "SUBSCRIPTION_LIMIT"
# A malformed message (not JSON, not an object, no `type`, fields of the wrong kind): the
# graphql-transport-ws protocol's close code, used on the legacy protocol too.
CLOSE_MALFORMED = 4400
# The credential already holds MAX_SOCKETS_PER_CREDENTIAL open sockets in this process.
CLOSE_TOO_MANY_SOCKETS = 4429
TOO_MANY_SOCKETS_REASON = "Too many open sockets for this credential"


class TooManySockets(Exception):
    """Raised by `on_ws_connect` when the credential already holds its quota of sockets."""


def check_socket_quota(context: Context, viewer: Viewer) -> None:
    """Refuse a socket past `MAX_SOCKETS_PER_CREDENTIAL` for this credential (in this process)."""
    services = context.services
    if services.connections.count_for(viewer) >= services.max_sockets_per_credential:
        raise TooManySockets


def _well_formed(message: object) -> bool:
    return isinstance(message, dict) and isinstance(message.get("type"), str)


def register(context: Context, viewer: Viewer) -> None:
    """Enter an acknowledged socket in this process's registry."""
    websocket = context.request
    assert isinstance(websocket, WebSocket)

    async def close(code: int, reason: str) -> None:
        await websocket.close(code=code, reason=reason)

    context.connection = Connection(viewer, close)
    context.services.connections.add(context.connection)


def unregister(context: Context) -> None:
    """Take a socket that has ended out of the registry, and out of its context: a fanout group its
    subscription started keeps the context for the group's other members, and must not keep the
    closed socket with it. The context keeps what those members' events may read of the request
    (the address it was reached at, its headers); its connection, and every way back to the socket,
    go."""
    if context.connection is not None:
        context.services.connections.discard(context.connection)
        context.connection = None
    if isinstance(context.request, WebSocket):
        scope = context.request.scope
        kept = {key: scope[key] for key in _ADDRESS if key in scope}
        context.request = WebSocket(kept, _ended_receive, _ended_send)
    context.response = None


# What of a socket's ASGI scope its context keeps once it has ended (Starlette's `base_url`, `url`
# and `headers` read these); not its extensions, app or state, which lead back to the socket.
_ADDRESS = ("type", "asgi", "http_version", "scheme", "server", "client", "root_path", "path",
            "raw_path", "query_string", "headers", "subprotocols", "app_root_path")  # fmt: skip


async def _ended_receive() -> dict[str, Any]:
    return {"type": "websocket.disconnect", "code": 1006, "reason": ""}


async def _ended_send(message: Any) -> None:
    raise ClientDisconnected()


def _limit_error(limit: int | None) -> GraphQLFormattedError:
    return GraphQLError(
        f"At most {limit} subscriptions may run on one socket; complete one or open another socket.",
        extensions={"code": SUBSCRIPTION_LIMIT},
    ).formatted


class SocketAdapter(ASGIWebSocketAdapter):
    """strawberry's adapter, except that messages are read straight from the ASGI `receive`, not
    through Starlette's `receive_text` and `receive`: two coroutines fewer under every open socket
    while it waits, and two steps fewer for every message. What those checked is checked here: a
    text message is read only on an accepted socket, a binary one is `NonTextMessageReceived`, and
    a disconnect ends the messages and marks the socket disconnected."""

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        ws = self.ws
        receive = ws._receive
        while ws.application_state is not WebSocketState.DISCONNECTED:
            if ws.application_state is not WebSocketState.CONNECTED:
                raise RuntimeError('WebSocket is not connected. Need to call "accept" first.')
            if ws.client_state is not WebSocketState.CONNECTED:
                return
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                ws.client_state = WebSocketState.DISCONNECTED
                return
            if kind != "websocket.receive":
                raise RuntimeError(f"Expected websocket.receive or websocket.disconnect, got {kind!r}")
            text = message.get("text")
            if text is None:
                raise NonTextMessageReceived
            try:
                decoded = self.view.decode_json(text)
            except JSONDecodeError as exc:
                if ignore_parsing_errors:
                    continue
                raise NonJsonMessageReceived from exc
            yield decoded


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws: a coded error past the per-socket cap, 4400 for any malformed message,
    4429 past the sockets-per-credential cap, and registry bookkeeping."""

    async def handle_message(self, message: TransportMessage) -> None:
        if not _well_formed(message):
            await self.handle_invalid_message("Messages must be JSON objects with a string `type`")
            return
        try:
            await super().handle_message(message)
        except (TypeError, ValueError, AttributeError):
            await self.handle_invalid_message("Malformed message")

    async def handle_connection_init(self, message: TransportInit) -> None:
        try:
            await super().handle_connection_init(message)
        except TooManySockets:
            await self.websocket.close(code=CLOSE_TOO_MANY_SOCKETS, reason=TOO_MANY_SOCKETS_REASON)
        timer = self.connection_init_timeout_task
        if self.connection_init_received and timer is not None:
            # Initialised: the timer that would close the socket has nothing left to do. Cancelled,
            # and let go of: kept, the finished task would hold its CancelledError, with two
            # tracebacks and frames, for as long as the socket is open. That was 12 of the 119
            # objects the collector walks for each idle socket. `shutdown` has nothing to wait for.
            timer.cancel()
            self.connection_init_timeout_task = None

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        limit = self.max_subscriptions_per_connection
        if (
            self.connection_acknowledged
            and limit is not None
            and message["id"] not in self.operations
            and len(self.operations) >= limit
        ):
            refusal: TransportError = {"id": message["id"], "type": "error", "payload": [_limit_error(limit)]}
            await self.send_message(refusal)
            return
        limited = refused_early(self.context) if self.connection_acknowledged else None
        if limited is not None and message["id"] not in self.operations:
            await self.send_message({"id": message["id"], "type": "error", "payload": [limited.formatted]})
            return
        await super().handle_subscribe(message)

    members: dict[str, Member]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # This socket's subscriptions taken over by their channel's fanout, by operation id.
        self.members = {}

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        """strawberry's, except that a subscription handed over to its channel's fanout
        (`schema.fanout`) ends its task without `complete`: its id stays taken until it ends."""
        slot = Handover(self, operation.id)
        HANDOVER.set(slot)  # in the operation's own task
        try:
            async with db.request_scope():
                await self._run(operation, slot)
        except _OperationStreamClosed:
            return
        except Exception as error:
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise

    async def _run(self, operation: Operation[Context, None], slot: Handover) -> None:
        """The operation on one database connection until it is handed over or goes live
        (`stream` gives it back then), or to its end."""
        result_source = await self.schema.stream(
            operation.query,
            variable_values=operation.variables,
            context_value=self.context,
            root_value=self.root_value,
            operation_name=operation.operation_name,
        )
        async with contextlib.aclosing(result_source):
            await self._send_result_stream(operation, result_source)
        if slot.member is not None:
            # Let go of what the fanout keeps for the group, in this task's context (a copy made
            # meanwhile keeps its own), and of this task itself: strawberry would keep the finished
            # task, its coroutine and its context for as long as the member lives. Its id stays
            # taken in `operations`; `cleanup_operation` ends a member without a task.
            SUBSCRIPTION_EXECUTOR.set(None)
            OPERATION_POLICY.set(None)
            HANDOVER.set(None)
            operation.task = None
            return
        await operation.send_operation_message({"id": operation.id, "type": "complete"})

    async def finish_operation(self, operation_id: str, payload: dict[str, object]) -> None:
        """A handed-over subscription has ended: its last `next`, then `complete`."""
        operation = self.operations.get(operation_id)
        if operation is None or operation.completed:
            return
        try:
            with contextlib.suppress(Exception):  # the socket may be closing
                last: NextMessage = {
                    "id": operation_id,
                    "type": "next",
                    "payload": cast("NextMessagePayload", payload),
                }
                await self.send_message(last)
        finally:
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation_id, "type": "complete"})

    async def cleanup_operation(self, operation_id: str) -> None:
        member = self.members.pop(operation_id, None)
        if member is not None:
            member.leave()
            operation = self.operations.pop(operation_id, None)
            if operation is not None and operation.task is not None:
                operation.task.cancel()
            return
        operation = self.operations.get(operation_id)
        if operation is not None and operation.task is None:
            # Handed over, and its member has ended since (`Member.end`): its last `next` and its
            # `complete` may still be waiting for a client that reads slowly (`finish_operation`).
            # The client's `complete`, or the socket's end, frees the id now, and nothing more is
            # sent under it. (strawberry's own cleanup expects a task, and would raise.)
            operation.completed = True
            del self.operations[operation_id]
            return
        await super().cleanup_operation(operation_id)

    async def shutdown(self) -> None:
        try:
            await super().shutdown()
        finally:
            # Whatever stopped the cleanup above, a socket that has ended feeds no member.
            for member in list(self.members.values()):
                member.leave()
            unregister(self.context)


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """The legacy `graphql-ws` protocol with the modern one's rules: a bad token is closed with 4403,
    and a socket that does not send `connection_init` in time is closed with 4408."""

    _init_received = False

    async def handle(self) -> None:
        timer = asyncio.create_task(self._init_timeout())
        try:
            await self._receive_all()
        finally:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer

    async def _receive_all(self) -> None:
        """strawberry's loop, except that a message that is not a JSON object with a `type` closes
        the socket with 4400 (strawberry ignores what does not parse and drops the socket on `[]`)."""
        try:
            try:
                async for message in self.websocket.iter_json():
                    if not _well_formed(message):
                        await self._malformed("Messages must be JSON objects with a string `type`")
                        return
                    try:
                        await self.handle_message(cast("OperationMessage", message))
                    except (KeyError, TypeError, ValueError, AttributeError):
                        await self._malformed("Malformed message")
                        return
            except NonJsonMessageReceived:
                await self._malformed("WebSocket message must be valid JSON")
            except NonTextMessageReceived:
                await self.websocket.close(code=1002, reason="WebSocket message type must be text")
        except WebSocketDisconnected:
            pass
        finally:
            if self.keep_alive_task:
                self.keep_alive_task.cancel()
                with contextlib.suppress(BaseException):
                    await self.keep_alive_task
            await self.cleanup()

    async def _malformed(self, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.websocket.close(code=CLOSE_MALFORMED, reason=reason)

    async def _init_timeout(self) -> None:
        await asyncio.sleep(self.view.connection_init_wait_timeout.total_seconds())
        if not self._init_received:
            with contextlib.suppress(Exception):
                await self.websocket.close(code=4408, reason="Connection initialisation timeout")

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if self._init_received:
            await self.websocket.close(code=4429, reason="Too many initialisation requests")
            return
        self._init_received = True
        payload = message.get("payload")
        self.context.connection_params = payload if isinstance(payload, dict) else None
        try:
            ack = await self.view.on_ws_connect(self.context)
        except ConnectionRejectionError:
            await self.send_message({"type": "connection_error", "payload": {"message": "Forbidden"}})
            await self.websocket.close(code=4403, reason="Forbidden")
            return
        except TooManySockets:
            await self.send_message(
                {"type": "connection_error", "payload": {"message": TOO_MANY_SOCKETS_REASON}}
            )
            await self.websocket.close(code=CLOSE_TOO_MANY_SOCKETS, reason=TOO_MANY_SOCKETS_REASON)
            return
        ack_message: ConnectionAckMessage = {
            "type": "connection_ack",
            "payload": ack if isinstance(ack, dict) else {},
        }
        await self.send_message(ack_message)
        self.connection_acknowledged = True
        if self.keep_alive:
            self.keep_alive_task = asyncio.create_task(self.handle_keep_alive())

    async def handle_start(self, message: StartMessage) -> None:
        limit = self.max_subscriptions_per_connection
        if (
            self.connection_acknowledged
            and limit is not None
            and message["id"] not in self.tasks
            and len(self.tasks) >= limit
        ):
            refusal: LegacyError = {"type": "error", "id": message["id"], "payload": _limit_error(limit)}
            await self.send_message(refusal)
            return
        limited = refused_early(self.context) if self.connection_acknowledged else None
        if limited is not None:
            await self.send_message({"type": "error", "id": message["id"], "payload": limited.formatted})
            return
        await super().handle_start(message)

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        """strawberry's, except that queries and mutations run too, as the protocol allows (and
        as Python `gql` sends them by default): `schema.stream` runs any operation, where
        `schema.subscribe` fails on anything but a subscription."""
        try:
            result_source = await self.schema.stream(
                query,
                variable_values=variables,
                operation_name=operation_name,
                context_value=self.context,
                root_value=self.root_value,
            )
            self.subscriptions[operation_id] = result_source
            is_first_result = True
            # Closed here, in this task, whatever ends the loop: a stream left to the garbage
            # collector is finalised outside the event loop, where its cleanup cannot run.
            async with contextlib.aclosing(result_source):
                async for result in result_source:
                    if is_first_result and isinstance(result, PreExecutionError):
                        assert result.errors
                        error: LegacyError = {
                            "type": "error",
                            "id": operation_id,
                            "payload": result.errors[0].formatted,
                        }
                        await self.send_message(error)
                        return
                    if isinstance(result, ExecutionResult):
                        await self.send_data_message(result, operation_id)
                    is_first_result = False
            await self.send_message({"type": "complete", "id": operation_id})
        except asyncio.CancelledError:
            await self.send_message({"type": "complete", "id": operation_id})
        finally:
            self.subscriptions.pop(operation_id, None)
            self.tasks.pop(operation_id, None)

    async def cleanup(self) -> None:
        try:
            await super().cleanup()
        finally:
            unregister(self.context)


class _HandshakeLinesAtDebug(logging.LoggerAdapter):  # type: ignore[type-arg]
    """uvicorn's (and the websockets library's) logger for a socket, with their INFO lines for each
    socket (accepted or refused, connection open, connection closed) at DEBUG: the access log
    writes one line per socket when it closes, with its request id, status and how long it was
    open (`server.RequestIds`). Errors are logged as uvicorn logs them."""

    @property
    def level(self) -> int:
        return int(self.logger.level)

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.debug(msg, *args, **kwargs)


@functools.cache
def _at_debug(logger: Any) -> _HandshakeLinesAtDebug:
    """One adapter for each logger (uvicorn's and the websockets library's are each one logger for
    every socket): made per socket, they were two more objects for the collector to walk in each."""
    return _HandshakeLinesAtDebug(logger)


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets protocol, except that closing never waits for the peer to read.

    uvicorn's `send` waits until the transport's buffer has drained below its high-water mark, so
    a close sent to a client that has stopped reading waits for ever, and so does the memory
    behind it. Here the close frame is queued at once, the application is told the socket is gone,
    and if the peer has not read up to the close frame within `close_timeout` the connection is
    aborted. `serve` and the tests run uvicorn with this class (`ws="schema.transport:WebSocketProtocol"`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = _at_debug(self.logger)  # type: ignore[assignment]
        # The websockets protocol under it writes "connection open" and "connection closed".
        self.conn.logger = _at_debug(self.conn.logger)

    # The kernel's send buffer of a websocket, in bytes. Left to autotuning it can grow to megabytes
    # per socket behind a client that has stopped reading; events are small, so this is plenty.
    send_buffer_bytes = 64 * 1024

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if not self.handshake_complete:
            # Offered to `schema.fanout`, which writes events it has encoded once to many sockets.
            extensions: dict[str, object] = self.scope["extensions"]  # type: ignore[assignment]
            extensions[FRAME_WRITER] = self

    def write_frame(self, frame: bytes) -> bool:
        """Write an encoded frame now, without the ASGI send; False if the socket is closing.

        Only for sockets without a compression extension (`serve` and the tests turn it off), where
        a frame's bytes are the same for every socket."""
        if (
            self.close_sent
            or self.transport.is_closing()
            or self.conn.state is not State.OPEN
            or self.conn.extensions
        ):
            return False
        self.transport.write(frame)
        return True

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer_bytes)
        super().connection_made(transport)
        COLLECTOR.socket_opened()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # What a closed socket leaves in reference cycles is given back to the collector in time.
        COLLECTOR.socket_closed()

    async def send(self, message: Any) -> None:
        if self.handshake_complete and self.initial_response is None and not self.disconnected:
            if message["type"] == "websocket.close" and not self.close_sent:
                self._close_now(message.get("code", 1000), message.get("reason") or "")
                return
            if message["type"] == "websocket.send" and self.close_sent:
                # A send that was waiting on the stalled peer when the close went out.
                raise ClientDisconnected()
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # The handshake's request and response are not read again: a socket open all day
            # should not hold them (a few KiB of headers each). The websockets parser still holds
            # the request, in its generator's frame, for as long as the socket is open: its headers
            # (a list for each name) are emptied here; the scope has its own copy of them.
            self.request.headers.clear()
            self.request = self.response = None  # type: ignore[assignment]

    def _close_now(self, code: int, reason: str) -> None:
        if self.transport.is_closing():
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self._abort)

    def _abort(self) -> None:
        # The peer never read up to our close frame: drop the connection and its buffered bytes.
        self.close_timer = None
        self.transport.abort()
