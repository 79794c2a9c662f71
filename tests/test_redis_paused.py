"""A hung Redis does not hang the API (SPEC §12): with a real `redis-server` paused (SIGSTOP), changes
that publish events answer, and their events reach subscribers from the log once they resubscribe.

The served process runs on a private Redis with the default heartbeat (5 s), so only publishing's own
bound can answer in time. The mutations go over a websocket: the HTTP rate limiter still waits on
the same Redis until it gets its own bound, and websocket operations do not pass through it; the
domain path and the publish are the same.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

import server
from models.support import SupportRequest
from resolvers import events
from tests.client import DEADLINE, GraphQLClient, Socket
from tests.factories import add_child, advocate, db_id, send_request, sign_up
from tests.servers import PrivateRedis, Served, serve

MESSAGES = """
subscription($r: ID!, $after: String) {
  messageAdded(requestId: $r, after: $after) { cursor message { id body } }
}
"""
ACCEPT = "mutation($r: ID!) { acceptSupportRequest(input: {requestId: $r}) { userErrors { code } } }"
SEND = """
mutation($r: ID!, $b: String!) {
  sendMessage(input: {requestId: $r, body: $b}) { message { id } userErrors { code } }
}
"""
# Long enough for any loaded machine; only an operation that waits on the paused Redis without a
# bound (each publish used to wait up to the heartbeat interval, several per change) can pass it.
HANG = 10.0


@pytest.fixture
async def paused_redis_server(
    live_server: object, settings: server.Settings
) -> AsyncIterator[tuple[Served, PrivateRedis]]:
    redis = PrivateRedis()
    await redis.start()
    env = {
        "DATABASE_URL": settings.database_url,
        "BROADCAST_URL": redis.url,
        "BROADCAST_NAMESPACE": f"paused-{uuid.uuid4().hex[:8]}",
        "BROADCAST_HEARTBEAT_SECONDS": "5",
    }
    try:
        async with serve(env) as served:
            yield served, redis
    finally:
        if redis.proc is not None:
            redis.proc.send_signal(signal.SIGCONT)
        redis.stop()


async def _operation(sock: Socket, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    op = await sock.subscribe(query, variables)
    return await sock.next_event(op)


async def _receive_message(gql: GraphQLClient, token: str, request_id: str, cursor: str) -> list[str]:
    """Subscribe as a client should: on BROADCAST_INTERRUPTED, resubscribe from the last cursor."""
    received: list[str] = []
    while not received:
        async with gql.socket(token) as sock:
            await sock.ack()
            op = await sock.subscribe(MESSAGES, {"r": request_id, "after": cursor})
            result = await sock.next_event(op)
            if result.get("errors"):
                errors = result["errors"]
                assert errors[0]["extensions"]["code"] == "BROADCAST_INTERRUPTED", errors
                await asyncio.sleep(0.2)
                continue
            event = result["data"]["messageAdded"]
            received.append(event["message"]["body"])
            cursor = event["cursor"]
    return received


async def test_changes_answer_while_redis_is_paused_and_their_events_replay_from_the_log(
    paused_redis_server: tuple[Served, PrivateRedis],
) -> None:
    served, redis = paused_redis_server
    gql = served.client
    family = await sign_up(gql)
    child = await add_child(gql, family)
    adv = await advocate(gql)
    request_id = (await send_request(gql, family, adv.advocate_id, child))["supportRequest"]["id"]
    thread_id = (await SupportRequest.get(id=db_id(request_id))).thread_id
    cursor = events.encode_cursor(
        events.thread_channel(thread_id), await events.head(events.thread_channel(thread_id))
    )

    async with gql.socket(family.token) as watching, gql.socket(adv.token) as acting:
        await watching.ack()
        await acting.ack()
        live = await watching.subscribe(MESSAGES, {"r": request_id, "after": cursor})
        assert redis.proc is not None
        os.kill(redis.proc.pid, signal.SIGSTOP)
        try:
            accepted = await asyncio.wait_for(_operation(acting, ACCEPT, {"r": request_id}), HANG)
            assert not accepted.get("errors"), accepted
            assert accepted["data"] == {"acceptSupportRequest": {"userErrors": []}}
            sent = await asyncio.wait_for(
                _operation(acting, SEND, {"r": request_id, "b": "Sent while Redis was paused"}), HANG
            )
            assert sent["data"]["sendMessage"]["userErrors"] == []
            # The live subscriber is told its feed was interrupted, not left waiting. (It may first
            # get what its replay from the log found: its SUBSCRIBE is not confirmed while Redis is
            # paused, so it replays the log and then hears that live delivery failed.)
            interrupted = await watching.next_event(live)
            while "errors" not in interrupted:
                assert interrupted["data"]["messageAdded"]["message"]["body"] == "Sent while Redis was paused"
                interrupted = await watching.next_event(live)
            assert interrupted["errors"][0]["extensions"]["code"] == "BROADCAST_INTERRUPTED"
            # With a jittered moment to come back (one subscriber: within the shortest window).
            assert 100 <= interrupted["errors"][0]["extensions"]["retryAfterMs"] <= 1000
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)

    # Resubscribing from its cursor, the family gets the message from the log, exactly once.
    received = await asyncio.wait_for(_receive_message(gql, family.token, request_id, cursor), DEADLINE)
    assert received == ["Sent while Redis was paused"]
