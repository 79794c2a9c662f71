"""`/metrics`: Prometheus text that Prometheus's own parser reads, counting what happened."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

import server
from tests.client import DEADLINE, GraphQLClient
from tests.conftest import Live
from tests.factories import PASSWORD, sign_up, user_cursor
from tests.servers import ROOT, require_redis, serve
from tests.test_multiprocess import LOG_IN, NOTIFICATIONS

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def _scrape(gql: GraphQLClient, token: str | None = None) -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = await gql.http.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_errors_sockets_and_subscriptions_are_counted(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    before = await _scrape(gql)
    for _ in range(3):
        await gql.data("{ __typename }")
    body = await gql("{ nosuchfield }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert (await gql.http.get("/nowhere")).status_code == 404
    after = await _scrape(gql)
    ok = {"route": "/graphql", "method": "POST", "status": "200"}
    assert (
        _value(after, "senvault_http_requests_total", **ok)
        - _value(before, "senvault_http_requests_total", **ok)
        == 4
    )
    other = {"route": "other", "method": "GET", "status": "404"}
    assert _value(after, "senvault_http_requests_total", **other) >= 1
    failed = {"code": "BAD_USER_INPUT"}
    assert (
        _value(after, "senvault_graphql_errors_total", **failed)
        - _value(before, "senvault_graphql_errors_total", **failed)
        == 1
    )
    durations = _value(after, "senvault_http_request_duration_seconds_count", route="/graphql")
    assert durations - _value(before, "senvault_http_request_duration_seconds_count", route="/graphql") == 4
    # A socket with a subscription running: counted while open, and no longer once closed.
    async with gql.socket(family.token) as sock:
        await sock.ack()
        op = await sock.subscribe(NOTIFICATIONS, {"after": await user_cursor(family)})
        # Running once it delivers: a sign-in notifies the family.
        await gql.data(LOG_IN, {"e": family.email, "p": PASSWORD})
        await sock.next_event(op, timeout=DEADLINE)
        during = await _scrape(gql)
        assert _value(during, "senvault_websockets_open") == _value(after, "senvault_websockets_open") + 1
        assert _value(during, "senvault_subscriptions_active") >= 1
        await sock.send({"id": op, "type": "complete"})
    closed = await _scrape(gql)
    assert _value(closed, "senvault_websockets_open") == _value(after, "senvault_websockets_open")


async def test_a_metrics_token_keeps_the_numbers_to_its_holder(
    live_server: Live, settings: server.Settings
) -> None:
    token = uuid.uuid4().hex
    env = {"DATABASE_URL": settings.database_url, "METRICS_TOKEN": token}
    async with serve(env) as served:
        refused = await served.client.http.get("/metrics")
        assert refused.status_code == 401
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        wrong = await served.client.http.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        samples = await _scrape(served.client, token)
    assert ("senvault_broadcast_listening", frozenset()) in samples


async def test_every_worker_counts_into_one_answer(
    live_server: Live, settings: server.Settings, redis_url: str
) -> None:
    """With --workers 2 the requests both workers answered are in whichever one serves /metrics."""
    await require_redis(redis_url)
    env = {
        "DATABASE_URL": settings.database_url,
        "BROADCAST_URL": redis_url,
        "BROADCAST_NAMESPACE": f"metrics-{uuid.uuid4().hex[:8]}",
    }
    async with serve(env, workers=2) as served:
        assert len(served.workers) == 2
        answered: set[str] = set()
        for _ in range(40):
            # A new connection each time, so both workers take some.
            async with served.client.http.stream(
                "GET", "/healthz", headers={"Connection": "close"}
            ) as answer:
                await answer.aread()
                answered.add(answer.json()["server"])
        assert len(answered) == 2, "both workers should have answered some requests"
        for _ in range(3):
            samples = await _scrape(served.client)
            ok = {"route": "/healthz", "method": "GET", "status": "200"}
            assert _value(samples, "senvault_http_requests_total", **ok) >= 40


def test_the_sockets_of_a_worker_that_died_stop_being_counted(tmp_path: Path) -> None:
    """Multiprocess mode: a worker killed with 5 sockets open (uvicorn starts another in its place)
    leaves its gauge file behind; the next `/metrics` counts only the living workers' sockets."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def worker(script: str) -> str:
        ran = subprocess.run(
            [sys.executable, "-c", "from resolvers import metrics\n" + script],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return ran.stdout

    worker("metrics.WEBSOCKETS_OPEN.inc(5)")  # this worker then dies
    text = worker("metrics.WEBSOCKETS_OPEN.inc(2)\nprint(metrics.exposition()[0].decode())")
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples["senvault_websockets_open"] == 2
