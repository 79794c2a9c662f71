"""The durable event log behind every subscription.

An event is written in the same transaction as the change it describes, with the next sequence
number of its channel. The per-channel counter row is updated inside that transaction, so writers to
one channel serialise on it and sequence order is commit order: a client that replays `seq > cursor`
never skips an event that committed late.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class ChannelCounter(Model):
    channel = fields.CharField(max_length=100, primary_key=True)
    last_seq = fields.BigIntField(default=0)

    class Meta:
        table = "event_channel_counters"


class StoredEvent(Model):
    id = fields.BigIntField(primary_key=True)
    channel = fields.CharField(max_length=100)
    seq = fields.BigIntField()
    kind = fields.CharField(max_length=50)
    payload: dict[str, object] = fields.JSONField()
    occurred_at = fields.DatetimeField()

    class Meta:
        table = "events"
        unique_together = (("channel", "seq"),)
