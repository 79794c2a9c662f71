"""A websocket client in raw bytes, for benchmarks that open and close sockets by the thousand.

The `websockets` client spends about 1.3 ms of CPU on each connect, exchange and close: on the one
core the bench's clients have, it cannot drive more than ~770 cycles a second, so a server faster
than that could not be told apart from it. Here every frame a cycle sends is encoded once, ahead
of time; what the server sends is searched for a marker, not parsed. It is a bench tool: it skips
what a real client must check (the handshake's accept key, frame boundaries), and is used for both
servers alike.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
from collections.abc import Sequence
from typing import Any

# Any 16 bytes, base64: the server only answers it, and this client does not check the answer.
_KEY = base64.b64encode(b"senvault-bench-k").decode()
_WAIT = 10.0  # seconds for a whole cycle


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A final frame as a client must send it (masked, RFC 6455 §5.3)."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


def text(message: dict[str, Any]) -> bytes:
    return client_frame(0x1, json.dumps(message).encode())


CLOSE = client_frame(0x8, struct.pack("!H", 1000))


class Cycle:
    """One socket's life: the upgrade, then for each step its frame sent and the server's bytes read
    until the step's marker appears, then the close handshake (until the server ends the connection)."""

    def __init__(
        self, port: int, path: str, steps: Sequence[tuple[bytes, bytes]], subprotocol: str | None = None
    ) -> None:
        self.port = port
        self.steps = steps
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {_KEY}",
            "Sec-WebSocket-Version: 13",
        ]
        if subprotocol is not None:
            lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
        self.upgrade = ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def __call__(self) -> None:
        async with asyncio.timeout(_WAIT):
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                writer.write(self.upgrade)
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 101"):
                    raise RuntimeError(f"upgrade refused: {head.splitlines()[0]!r}")
                seen = b""
                for frame, marker in self.steps:
                    writer.write(frame)
                    while marker not in seen:
                        chunk = await reader.read(65536)
                        if not chunk:
                            raise RuntimeError(f"the server closed before {marker!r}")
                        seen += chunk
                    seen = seen[seen.index(marker) + len(marker) :]
                writer.write(CLOSE)
                while await reader.read(65536):
                    pass  # the server's close frame, then the end of the connection
            finally:
                writer.close()
