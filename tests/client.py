"""A small GraphQL client for tests: HTTP via httpx, websockets via `websockets`, both protocols."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

TRANSPORT_WS = "graphql-transport-ws"
# How long to wait for something that must arrive: long enough that only a hang fails the test,
# also on a loaded machine. Arrival is normally a matter of milliseconds.
DEADLINE = 30.0
LEGACY_WS = "graphql-ws"


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait until `check()` holds, for state a client can only observe by asking (readiness, a
    reconnect); fails with `what` only if it never does within DEADLINE."""
    try:
        async with asyncio.timeout(DEADLINE):
            # The one polling loop of the suite, for what only a poll can observe.
            while not await check():  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not within {DEADLINE:.0f} s: {what}") from None


async def already(value: bool) -> bool:
    """A condition read in place, as `eventually` asks for one: `eventually(lambda: already(x), …)`."""
    return value


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient, ws_url: str, app: Any = None) -> None:
        self.http = http
        self.ws_url = ws_url
        # The served Starlette app when it runs in this process (its clock and services), else None.
        self.app = app

    async def __call__(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """POST a document; returns the whole response body (data and errors)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code in (200, 400), response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """POST a document that must succeed without top-level errors; returns `data`."""
        body = await self(query, variables, token)
        assert not body.get("errors"), body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    @asynccontextmanager
    async def socket(
        self,
        token: str | None,
        protocol: str = TRANSPORT_WS,
        init_payload: Any = None,
        url: str | None = None,
    ) -> AsyncIterator[Socket]:
        """An acknowledged websocket (or one the server closed: see `Socket.closed_code`); `url`:
        another address of the same server."""
        # No client-side queue bound: a test may leave events of other subscriptions unread, and a
        # bounded queue would stop reading the socket, close frame included, until close_timeout.
        async with connect(url or self.ws_url, subprotocols=[protocol], max_queue=None) as ws:  # type: ignore[list-item]
            sock = Socket(ws, protocol)
            payload = (
                init_payload
                if init_payload is not None
                else ({"authorization": f"Bearer {token}"} if token else {})
            )
            await sock.send({"type": "connection_init", "payload": payload})
            yield sock


@dataclass
class Socket:
    ws: ClientConnection
    protocol: str
    _next_id: int = 0
    # Messages of other subscriptions that arrived while waiting for one: kept for their turn.
    _pending: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self, timeout: float = DEADLINE) -> dict[str, Any]:  # noqa: ASYNC109
        """The next message that is not a keep-alive."""
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
            message: dict[str, Any] = json.loads(raw)
            if message.get("type") not in ("ka", "ping", "pong"):
                return message

    async def ack(self) -> None:
        message = await self.receive()
        assert message["type"] == "connection_ack", message

    async def closed_code(self, timeout: float = DEADLINE) -> int | None:  # noqa: ASYNC109
        """Wait for the server to close the socket; returns the close code."""
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        except Exception:
            pass
        return self.ws.close_code

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        self._next_id += 1
        op_id = str(self._next_id)
        kind = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        await self.send(
            {"id": op_id, "type": kind, "payload": {"query": query, "variables": variables or {}}}
        )
        return op_id

    async def next_event(self, op_id: str, timeout: float = DEADLINE) -> dict[str, Any]:  # noqa: ASYNC109
        """The next result of a subscription: its `payload` (data and/or errors)."""
        queued = self._pending.get(op_id)
        if queued:
            message = queued.pop(0)
        else:
            async with asyncio.timeout(timeout):
                while True:
                    message = await self.receive(timeout)
                    if message.get("id") == op_id:
                        break
                    self._pending.setdefault(str(message.get("id")), []).append(message)
        expected = "next" if self.protocol == TRANSPORT_WS else "data"
        if message["type"] == "error":
            return {"errors": message["payload"]}
        assert message["type"] == expected, message
        payload: dict[str, Any] = message["payload"]
        return payload

    async def expect_silence(self, timeout: float = 0.5) -> None:  # noqa: ASYNC109
        """Nothing (but keep-alives) arrives within `timeout`."""
        try:
            message = await self.receive(timeout)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message {message}")


class Stream:
    """An open Server-Sent Events response (a subscription over SSE), read one event at a time:
    (event, parsed data)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self) -> tuple[str, Any]:
        event, data = "", ""
        async with asyncio.timeout(DEADLINE):
            async for line in self._lines:
                if line.startswith("event:"):
                    event = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    data = line.removeprefix("data:").strip()
                elif line == "" and event:
                    return event, json.loads(data) if data else None
        raise AssertionError("the stream ended without another event")


@asynccontextmanager
async def sse(
    http: httpx.AsyncClient,
    query: str | None,
    variables: dict[str, Any],
    token: str | None,
    extensions: dict[str, Any] | None = None,
) -> AsyncIterator[Stream]:
    """A subscription over SSE; `query` None sends only `extensions` (a persisted query's hash)."""
    headers = {"Accept": "text/event-stream", **({"Authorization": f"Bearer {token}"} if token else {})}
    body: dict[str, Any] = {"variables": variables}
    if query is not None:
        body["query"] = query
    if extensions is not None:
        body["extensions"] = extensions
    async with http.stream("POST", "/graphql", json=body, headers=headers) as r:
        yield Stream(r)


@asynccontextmanager
async def stalled_subscriber(
    http_url: str, ws_url: str, token: str, query: str, variables: dict[str, Any] | None = None
) -> AsyncIterator[ClientConnection]:
    """A graphql-transport-ws socket with a 4 KiB receive buffer (so the kernel holds little for it),
    initialised and subscribed under id "1"; the test then stops reading it."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", int(http_url.rsplit(":", 1)[1])))
    async with connect(ws_url, sock=raw, subprotocols=[TRANSPORT_WS], max_queue=1) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        payload = {"query": query, "variables": variables or {}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        yield ws


async def read_until_closed(ws: ClientConnection) -> int:
    """Read a socket to its close (what was on the wire, then the close frame); how many `next`
    messages came."""
    received = 0
    try:
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
            received += message["type"] == "next"
    except ConnectionClosed:
        pass
    return received
