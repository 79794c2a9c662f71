"""One events module: event envelopes, channel names, the durable log, publish-after-commit.

Every change that someone may be told about goes through `unit_of_work`: the change and its events
are written in one transaction, and the events are broadcast only once that transaction has
committed. The stored copy is what a reconnecting subscriber replays from (`after: cursor`).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from models.events import ChannelCounter, StoredEvent
from resolvers.errors import InvalidInput
from resolvers.ids import parse_row_id

if TYPE_CHECKING:
    from resolvers.services import Services

log = logging.getLogger("senvault.events")


def user_channel(user_id: int) -> str:
    """Everything addressed to one person: notifications, their requests' updates."""
    return f"user:{user_id}"


def advocate_channel(advocate_id: int) -> str:
    """An advocate's dashboard: new requests, ticket changes, access ending."""
    return f"advocate:{advocate_id}"


def thread_channel(thread_id: int) -> str:
    """One message thread, shared by a request and the relationship it becomes."""
    return f"thread:{thread_id}"


@dataclass(frozen=True, slots=True)
class Envelope:
    """One event as stored and as broadcast: which channel, where in it, what happened."""

    channel: str
    seq: int
    kind: str
    payload: dict[str, Any]
    occurred_at: datetime
    # What this process's subscribers work out alike from this event, worked out once
    # (`schema.streams.once`); lives as long as the event is queued or being delivered.
    shared: dict[Hashable, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def cursor(self) -> str:
        return encode_cursor(self.channel, self.seq)

    def encode(self) -> str:
        # Broadcast payloads must be strings: the Redis backend sends bytes, and the memory
        # backend would happily pass objects and hide that in tests.
        return json.dumps(
            {
                "channel": self.channel,
                "seq": self.seq,
                "kind": self.kind,
                "payload": self.payload,
                "occurredAt": self.occurred_at.isoformat(),
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, raw: str) -> Envelope:
        data = json.loads(raw)
        return cls(
            channel=data["channel"],
            seq=int(data["seq"]),
            kind=data["kind"],
            payload=data["payload"],
            occurred_at=datetime.fromisoformat(data["occurredAt"]),
        )

    @classmethod
    def from_stored(cls, row: StoredEvent) -> Envelope:
        return cls(row.channel, row.seq, row.kind, dict(row.payload), row.occurred_at)


def encode_cursor(channel: str, seq: int) -> str:
    return base64.urlsafe_b64encode(f"ev1:{channel}:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, channel: str) -> int:
    """The sequence number a cursor of `channel` points at; INVALID for any other string."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        version, rest = base64.urlsafe_b64decode(padded.encode()).decode().split(":", 1)
        cursor_channel, seq = rest.rsplit(":", 1)
        value = parse_row_id(seq, minimum=0)
        if version != "ev1" or cursor_channel != channel or value is None:
            raise ValueError(cursor)
        return value
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("after", "This cursor does not belong to this subscription.") from exc


_TAKE_SEQS_SQL = {
    "postgres": (
        "INSERT INTO event_channel_counters (channel, last_seq) VALUES ($1, $2) "
        "ON CONFLICT (channel) DO UPDATE SET last_seq = event_channel_counters.last_seq + $2 "
        "RETURNING last_seq"
    ),
    "sqlite": (
        "INSERT INTO event_channel_counters (channel, last_seq) VALUES (?1, ?2) "
        "ON CONFLICT (channel) DO UPDATE SET last_seq = event_channel_counters.last_seq + ?2 "
        "RETURNING last_seq"
    ),
}


@dataclass
class Outbox:
    """Collects the events of one transaction; they are stored at its end and broadcast after commit.

    Sequence numbers are taken when the transaction is about to commit, channel by channel in
    sorted order: every transaction then locks channel counters in the same order, and holds them
    only for its last statements, so two transactions emitting to the same channels in different
    orders cannot deadlock (on PostgreSQL a counter row stays locked until commit).
    """

    connection: BaseDBAsyncClient
    now: datetime
    emitted: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    pending: list[Envelope] = field(default_factory=list)

    async def emit(self, channel: str, kind: str, payload: dict[str, Any]) -> None:
        """An event of this transaction, stored with its channel's next sequence number at the end."""
        self.emitted.append((channel, kind, payload))

    async def store(self) -> None:
        """Number and store the emitted events, in emission order within each channel."""
        by_channel: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
        for position, (channel, kind, payload) in enumerate(self.emitted):
            by_channel.setdefault(channel, []).append((position, kind, payload))
        numbered: list[tuple[int, Envelope]] = []
        sql = _TAKE_SEQS_SQL[self.connection.capabilities.dialect]
        for channel in sorted(by_channel):
            events = by_channel[channel]
            # execute_query_dict: Tortoise's asyncpg execute_query drops the rows of an INSERT.
            rows = await self.connection.execute_query_dict(sql, [channel, len(events)])
            first = int(rows[0]["last_seq"]) - len(events) + 1
            for seq, (position, kind, payload) in enumerate(events, start=first):
                numbered.append((position, Envelope(channel, seq, kind, payload, self.now)))
        numbered.sort(key=lambda item: item[0])
        self.pending = [envelope for _, envelope in numbered]
        if self.pending:
            await StoredEvent.bulk_create(
                [
                    StoredEvent(
                        channel=e.channel, seq=e.seq, kind=e.kind, payload=e.payload, occurred_at=self.now
                    )
                    for e in self.pending
                ],
                using_db=self.connection,
            )


@asynccontextmanager
async def unit_of_work(services: Services) -> AsyncIterator[Outbox]:
    """A transaction whose emitted events are broadcast once it has committed, in order."""
    async with in_transaction() as connection:
        outbox = Outbox(connection, services.clock.now())
        yield outbox
        await outbox.store()
    # The change and its events are committed: if live delivery gives up (bounded, never a hang),
    # subscribers are told the broadcast was interrupted and replay these events from the log.
    if not await services.hub.publish(*outbox.pending):
        log.warning(
            "broadcast of %d event(s) gave up (%s); subscribers replay them from the log",
            len(outbox.pending),
            services.hub.last_error or "broadcast unavailable",
        )


async def head(channel: str) -> int:
    """The sequence number of the channel's newest committed event (0 before its first).

    Read from the counter row, which pruning never touches: sequences never restart, and every
    number up to the head belongs to a committed event (a rolled-back emit rolls its number back).
    """
    counter = await ChannelCounter.get_or_none(channel=channel)
    return int(counter.last_seq) if counter is not None else 0


REPLAY_PAGE = 500
# The code a subscriber is given when events after its cursor were pruned (README, "Error codes").
CURSOR_EXPIRED = "CURSOR_EXPIRED"


class CursorExpired(Exception):
    """Some of the events after a cursor are no longer in the log (pruned after the retention)."""

    message = "The events after this cursor are no longer kept: reload, then subscribe without `after`."


async def catch_up(
    channel: str,
    after_seq: int,
    upto: int,
    first: list[Envelope] | None = None,
    on_page: Callable[[list[Envelope]], object] | None = None,
) -> AsyncIterator[Envelope]:
    """Every stored event after `after_seq` up to `upto`, in order, starting with `first` when it was
    read already (`head_and_replay`). Sequence numbers are dense: where one is missing, it was
    pruned, and this raises CursorExpired after the events before it. `on_page` is shown each page
    of events as it is read, before its first event is yielded."""
    expected = after_seq + 1
    while expected <= upto:
        if first is not None:
            batch, first = first, None
        else:
            batch = await replay(channel, expected - 1, REPLAY_PAGE, upto=upto)
        if on_page is not None:
            on_page(batch)
        for envelope in batch:
            if envelope.seq != expected:
                raise CursorExpired
            expected += 1
            yield envelope
        if not batch:
            raise CursorExpired


async def head_and_replay(channel: str, after_seq: int, limit: int) -> tuple[int, list[Envelope]]:
    """`head(channel)` and the first `limit` of `replay(channel, after_seq, upto=head)`, in one
    statement: what a subscriber resuming from a cursor reads (a reconnecting dashboard)."""
    client = connections.get("default")
    postgres = client.capabilities.dialect == "postgres"
    after, name, most = ("$2", "$1", "$3") if postgres else ("?", "?", "?")
    sql = (
        "SELECT c.last_seq AS head, e.seq, e.kind, e.payload, e.occurred_at"
        " FROM event_channel_counters c LEFT JOIN events e"
        f" ON e.channel = c.channel AND e.seq > {after} AND e.seq <= c.last_seq"
        f" WHERE c.channel = {name} ORDER BY e.seq LIMIT {most}"
    )
    values: list[Any] = [channel, after_seq, limit] if postgres else [after_seq, channel, limit]
    rows = await client.execute_query_dict(sql, values)
    if not rows:
        return 0, []
    fields = StoredEvent._meta.fields_map
    payload, occurred_at = fields["payload"], fields["occurred_at"]
    found = [
        Envelope(
            channel,
            int(row["seq"]),
            str(row["kind"]),
            dict(payload.to_python_value(row["payload"])),
            occurred_at.to_python_value(row["occurred_at"]),
        )
        for row in rows
        if row["seq"] is not None
    ]
    return int(rows[0]["head"]), found


async def replay(channel: str, after_seq: int, limit: int = 1000, upto: int | None = None) -> list[Envelope]:
    """Stored events of a channel after a sequence number (and up to `upto`), oldest first."""
    query = StoredEvent.filter(channel=channel, seq__gt=after_seq)
    if upto is not None:
        query = query.filter(seq__lte=upto)
    rows = await query.order_by("seq").limit(limit)
    return [Envelope.from_stored(row) for row in rows]


async def prune(services: Services, batch: int = 1000, max_batches: int = 20) -> int:
    """Delete events older than the retention, oldest first, in bounded batches; returns how many.

    Rows are taken in id order, which within a channel is sequence order (ids are drawn while the
    channel's counter row is locked), and deletion stops at the first event still retained: what
    remains of each channel is an unbroken run up to its head, so a replay can tell a pruned gap.
    """
    cutoff = services.clock.now() - services.policy.event_retention
    deleted = 0
    for _ in range(max_batches):
        rows = await StoredEvent.all().order_by("id").limit(batch).values_list("id", "occurred_at")
        boundary: int | None = None
        for row_id, occurred_at in rows:
            if occurred_at >= cutoff:
                break
            boundary = row_id
        if boundary is None:
            break
        deleted += await StoredEvent.filter(id__lte=boundary).delete()
        if boundary != rows[-1][0]:
            break
    if deleted:
        log.info("pruned %d events older than %s", deleted, cutoff.isoformat())
    return deleted
