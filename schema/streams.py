"""The shape every subscription shares: replay from the log after a cursor, then go live.

Error codes a subscription ends with (`extensions.code`), and what a client should do:
- BROADCAST_INTERRUPTED: live delivery stopped (the server lost Redis, or is shutting down).
  Resubscribe with `after` set to the last cursor received; retry while it is refused the same way.
- SLOW_CONSUMER: the client fell too far behind; the socket is closed with 4008. Reconnect and
  resubscribe with `after`.
- CURSOR_EXPIRED: the events after that cursor are older than the log keeps. Reload the current
  state (queries), then subscribe without `after`.
- UNAUTHENTICATED: the session or token has ended; the socket is closed with 4403. Sign in again.
- BAD_USER_INPUT: the cursor is not one of this subscription's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Container

from graphql import GraphQLError

from resolvers import accounts, events
from resolvers.broadcast import SubscriptionEnded
from resolvers.connections import CLOSE_FORBIDDEN, CLOSE_SLOW_CONSUMER
from resolvers.errors import UserError
from resolvers.events import Envelope
from resolvers.viewer import Viewer
from schema.context import Info
from schema.loaders import Loaders

REPLAY_PAGE = 500
CURSOR_EXPIRED = "CURSOR_EXPIRED"


def _ended(code: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def _expired() -> GraphQLError:
    return _ended(
        CURSOR_EXPIRED,
        "The events after this cursor are no longer kept: reload, then subscribe without `after`.",
    )


async def stream(
    info: Info, viewer: Viewer, channel: str, after: str | None, kinds: Container[str]
) -> AsyncIterator[Envelope]:
    """Events of `kinds` on `channel`: those after `after` from the log, then live, each once, in order.

    Before each event the viewer's credential is checked again and the request's loaders are
    renewed, so nothing is delivered from a revoked session or out of a stale cache.
    """
    services = info.context.services
    try:
        after_seq = None if after is None else events.decode_cursor(after, channel)
    except UserError as exc:
        raise _ended("BAD_USER_INPUT", exc.message) from exc
    await _authorise(info, viewer)
    connection = info.context.connection

    def overflowed() -> None:
        # The socket's sends are blocked (the peer stopped reading): close it from outside.
        if connection is not None:
            connection.close_soon(CLOSE_SLOW_CONSUMER, "Slow consumer")

    # Subscribe before reading the log: what commits meanwhile waits in the live queue, and the
    # sequence check below drops what the replay already delivered.
    async with services.hub.subscribe(channel, on_overflow=overflowed) as live:
        head = await events.head(channel)
        last = head
        if after_seq is not None:
            if after_seq > head:
                raise _ended("BAD_USER_INPUT", "This cursor does not belong to this subscription.")
            last = after_seq
            async for envelope in _catch_up(channel, last, head):
                last = envelope.seq
                if envelope.kind in kinds:
                    await _authorise(info, viewer)
                    yield envelope
        while True:
            try:
                envelope = await live.next()
            except SubscriptionEnded as exc:
                raise _ended(exc.code, exc.message) from exc
            if envelope.seq <= last:
                continue
            if envelope.seq > last + 1:
                # Concurrent transactions publish in any order, but every number below this one
                # has committed (sequence order is commit order): take the gap from the log.
                async for missed in _catch_up(channel, last, envelope.seq - 1):
                    last = missed.seq
                    if missed.kind in kinds:
                        await _authorise(info, viewer)
                        yield missed
            last = envelope.seq
            if envelope.kind in kinds:
                await _authorise(info, viewer)
                yield envelope


async def _catch_up(channel: str, after_seq: int, upto: int) -> AsyncIterator[Envelope]:
    """Every stored event after `after_seq` up to `upto`; CURSOR_EXPIRED if any was pruned."""
    expected = after_seq + 1
    while expected <= upto:
        batch = await events.replay(channel, expected - 1, REPLAY_PAGE, upto=upto)
        for envelope in batch:
            # Sequence numbers are dense: a missing one was pruned with the old events.
            if envelope.seq != expected:
                raise _expired()
            expected += 1
            yield envelope
        if not batch:
            raise _expired()


async def _authorise(info: Info, viewer: Viewer) -> None:
    if not await accounts.still_valid(info.context.services, viewer):
        if info.context.connection is not None:
            info.context.connection.close_soon(CLOSE_FORBIDDEN, "Signed out or token revoked")
        raise _ended("UNAUTHENTICATED", "Your session has ended; sign in again.")
    info.context.loaders = Loaders()
