"""The typed context every field receives."""

from __future__ import annotations

import itertools
import secrets
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from resolvers.connections import Connection
from resolvers.rate_limits import Verdict
from resolvers.services import Services
from resolvers.viewer import Viewer
from schema.loaders import Loaders

# Request ids: this process's random prefix and a counter (16 hex digits, like the uuid4 prefix
# they replace, at a fraction of the cost: they only need to be unique in the logs).
_PREFIX = secrets.token_hex(4)
_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_PREFIX}{next(_COUNTER) & 0xFFFFFFFF:08x}"


# The id of the request (or websocket) being served, for every log line written while it is: set
# by `server.RequestIds`, read by the log record factory `server.install_request_id_logging`.
current_request_id: ContextVar[str | None] = ContextVar("senvault_request_id", default=None)


@dataclass
class Context:
    services: Services
    request: Request | WebSocket
    response: Response | WebSocket | None
    viewer: Viewer | None = None
    loaders: Loaders = field(default_factory=Loaders)
    request_id: str = field(default_factory=new_request_id)
    # Set by strawberry on websockets from the `connection_init` payload.
    connection_params: dict[str, Any] | None = None
    # On websockets, the socket as this process's registry knows it (set once acknowledged).
    connection: Connection | None = None
    # The caller's rate-limit budget after the current operation was counted (schema/limits.py).
    rate_limit: Verdict | None = None

    def fresh_loaders(self) -> Loaders:
        """New loaders for one subscription event: a socket's context lives all day."""
        return Loaders()


Info = strawberry.Info[Context, None]
