"""This process's open websockets, by the credential each was opened with.

A signed-out session or a revoked API token must lose its live sockets at once, on every server
process: `announce_ended` publishes that after the change has committed, and each process's
`Connections.listen` closes the matching sockets it holds. A process that was not listening (the
broadcast was down) re-checks every socket's credential when it listens again, and the periodic
sweep re-checks them too, which also closes sockets whose session has expired.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from tortoise.expressions import Q

from models.accounts import ApiToken, Session
from resolvers import metrics
from resolvers.broadcast import SubscriptionEnded
from resolvers.events import Envelope
from resolvers.viewer import Viewer

if TYPE_CHECKING:
    from resolvers.services import Services

log = logging.getLogger("senvault.connections")

# Close codes clients act on (README, "Close codes"). 4403 is what the spec gives a socket without a
# valid token; a credential that ends while the socket is open is closed the same way.
CLOSE_FORBIDDEN = 4403
# The client did not read its events fast enough: reconnect and resubscribe with `after`.
CLOSE_SLOW_CONSUMER = 4008

CONTROL_CHANNEL = "control:credentials"
CREDENTIAL_ENDED = "credential.ended"

Closer = Callable[[int, str], Awaitable[None]]


class Connection:
    """One open websocket: who opened it and how to close it without waiting on the peer."""

    def __init__(self, viewer: Viewer, closer: Closer) -> None:
        self.viewer = viewer
        self._closer = closer
        self.close_code: int | None = None
        self._closing: asyncio.Task[None] | None = None

    def close_soon(self, code: int, reason: str) -> None:
        """Close the socket with `code` from a task of its own; later calls change nothing."""
        if self.close_code is not None:
            return
        self.close_code = code
        self._closing = asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        try:
            await self._closer(code, reason)
        except Exception:
            # Already closed by the peer or the server: nothing left to do.
            log.debug("closing a websocket that had already gone", exc_info=True)


class CredentialCache:
    """The viewers of recently used bearer tokens, by the token's digest, so that a request
    authenticates without a statement (`accounts.authenticate`).

    Kept only while the process hears every credential that ends (`Connections.listening`); an
    ended credential is forgotten as its announcement arrives, everything is forgotten when the
    process stops hearing, and each entry lives at most `ttl` seconds whatever happens. A lookup
    that started before a credential ended cannot store what it read: `generation` moves on every
    forget, and `put` takes the generation read before the lookup."""

    def __init__(self, max_entries: int = 10_000, ttl: float = 60.0) -> None:
        self._entries: OrderedDict[str, tuple[Viewer, float]] = OrderedDict()
        self._max_entries = max_entries
        self._ttl = ttl
        self.generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: str) -> Viewer | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            del self._entries[digest]
            return None
        return entry[0]

    def put(self, digest: str, viewer: Viewer, generation: int) -> None:
        if generation != self.generation:
            return  # a credential ended while this one was being looked up: ask again next time
        self._entries[digest] = (viewer, time.monotonic() + self._ttl)
        self._entries.move_to_end(digest)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def forget(self, *, session_id: int | None = None, api_token_id: int | None = None) -> None:
        self.generation += 1
        for digest, (v, _) in list(self._entries.items()):
            if (session_id is not None and v.session_id == session_id) or (
                api_token_id is not None and v.api_token_id == api_token_id
            ):
                del self._entries[digest]

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()


class Connections:
    """The registry of this process's open websockets, and what it knows of live credentials."""

    def __init__(self) -> None:
        self._open: set[Connection] = set()
        # True while this process hears every credential that ends (see `listen`): an open
        # socket's credential is then known to be live without asking the database, and a
        # request's token may be answered from `credentials`.
        self.listening = False
        self.credentials = CredentialCache()

    def __len__(self) -> int:
        return len(self._open)

    def add(self, connection: Connection) -> None:
        if connection not in self._open:
            self._open.add(connection)
            metrics.WEBSOCKETS_OPEN.inc()

    def discard(self, connection: Connection) -> None:
        if connection in self._open:
            self._open.discard(connection)
            metrics.WEBSOCKETS_OPEN.dec()

    def count_for(self, viewer: Viewer) -> int:
        """Open sockets (not being closed) held with the same session or API token as `viewer`."""
        return sum(
            1
            for c in self._open
            if c.close_code is None
            and c.viewer.session_id == viewer.session_id
            and c.viewer.api_token_id == viewer.api_token_id
        )

    def close_credential(self, *, session_id: int | None = None, api_token_id: int | None = None) -> int:
        """Close every socket opened with this session or API token, and forget the credential;
        returns how many sockets."""
        self.credentials.forget(session_id=session_id, api_token_id=api_token_id)
        closed = 0
        for connection in list(self._open):
            v = connection.viewer
            if (session_id is not None and v.session_id == session_id) or (
                api_token_id is not None and v.api_token_id == api_token_id
            ):
                connection.close_soon(CLOSE_FORBIDDEN, "Signed out or token revoked")
                closed += 1
        return closed

    async def recheck(self, services: Services) -> int:
        """Close the sockets whose credential has ended (revoked, expired); returns how many."""
        connections = [c for c in self._open if c.close_code is None]
        if not connections:
            return 0
        now = services.clock.now()
        live_sessions = await _live_ids(
            Session, {c.viewer.session_id for c in connections}, Q(expires_at__gt=now)
        )
        live_tokens = await _live_ids(
            ApiToken,
            {c.viewer.api_token_id for c in connections},
            Q(expires_at__isnull=True) | Q(expires_at__gt=now),
        )
        closed = 0
        for connection in connections:
            v = connection.viewer
            if v.session_id not in live_sessions and v.api_token_id not in live_tokens:
                connection.close_soon(CLOSE_FORBIDDEN, "Signed out or token revoked")
                closed += 1
        return closed

    async def listen(self, services: Services, max_delay: float = 10.0) -> None:
        """Close sockets as credentials end anywhere; runs for the life of the process."""
        delay = 0.5
        while True:
            try:
                async with services.hub.subscribe(CONTROL_CHANNEL) as control:
                    # Whatever ended while this process was not listening.
                    await self.recheck(services)
                    self.listening = control.failure is None
                    metrics.BROADCAST_LISTENING.set(int(self.listening))
                    delay = 0.5
                    async for envelope in control:
                        self._apply(envelope)
            except SubscriptionEnded:
                pass
            except Exception:
                log.exception("credential listener failed; restarting")
            finally:
                self.listening = False
                metrics.BROADCAST_LISTENING.set(0)
                self.credentials.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)

    def _apply(self, envelope: Envelope) -> None:
        if envelope.kind != CREDENTIAL_ENDED:
            return
        session_id = envelope.payload.get("sessionId")
        api_token_id = envelope.payload.get("apiTokenId")
        self.close_credential(
            session_id=int(session_id) if session_id is not None else None,
            api_token_id=int(api_token_id) if api_token_id is not None else None,
        )


async def _live_ids(model: type[Session] | type[ApiToken], ids: Iterable[int | None], alive: Q) -> set[int]:
    wanted = sorted(i for i in ids if i is not None)
    found: set[int] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = await model.filter(alive, id__in=chunk, revoked_at__isnull=True).values_list("id", flat=True)
        found.update(int(r) for r in rows)  # type: ignore[call-overload]
    return found


async def announce_ended(
    services: Services, *, session_id: int | None = None, api_token_id: int | None = None
) -> None:
    """Tell every server process that a credential has ended, so they close its sockets now.

    Called after the change has committed. If the broadcast is down, the other processes catch up
    when they listen again (they re-check every socket), so a failure here is logged, not raised.
    """
    payload: dict[str, object] = {}
    if session_id is not None:
        payload["sessionId"] = session_id
    if api_token_id is not None:
        payload["apiTokenId"] = api_token_id
    # This process closes its own sockets at once, whatever the broadcast's state.
    services.connections.close_credential(session_id=session_id, api_token_id=api_token_id)
    if not await services.hub.publish(
        Envelope(CONTROL_CHANNEL, 0, CREDENTIAL_ENDED, payload, services.clock.now())
    ):
        log.warning("could not announce an ended credential; other processes will re-check")
