"""SENVault API server: settings, lifespan, the GraphQL view, health checks and the command line.

python server.py serve [--host H] [--port P] [--workers N]
python server.py migrate
python server.py create-admin --email E
python server.py seed-demo
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import gc
import getpass
import logging
import logging.config
import math
import os
import re
import secrets
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import uvicorn
from starlette._utils import get_route_path
from starlette.applications import Starlette
from starlette.config import Config
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
)
from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.connection import get_connection
from tortoise.contrib.starlette import RegisterTortoise
from tortoise.migrations.executor import MigrationExecutor

from models import MODEL_MODULES
from resolvers import accounts, credentials, metrics
from resolvers.broadcast import Hub
from resolvers.clock import Clock
from resolvers.collector import COLLECTOR
from resolvers.encryption import MasterKeys, UnusableKey, parse_master_key
from resolvers.logs import FORMATS, AccessLog, install_request_id_logging, log_config
from resolvers.mail import DEFAULT_SENDER, ConsoleMailer, Outgoing, mailer_for
from resolvers.rate_limits import LimitSettings, RateLimiter, credential_key
from resolvers.services import DocumentStore, Policy, Services
from resolvers.storage import StorageError, open_storage
from schema import document_transfer, graphiql, schema, tracing, transport
from schema.context import Context, current_request_id, new_request_id
from schema.http import HTTPBoundary, refusal
from schema.limits import rate_limited_error
from schema.persisted import PersistedDocuments, load_manifest

log = logging.getLogger("senvault")


# --- settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    database_url: str
    broadcast_url: str
    broadcast_namespace: str
    max_body_bytes: int
    rate_limit_per_minute: int
    anonymous_rate_limit_per_minute: int
    max_subscription_queue: int
    max_subscriptions_per_socket: int
    max_sockets_per_credential: int
    max_query_cost: int
    forwarded_allow_ips: str
    heartbeat_seconds: float
    event_retention_days: int
    session_ttl_days: int
    sweep_seconds: float
    graceful_shutdown_seconds: float
    debug: bool
    # Web origins (`https://app.example`) whose pages may call the API from a browser: CORS for
    # HTTP, and the `Origin` a browser sends on a websocket. Same-origin pages need no entry.
    cors_allowed_origins: tuple[str, ...] = ()
    # `text` or `json` (one JSON object a line), for the access log and every other line.
    log_format: str = "text"
    # A line per HTTP request on stdout (resolvers/logs.py).
    access_log: bool = True
    # When set, `/metrics` answers only `Authorization: Bearer <this>`.
    metrics_token: str = ""
    # A persisted documents manifest: only its documents run (schema/persisted.py).
    trusted_documents: str = ""
    # Where OpenTelemetry traces go (OTLP over HTTP); none are made when empty (schema/tracing.py).
    otel_endpoint: str = ""
    # How long after `deleteAccount` an account is erased (it can be cancelled until then).
    erasure_grace_days: int = 14
    # How mail leaves (resolvers/mail.py): `console://[FOLDER]` or `smtp(s)://user:pass@host:port`.
    mail_url: str = "console://"
    mail_from: str = DEFAULT_SENDER
    # The web app the links in mails open (reset, verification).
    app_url: str = "http://127.0.0.1:8000"
    # Documents in the Vault (resolvers/documents.py): where their encrypted bytes are kept, the
    # master key that wraps each document's data key (and earlier ones, while rotating), limits.
    storage_url: str = "file://./senvault-files"
    storage_master_key: str = ""
    storage_previous_master_keys: tuple[str, ...] = ()
    max_document_bytes: int = 25 * 1024 * 1024
    download_url_seconds: int = 300
    upload_url_seconds: int = 3600
    # When above 0, a full garbage collection longer than this freezes what survived it out of the
    # next ones (resolvers/collector.py). Off by default; the pauses are measured either way.
    gc_freeze_slow_ms: float = 0.0

    @classmethod
    def from_env(cls, environ: Any = None) -> Settings:
        config = Config(environ=environ if environ is not None else os.environ)
        return cls(
            database_url=config("DATABASE_URL", default="sqlite://senvault.sqlite3"),
            broadcast_url=config("BROADCAST_URL", default="memory://"),
            broadcast_namespace=config("BROADCAST_NAMESPACE", default="senvault"),
            max_body_bytes=config("MAX_BODY_BYTES", cast=int, default=2 * 1024 * 1024),
            rate_limit_per_minute=config("RATE_LIMIT_PER_MINUTE", cast=int, default=600),
            anonymous_rate_limit_per_minute=config("ANONYMOUS_RATE_LIMIT_PER_MINUTE", cast=int, default=120),
            max_subscription_queue=config("MAX_SUBSCRIPTION_QUEUE", cast=int, default=1000),
            max_subscriptions_per_socket=config("MAX_SUBSCRIPTIONS_PER_SOCKET", cast=int, default=20),
            max_sockets_per_credential=config("MAX_SOCKETS_PER_CREDENTIAL", cast=int, default=20),
            max_query_cost=config("MAX_QUERY_COST", cast=int, default=10_000),
            forwarded_allow_ips=config("FORWARDED_ALLOW_IPS", default="").strip(),
            heartbeat_seconds=config("BROADCAST_HEARTBEAT_SECONDS", cast=float, default=5.0),
            event_retention_days=config("EVENT_RETENTION_DAYS", cast=int, default=30),
            session_ttl_days=config("SESSION_TTL_DAYS", cast=int, default=30),
            sweep_seconds=config("SWEEP_SECONDS", cast=float, default=60.0),
            # After SIGTERM, how long open requests and sockets may take before they are cut off.
            graceful_shutdown_seconds=config("GRACEFUL_SHUTDOWN_SECONDS", cast=float, default=10.0),
            debug=config("DEBUG", cast=bool, default=False),
            cors_allowed_origins=tuple(
                origin.strip().rstrip("/")
                for origin in config("CORS_ALLOWED_ORIGINS", default="").split(",")
                if origin.strip()
            ),
            log_format=_choice(config("LOG_FORMAT", default="text"), "LOG_FORMAT", FORMATS),
            access_log=config("ACCESS_LOG", cast=bool, default=True),
            metrics_token=config("METRICS_TOKEN", default=""),
            trusted_documents=config("TRUSTED_DOCUMENTS", default=""),
            otel_endpoint=config("OTEL_EXPORTER_OTLP_ENDPOINT", default=""),
            erasure_grace_days=config("ERASURE_GRACE_DAYS", cast=int, default=14),
            mail_url=_mail_url(config("MAIL_URL", default="console://")),
            mail_from=config("MAIL_FROM", default=DEFAULT_SENDER),
            app_url=config("APP_URL", default="http://127.0.0.1:8000").rstrip("/"),
            storage_url=config("STORAGE_URL", default="file://./senvault-files"),
            storage_master_key=config("STORAGE_MASTER_KEY", default=""),
            storage_previous_master_keys=tuple(
                k.strip() for k in config("STORAGE_PREVIOUS_MASTER_KEYS", default="").split(",") if k.strip()
            ),
            max_document_bytes=config("MAX_DOCUMENT_BYTES", cast=int, default=25 * 1024 * 1024),
            download_url_seconds=config("DOWNLOAD_URL_SECONDS", cast=int, default=300),
            upload_url_seconds=config("UPLOAD_URL_SECONDS", cast=int, default=3600),
            gc_freeze_slow_ms=config("GC_FREEZE_SLOW_MS", cast=float, default=0.0),
        )


def _mail_url(value: str) -> str:
    try:
        mailer_for(value)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    return value


# Where the embedded default keeps its master key when STORAGE_MASTER_KEY is not set.
LOCAL_MASTER_KEY_FILE = "senvault-master.key"


def master_keys(settings: Settings) -> MasterKeys:
    """The master keys documents are sealed with. Without STORAGE_MASTER_KEY the embedded default
    (a local folder) makes one in `senvault-master.key` beside the database, as it makes the SQLite
    file: fine for trying it out, not for production, where the key must live apart from the data.
    An S3 store needs the variable."""
    try:
        if settings.storage_master_key:
            current = parse_master_key(settings.storage_master_key)
        elif settings.storage_url.startswith("file://"):
            current = _local_master_key()
        else:
            raise SystemExit("STORAGE_MASTER_KEY is required with an S3 store (`openssl rand -base64 32`).")
        previous = tuple(
            parse_master_key(k, "STORAGE_PREVIOUS_MASTER_KEYS") for k in settings.storage_previous_master_keys
        )
    except UnusableKey as exc:
        raise SystemExit(str(exc)) from None
    return MasterKeys(current, previous)


def _local_master_key() -> bytes:
    # Written whole to a file of its own, then linked into place: workers starting together all
    # read the one key that won, never a half-written file.
    key = secrets.token_bytes(32)
    fd, temp = tempfile.mkstemp(dir=".", prefix=".senvault-master-key-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(key).decode() + "\n")
        os.link(temp, LOCAL_MASTER_KEY_FILE)
    except FileExistsError:
        with open(LOCAL_MASTER_KEY_FILE) as f:
            return parse_master_key(f.read(), LOCAL_MASTER_KEY_FILE)
    finally:
        os.unlink(temp)
    log.warning(
        "STORAGE_MASTER_KEY is not set: documents are sealed with a new key in %s; set the variable "
        "in production, and keep the key apart from the files",
        LOCAL_MASTER_KEY_FILE,
    )
    return key


@asynccontextmanager
async def document_store(settings: Settings, keys: MasterKeys) -> AsyncIterator[DocumentStore]:
    """The configured store, open for as long as the block runs."""
    try:
        storage = await open_storage(settings.storage_url)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    try:
        yield DocumentStore(
            storage=storage,
            keys=keys,
            max_bytes=settings.max_document_bytes,
            download_ttl=timedelta(seconds=settings.download_url_seconds),
            upload_ttl=timedelta(seconds=settings.upload_url_seconds),
        )
    finally:
        await storage.close()


def _choice(value: str, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise SystemExit(f"{name} must be one of {', '.join(allowed)}, not {value!r}.")
    return value


def tortoise_config(database_url: str) -> dict[str, Any]:
    connection: str | dict[str, Any] = database_url
    if database_url.startswith(("postgres://", "postgresql://")):
        # The asyncpg client, serving each HTTP request on one connection (resolvers/db.py).
        connection = expand_db_url(database_url)
        connection["engine"] = "resolvers.db"
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# For the `tortoise` command line (makemigrations): `tortoise -c server.TORTOISE_ORM makemigrations`.
TORTOISE_ORM = tortoise_config(Settings.from_env().database_url)


async def pending_migrations(database_url: str) -> list[str]:
    """Names of migrations not yet applied to the database Tortoise is connected to."""
    config = tortoise_config(database_url)
    executor = MigrationExecutor(get_connection("default"), config["apps"])
    return [f"{s.migration.app_label}.{s.migration.name}" for s in await executor.plan()]


class NotMigrated(RuntimeError):
    pass


def sqlite_folder_problem(database_url: str) -> str | None:
    """Why a SQLite DATABASE_URL cannot work, if its file's folder does not exist; else None.

    The SQLite driver, asked to open a file in a missing folder, fails inside a thread that
    Tortoise then waits on for ever: check before connecting, and say so plainly.
    """
    if not database_url.startswith("sqlite://"):
        return None
    path = database_url.removeprefix("sqlite://").split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(folder):
        return None
    return f"The folder of the SQLite database ({folder}) does not exist; create it or change DATABASE_URL."


# --- the GraphQL view -----------------------------------------------------------------------


def _bearer(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class GraphQLView(HTTPBoundary):
    graphql_transport_ws_handler_class = transport.TransportWSHandler
    graphql_ws_handler_class = transport.LegacyWSHandler

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        services: Services = request.app.state.services
        context = Context(
            services=services, request=request, response=response, request_id=self._request_id(request)
        )
        if isinstance(request, Request):
            token = _bearer(request.headers.get("authorization"))
            context.viewer = await accounts.authenticate(services, token)
            if token and context.viewer is not None and services.rate_limiter is not None:
                # So that RateLimitGate can refuse this token, once past its budget, in memory.
                services.rate_limiter.remember_token(
                    credentials.hash_token(token), credential_key(context.viewer)
                )
        return context

    def _request_id(self, request: Request | WebSocket) -> str:
        """The id `RequestIds` gave this request (a new one if the app is served without it)."""
        given = request.scope.get("state", {}).get("request_id")
        return given if isinstance(given, str) else new_request_id()

    async def on_ws_connect(self, context: Context) -> dict[str, object]:
        params = context.connection_params or {}
        raw = params.get("authorization", params.get("Authorization"))
        viewer = await accounts.authenticate(context.services, _bearer(raw))
        if viewer is None:
            raise ConnectionRejectionError({"message": "Forbidden"})
        context.viewer = viewer
        transport.check_socket_quota(context, viewer)
        transport.register(context, viewer)
        # Which server process holds the socket: for support, and for tests across workers.
        return {"server": server_identity()}


# --- middleware -----------------------------------------------------------------------------


UPLOAD_PREFIX = "/files/upload/"
DOWNLOAD_PREFIX = "/files/download/"
EXPORT_PREFIX = "/exports/download/"


def logged_path(path: str) -> str:
    """A path as the access log writes it: a signed file URL's token is a credential, left out."""
    for prefix in (UPLOAD_PREFIX, DOWNLOAD_PREFIX, EXPORT_PREFIX):
        if path.startswith(prefix):
            return prefix + "…"
    return path


class BodyLimit:
    """Refuse request bodies over a size, whether or not they declare a length."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UPLOAD_PREFIX):
            # A document's upload is limited by its declared size, checked as it streams in.
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await _too_large(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse(
        {"errors": [{"message": "Request body too large.", "extensions": {"code": "PAYLOAD_TOO_LARGE"}}]},
        status_code=413,
    )
    await response(scope, receive, send)


# A client's own request id is kept when it looks like one: letters, digits and `._:-`, 1-64 long.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class RequestIds:
    """Every request and websocket gets an id: the client's `X-Request-ID` when well formed (a proxy
    or SPA tracing its own), else a new one. It is answered in `X-Request-ID`, given to the GraphQL
    context (an error's `extensions.requestId`), written on every log line of the request, and on
    its line of the access log (`access_log`; None writes none)."""

    def __init__(self, app: ASGIApp, access_log: AccessLog | None = None) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _CLIENT_REQUEST_ID.fullmatch(given) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode("latin-1"))
        status = 500  # what the client gets if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind in ("http.response.start", "websocket.accept"):
                message = {**message, "headers": [*message.get("headers", ()), header]}
                status = message.get("status", 101 if kind == "websocket.accept" else status)
            elif kind == "websocket.close" and status == 500:
                status = 403  # refused before the handshake completed
            elif kind == "websocket.http.response.start":
                status = message["status"]
            await send(message)

        token = current_request_id.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request_id.reset(token)
            if scope["type"] == "http":
                metrics.observe_request(scope["path"], scope["method"], status, time.perf_counter() - started)
            if self.access_log is not None:
                # A websocket's line is written when it closes: its upgrade request (`GET`), 101
                # once accepted, and how long it was open. (uvicorn's own line per handshake is
                # at DEBUG: `schema.transport.WebSocketProtocol`.)
                self.access_log.write(
                    request_id=request_id,
                    client=scope.get("client"),
                    method=scope.get("method", "GET"),
                    path=logged_path(scope["path"]),
                    http_version=scope["http_version"],
                    status=status,
                    seconds=time.perf_counter() - started,
                )


class RateLimitGate:
    """Refuse, in memory, a caller this process already refused in the current window.

    The GraphQL view counts every operation (schema/limits.py) after authenticating and parsing
    it; once a caller is past its budget, its further requests are answered 429 here, before the
    database or the parser see them. A bearer token this process has not yet seen authenticate
    goes through (and is counted there); an anonymous caller is known by its address.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/graphql":
            await self.app(scope, receive, send)
            return
        services: Services | None = getattr(scope["app"].state, "services", None)
        limiter = services.rate_limiter if services is not None else None
        if limiter is not None and services is not None:
            token = _bearer(dict(scope["headers"]).get(b"authorization", b"").decode("latin-1"))
            if token:
                key = limiter.key_for_token(credentials.hash_token(token))
            else:
                client = scope.get("client") or ("unknown", 0)
                key = "ip:" + str(client[0])
            verdict = limiter.refused(key) if key is not None else None
            if verdict is not None:
                now = time.time()
                retry = str(max(1, math.ceil(verdict.next_point_at - now)))
                response = JSONResponse(
                    {"errors": [rate_limited_error(verdict).formatted]},
                    status_code=429,
                    headers={
                        "Retry-After": retry,
                        "RateLimit-Limit": str(verdict.limit),
                        "RateLimit-Remaining": "0",
                        "RateLimit-Reset": str(verdict.reset_after(now)),
                    },
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


# --- the app --------------------------------------------------------------------------------


class App(Starlette):
    """Starlette, except that a websocket to `/graphql` goes straight to the GraphQL view's socket
    entry with its request id: every other middleware here is for HTTP alone (CORS, body and rate
    limits, error pages). Each layer between uvicorn and the view is a suspended coroutine (with
    its closures) for as long as the socket is open, and a step of every message's way in and out
    (measured: `bench/RESULTS.md`, memory per idle socket)."""

    graphql_sockets: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sockets = self.graphql_sockets
        if sockets is not None and scope["type"] == "websocket" and get_route_path(scope) == "/graphql":
            scope["app"] = self  # as Starlette sets it: the view reads `request.app.state`
            await sockets(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def server_identity() -> str:
    """This server process, as `host:pid`: in `/healthz`, `/readyz` and the websocket `connection_ack`, so an
    operator (or a test) can tell which of several worker processes answered."""
    return _identity(os.getpid())


@functools.cache
def _identity(pid: int) -> str:
    # Once per process (by pid, so a worker forked after a first call names itself): asking the
    # kernel for the host name on every socket's acknowledgement was 0.6% of a reconnect's CPU.
    return f"{socket.gethostname()}:{pid}"


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "server": server_identity()})


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text (resolvers/metrics.py); with METRICS_TOKEN set, only for that bearer token."""
    expected = request.app.state.settings.metrics_token
    if expected:
        given = _bearer(request.headers.get("authorization", ""))
        if not given or not secrets.compare_digest(given.encode(), expected.encode()):
            return refusal(401, "A metrics token is needed.", "UNAUTHENTICATED")
    COLLECTOR.report()
    body, content_type = metrics.exposition()
    return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})


async def readyz(request: Request) -> Response:
    services: Services = request.app.state.services
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(3):
            await get_connection("default").execute_query("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    if await services.hub.check():
        checks["broadcast"] = "ok"
    else:
        checks["broadcast"] = f"unavailable: {services.hub.last_error or 'not connected'}"
    if services.documents is not None:
        try:
            async with asyncio.timeout(3):
                await services.documents.storage.check()
            checks["storage"] = "ok"
        except (StorageError, TimeoutError, OSError) as exc:
            checks["storage"] = f"unavailable: {exc or type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"ready": ready, "checks": checks, "server": server_identity()}, status_code=200 if ready else 503
    )


async def sweep_once(services: Services) -> None:
    """One pass of the clock-driven changes: requests and grants expiring, SLA clocks turning, old
    events pruned, open sockets' credentials re-checked. Every process sweeps; conditional writes
    keep each change to one process. Each step runs on its own, so one failing does not hold up
    the rest."""
    from resolvers import documents, erasure, events, exports, grants, support_requests, tickets

    steps: list[tuple[str, Callable[[Services], Awaitable[object]]]] = [
        ("expire requests", support_requests.expire_due),
        ("expire grants", grants.expire_due),
        ("SLA clocks", tickets.sweep),
        ("prune events", events.prune),
        ("documents", documents.sweep),
        ("recheck sockets", services.connections.recheck),
        ("sessions last used", accounts.record_session_use),
        ("erasures due", erasure.run_due),
        ("expire data exports", exports.expire),
        ("stray data export objects", exports.remove_orphans),
    ]
    async with services.sweeping:
        for name, step in steps:
            try:
                await step(services)
            except Exception:
                log.exception("sweep step %r failed; retrying at the next interval", name)


async def _sweep(services: Services, every: float) -> None:
    """`sweep_once` every `every` seconds, for the life of the app."""
    while True:
        await asyncio.sleep(every)
        await sweep_once(services)


async def _build_exports(services: Services, every: float) -> None:
    """Data exports waiting, built every `every` seconds: a task of its own, so a large export does
    not hold up the sweep's clock-driven changes."""
    from resolvers import exports

    while True:
        await asyncio.sleep(every)
        try:
            await exports.run_pending(services)
        except Exception:
            log.exception("building data exports failed; retrying at the next interval")


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> Starlette:
    """The ASGI app. Tests pass their own settings and a clock they can move."""
    settings = settings or Settings.from_env()
    clock = clock or Clock()
    install_request_id_logging()
    keys = master_keys(settings)
    policy = Policy(
        session_ttl=timedelta(days=settings.session_ttl_days),
        event_retention=timedelta(days=settings.event_retention_days),
        erasure_grace=timedelta(days=settings.erasure_grace_days),
    )

    tracer_provider = tracing.start(settings.otel_endpoint)
    if tracer_provider is not None:
        tracing.install(schema, tracer_provider)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with (
            RegisterTortoise(app, config=tortoise_config(settings.database_url)),
            document_store(settings, keys) as documents,
        ):
            pending = await pending_migrations(settings.database_url)
            if pending:
                raise NotMigrated(
                    f"The database has {len(pending)} unapplied migration(s); "
                    "run `python server.py migrate` first."
                )
            hub = Hub(
                settings.broadcast_url,
                max_queue=settings.max_subscription_queue,
                heartbeat_interval=settings.heartbeat_seconds,
                namespace=settings.broadcast_namespace,
            )
            await hub.connect()
            # Real time, not the service clock: budgets refill as time really passes.
            limiter = RateLimiter(settings.broadcast_url, settings.broadcast_namespace)
            mailer = mailer_for(settings.mail_url)
            if isinstance(mailer, ConsoleMailer):
                mailer.announce()
            services = Services(
                clock=clock,
                hub=hub,
                policy=policy,
                limits=LimitSettings(
                    max_query_cost=settings.max_query_cost,
                    rate_limit_per_minute=settings.rate_limit_per_minute,
                    anonymous_rate_limit_per_minute=settings.anonymous_rate_limit_per_minute,
                ),
                rate_limiter=limiter,
                max_sockets_per_credential=settings.max_sockets_per_credential,
                mail=Outgoing(mailer, settings.mail_from),
                app_url=settings.app_url,
                documents=documents,
            )
            app.state.services = services
            sweeper = asyncio.create_task(_sweep(services, settings.sweep_seconds), name="sweeper")
            exporter = asyncio.create_task(_build_exports(services, settings.sweep_seconds), name="exporter")
            listener = asyncio.create_task(services.connections.listen(services), name="credentials")
            # Everything built so far (the schema, the ORM's models, the modules) lives as long as the
            # process: keep it out of the cyclic collector's full passes, which otherwise walk it all
            # whenever a large document's parse fills the young generations (tail latency). What
            # lives long later on (open sockets) is kept out of them by the collector's policy.
            gc.freeze()
            slow = settings.gc_freeze_slow_ms / 1000 if settings.gc_freeze_slow_ms > 0 else None
            COLLECTOR.install(slow)
            try:
                yield
            finally:
                COLLECTOR.uninstall()
                for task in (sweeper, exporter, listener):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await services.mail.drain()
                await hub.disconnect()
                await limiter.close()
                if tracer_provider is not None:
                    # Sends the spans still batched; blocking I/O, so off the event loop.
                    await asyncio.to_thread(tracer_provider.shutdown)

    view = GraphQLView(
        schema,
        graphql_ide="graphiql",
        allow_queries_via_get=True,
        # graphql-ws (legacy) `ka` messages; graphql-transport-ws sockets are kept alive by
        # uvicorn's websocket pings (`ws_ping_interval`) and the client's own `ping` messages.
        keep_alive=True,
        keep_alive_interval=15,
        connection_init_wait_timeout=timedelta(seconds=10),
        max_subscriptions_per_connection=settings.max_subscriptions_per_socket,
        # Websockets (both subprotocols) and Server-Sent Events (schema/sse.py).
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL, GRAPHQL_SSE_PROTOCOL),
        # Browsers apply no CORS to websockets: strawberry refuses (403) the handshake of a page from
        # another origin unless it is listed. Same-origin pages (GraphiQL) and clients that are not
        # browsers (no `Origin`) are always let through.
        allowed_origins=settings.cors_allowed_origins,
    )
    view.persisted = PersistedDocuments(
        trusted=load_manifest(settings.trusted_documents) if settings.trusted_documents else None
    )
    app = App(
        debug=settings.debug,
        routes=[
            Route("/graphql", view, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", view),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route(UPLOAD_PREFIX + "{token}", document_transfer.upload, methods=["PUT"]),
            Route(DOWNLOAD_PREFIX + "{token}", document_transfer.download, methods=["GET", "HEAD"]),
            Route(EXPORT_PREFIX + "{token}", document_transfer.export_download, methods=["GET", "HEAD"]),
            Mount(graphiql.PREFIX, graphiql.assets()),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = clock
    access_log = AccessLog(settings.log_format) if settings.access_log else None
    app.graphql_sockets = RequestIds(view.socket_entry, access_log=access_log)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    # A caller already refused costs as little as possible.
    app.add_middleware(RateLimitGate)
    app.add_middleware(RequestIds, access_log=access_log)
    # Outermost: preflights are answered before any limit counts them, and every answer, a 429
    # included, carries the headers a page on an allowed origin needs to read it.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_allowed_origins),
        # PUT: a page uploading a document's bytes to its signed upload URL.
        allow_methods=["GET", "POST", "PUT"],
        allow_headers=["Authorization", "Content-Type", "Accept"],
        expose_headers=[
            "Retry-After",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "X-Request-ID",
            "Content-Disposition",
            "Content-Range",
        ],  # fmt: skip
        max_age=600,
    )
    return app


def app_factory() -> Starlette:
    """What `serve` hands uvicorn: each worker process builds its own app from the environment."""
    return create_app()


# --- the command line -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _orm(settings: Settings) -> AsyncIterator[None]:
    await Tortoise.init(config=tortoise_config(settings.database_url))
    try:
        yield
    finally:
        await Tortoise.close_connections()


async def migrate(settings: Settings) -> list[str]:
    """Apply every pending migration; returns the names applied."""
    from tortoise.context import TortoiseContext
    from tortoise.migrations.api import migrate as apply

    config = tortoise_config(settings.database_url)
    sqlite = settings.database_url.startswith("sqlite://")
    if sqlite:
        # SQLite changes a column by building the table anew and dropping the old one, and with
        # foreign keys enforced that drop deletes, by ON DELETE CASCADE, every row that points at
        # the table: an upgrade emptied the Vault, the tickets and the sessions. SQLite's own
        # procedure for such a change runs it with enforcement off and checks the keys after
        # (https://sqlite.org/lang_altertable.html#otheralter). Tortoise opens its own connection
        # for the run, so enforcement is turned off in the connection's settings.
        connection = expand_db_url(settings.database_url)
        connection["credentials"]["foreign_keys"] = "OFF"
        config["connections"]["default"] = connection
    # As Tortoise's own CLI does: one context owns the connections the migration opens, and
    # closes them on exit (an unclosed SQLite connection keeps the process alive).
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        pending = await pending_migrations(settings.database_url)
        await apply(config=config)
        if sqlite:
            broken = await get_connection("default").execute_query_dict("PRAGMA foreign_key_check")
            if broken:
                tables = ", ".join(sorted({str(row["table"]) for row in broken}))
                raise SystemExit(f"migrate: rows point at rows that do not exist, in {tables}")
    return pending


@contextlib.asynccontextmanager
async def _cli_services(settings: Settings) -> AsyncIterator[Services]:
    """Services for a command-line task: the database, and the configured broadcast so that
    anyone watching live sees what the task changes."""
    async with _orm(settings):
        hub = Hub(
            settings.broadcast_url,
            heartbeat_interval=settings.heartbeat_seconds,
            namespace=settings.broadcast_namespace,
        )
        await hub.connect()
        try:
            async with document_store(settings, master_keys(settings)) as documents:
                yield Services(Clock(), hub, documents=documents)
        finally:
            await hub.disconnect()


async def _check_migrated(settings: Settings) -> list[str]:
    async with _orm(settings):
        return await pending_migrations(settings.database_url)


async def _create_admin(settings: Settings, email: str, password: str, name: str) -> None:
    from resolvers.errors import UserError

    async with _cli_services(settings) as services:
        try:
            await accounts.create_admin(services, email, password, name)
        except UserError as exc:
            raise SystemExit(f"create-admin: {exc.message}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="server.py", description="SENVault API")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    sub.add_parser("migrate", help="apply the database migrations")
    admin = sub.add_parser("create-admin", help="make an admin account")
    admin.add_argument("--email", required=True)
    admin.add_argument("--name", default="Administrator")
    sub.add_parser("seed-demo", help="add a demo family, advocates and admin")
    sub.add_parser(
        "rotate-storage-key",
        help="re-wrap every document's data key and re-seal every two-factor secret under the current"
        " STORAGE_MASTER_KEY",
    )
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    install_request_id_logging()
    logging.config.dictConfig(log_config(settings.log_format))
    problem = sqlite_folder_problem(settings.database_url)
    if problem:
        print(f"{args.command}: {problem}", file=sys.stderr)
        return 2

    if args.command == "migrate":
        applied = asyncio.run(migrate(settings))
        print(f"Applied {len(applied)} migration(s)." if applied else "Database is up to date.")
        return 0
    if args.command == "create-admin":
        password = os.environ.get("SENVAULT_ADMIN_PASSWORD") or getpass.getpass("Password: ")
        asyncio.run(_create_admin(settings, args.email, password, args.name))
        print(f"Admin {args.email} created.")
        return 0
    if args.command == "seed-demo":
        from resolvers.demo import holds_other_accounts, seed

        async def run_seed() -> list[str]:
            async with _cli_services(settings) as services:
                if await pending_migrations(settings.database_url):
                    raise SystemExit("seed-demo: run `python server.py migrate` first.")
                if await holds_other_accounts():
                    raise SystemExit(
                        "seed-demo: this database holds accounts other than the demo's. The demo's "
                        "accounts share a published password (one is an admin), so they go only into "
                        "a database of their own."
                    )
                return await seed(services)

        for line in asyncio.run(run_seed()):
            print(line)
        return 0
    if args.command == "rotate-storage-key":
        from resolvers.documents import rewrap_keys
        from resolvers.two_factor import reseal_secrets

        async def rotate() -> tuple[int, int]:
            async with _cli_services(settings) as services:
                return await rewrap_keys(services), await reseal_secrets(services)

        documents, secrets = asyncio.run(rotate())
        print(
            f"Re-wrapped {documents} document key(s) and re-sealed {secrets} two-factor secret(s)"
            " under the current master key."
        )
        return 0
    # serve
    pending = asyncio.run(_check_migrated(settings))
    if pending:
        print(
            f"The database at DATABASE_URL has {len(pending)} unapplied migration(s) "
            f"({', '.join(pending)}). Run `python server.py migrate` first.",
            file=sys.stderr,
        )
        return 2
    if args.workers > 1 and not settings.broadcast_url.startswith(("redis://", "rediss://")):
        print(
            "--workers > 1 needs BROADCAST_URL=redis://… so that every process sees every event.",
            file=sys.stderr,
        )
        return 2
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Every worker writes its metrics here, and `/metrics` on any of them reports them all.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="senvault-metrics-")
    uvicorn.run(
        "server:app_factory",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        # Closing never waits on a client that stopped reading (see transport.WebSocketProtocol).
        ws="schema.transport:WebSocketProtocol",
        # Compression costs ~300 KiB per idle socket; events are small JSON.
        ws_per_message_deflate=False,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        # Shutdown always ends: what is still open after this is cancelled (it hung without it).
        timeout_graceful_shutdown=max(1, round(settings.graceful_shutdown_seconds)),
        # Larger websocket messages close the socket with 1009, as larger HTTP bodies get 413.
        ws_max_size=settings.max_body_bytes,
        # X-Forwarded-For is believed only from the proxies listed (default: none).
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        log_level="info",
        log_config=log_config(settings.log_format),
        # The access log is ours (resolvers/logs.py): a line per request at a fraction of the cost.
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
