"""The shape every subscription shares: replay from the log after a cursor, then go live."""

from __future__ import annotations

from collections.abc import AsyncIterator, Container

from graphql import GraphQLError

from resolvers import accounts, events
from resolvers.broadcast import SubscriptionEnded
from resolvers.errors import UserError
from resolvers.events import Envelope
from resolvers.viewer import Viewer
from schema.context import Info
from schema.loaders import Loaders

REPLAY_PAGE = 500


def _ended(code: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


async def stream(
    info: Info, viewer: Viewer, channel: str, after: str | None, kinds: Container[str]
) -> AsyncIterator[Envelope]:
    """Events of `kinds` on `channel`: those after `after` from the log, then live, each once.

    Before each event the viewer's credential is checked again and the request's loaders are
    renewed, so nothing is delivered from a revoked session or out of a stale cache.
    """
    services = info.context.services
    try:
        after_seq = None if after is None else events.decode_cursor(after, channel)
    except UserError as exc:
        raise _ended("BAD_USER_INPUT", exc.message) from exc
    # Subscribe before reading the log: what commits meanwhile waits in the live queue, and the
    # sequence check below drops what the replay already delivered.
    async with services.hub.subscribe(channel) as live:
        last = after_seq if after_seq is not None else await events.last_seq(channel)
        while after_seq is not None:
            batch = await events.replay(channel, last, REPLAY_PAGE)
            for envelope in batch:
                last = envelope.seq
                if envelope.kind in kinds:
                    await _authorise(info, viewer)
                    yield envelope
            if len(batch) < REPLAY_PAGE:
                break
        while True:
            try:
                envelope = await live.next()
            except SubscriptionEnded as exc:
                raise _ended(exc.code, exc.message) from exc
            if envelope.seq <= last:
                continue
            last = envelope.seq
            if envelope.kind in kinds:
                await _authorise(info, viewer)
                yield envelope


async def _authorise(info: Info, viewer: Viewer) -> None:
    if not await accounts.still_valid(info.context.services, viewer):
        raise _ended("UNAUTHENTICATED", "Your session has ended; sign in again.")
    info.context.loaders = Loaders()
