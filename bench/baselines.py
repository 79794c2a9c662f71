"""The baselines `bench/read.py` measures the API against, as one Starlette app under uvicorn.

- `POST /bare`: a bare Starlette route: reads the body, answers `{"data":{"__typename":"Query"}}`.
- `POST /strawberry`: strawberry alone (a one-field schema, its own parser and validation caches):
  what the GraphQL layer costs before anything of ours.
- `POST /dashboard`: the advocate's dashboard page written by hand: the bearer token checked
  against `sessions`, then the page in three statements over one asyncpg connection (tickets with
  their request and family name; checklist items; the first messages of each thread, windowed),
  encoded with orjson. It answers the same bytes as the API for `DASHBOARD` in `bench/read.py`
  (the bench checks that before timing), with the `extensions` it is given (`BASELINE_EXTENSIONS`).

Run by `bench/read.py`; configured by `DATABASE_URL` (PostgreSQL) and `BASELINE_EXTENSIONS` (JSON).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import strawberry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache

TICKETS = """
SELECT t.id, t.status, t.next_sla_due_at, t.next_sla_at_risk_from,
       r.id AS request_id, r.thread_id, r.child_display_name, r.child_age_years, r.ehcp_stage,
       u.display_name AS family_name
FROM tickets t
JOIN support_requests r ON r.id = t.request_id
JOIN families f ON f.id = t.family_id
JOIN users u ON u.id = f.user_id
WHERE t.advocate_id = $1
ORDER BY (t.next_sla_due_at IS NULL), t.next_sla_due_at, t.id
LIMIT $2
"""
ITEMS = """
SELECT id, ticket_id, text, done FROM checklist_items WHERE ticket_id = ANY($1::bigint[])
ORDER BY position, id
"""
MESSAGES = """
SELECT id, thread_id, body, created_at, author_id FROM (
  SELECT id, thread_id, body, created_at, author_id,
         ROW_NUMBER() OVER (PARTITION BY thread_id ORDER BY id) AS rn
  FROM messages WHERE thread_id = ANY($1::bigint[])
) ranked WHERE rn <= $2 ORDER BY thread_id, id
"""
VIEWER = """
SELECT s.user_id, a.id AS advocate_id FROM sessions s JOIN advocates a ON a.user_id = s.user_id
WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2
"""
MESSAGES_PER_TICKET = 5


def gid(kind: str, row_id: int) -> str:
    return base64.b64encode(f"{kind}:{row_id}".encode()).decode()


def keyset(kind: str, *parts: str) -> str:
    raw = json.dumps([kind, *parts], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def sla_state(due: datetime | None, at_risk_from: datetime | None, now: datetime) -> str | None:
    if due is None or at_risk_from is None:
        return None
    if now >= due:
        return "BREACHED"
    return "AT_RISK" if now > at_risk_from else "ON_TRACK"


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@asynccontextmanager
async def lifespan(app: Starlette) -> Any:
    app.state.pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=1, max_size=10)
    app.state.extensions = json.loads(os.environ.get("BASELINE_EXTENSIONS", "{}"))
    yield
    await app.state.pool.close()


async def bare(request: Request) -> Response:
    await request.body()
    return JSONResponse({"data": {"__typename": "Query"}})


def _unauthorised() -> Response:
    return Response(b'{"errors":[{"message":"Not signed in."}]}', 401, media_type="application/json")


async def dashboard(request: Request) -> Response:
    body = orjson.loads(await request.body())
    first = int(body.get("variables", {}).get("n", 20))
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return _unauthorised()
    now = datetime.now(UTC)
    async with request.app.state.pool.acquire() as db:
        viewer = await db.fetchrow(VIEWER, hashlib.sha256(token.encode()).hexdigest(), now)
        if viewer is None:
            return _unauthorised()
        rows = await db.fetch(TICKETS, viewer["advocate_id"], first + 1)
        shown = rows[:first]
        ticket_ids = [r["id"] for r in shown]
        items: dict[int, list[dict[str, Any]]] = {i: [] for i in ticket_ids}
        for item in await db.fetch(ITEMS, ticket_ids):
            items[item["ticket_id"]].append(
                {"id": gid("ChecklistItem", item["id"]), "text": item["text"], "done": item["done"]}
            )
        threads: dict[int, list[dict[str, Any]]] = {r["thread_id"]: [] for r in shown}
        for m in await db.fetch(MESSAGES, list(threads), MESSAGES_PER_TICKET):
            threads[m["thread_id"]].append(
                {
                    "node": {
                        "id": gid("Message", m["id"]),
                        "body": m["body"],
                        "createdAt": iso(m["created_at"]),
                        "fromViewer": m["author_id"] == viewer["user_id"],
                    }
                }
            )
    edges = [
        {
            "node": {
                "id": gid("Ticket", r["id"]),
                "status": r["status"],
                "slaState": sla_state(r["next_sla_due_at"], r["next_sla_at_risk_from"], now),
                "nextSlaDueAt": iso(r["next_sla_due_at"]),
                "familyDisplayName": r["family_name"],
                "checklist": items[r["id"]],
                "request": {
                    "id": gid("SupportRequest", r["request_id"]),
                    "childDisplayName": r["child_display_name"],
                    "childAgeYears": r["child_age_years"],
                    "ehcpStage": r["ehcp_stage"],
                    "child": None,  # the child's record is the family's alone
                    "messages": {"edges": threads[r["thread_id"]]},
                },
            }
        }
        for r in shown
    ]
    last = shown[-1] if shown else None
    end_cursor = keyset("TicketQueue", iso(last["next_sla_due_at"]) or "", str(last["id"])) if last else None
    page = {
        "data": {
            "ticketQueue": {
                "pageInfo": {"hasNextPage": len(rows) > first, "endCursor": end_cursor},
                "edges": edges,
            }
        },
        "extensions": request.app.state.extensions,
    }
    return Response(orjson.dumps(page), media_type="application/json")


@strawberry.type
class _Query:
    ok: bool = True


_STRAWBERRY_ALONE = strawberry.Schema(query=_Query, extensions=[ParserCache, ValidationCache])

app = Starlette(
    routes=[
        Route("/bare", bare, methods=["POST"]),
        Route("/dashboard", dashboard, methods=["POST"]),
        Route(
            "/strawberry", GraphQL(strawberry.Schema(query=_Query, extensions=[ParserCache, ValidationCache]))
        ),
    ],
    lifespan=lifespan,
)
