"""What every domain call may depend on, built once by the server and handed in explicitly."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from resolvers.broadcast import Hub
from resolvers.clock import Clock
from resolvers.connections import Connections
from resolvers.encryption import MasterKeys
from resolvers.mail import DEFAULT_FOLDER, ConsoleMailer, Outgoing
from resolvers.rate_limits import LimitSettings, RateLimiter
from resolvers.storage import Storage


@dataclass(frozen=True)
class Policy:
    """Tunable rules of the product; the defaults are what families and advocates are promised."""

    session_ttl: timedelta = timedelta(days=30)
    api_token_max_ttl: timedelta = timedelta(days=365)
    request_expiry: timedelta = timedelta(days=14)
    max_page_size: int = 100
    # How long the event log keeps events for replay; an older cursor gets CURSOR_EXPIRED.
    event_retention: timedelta = timedelta(days=30)
    # How long after `deleteAccount` the account is erased; `cancelAccountDeletion` until then.
    erasure_grace: timedelta = timedelta(days=14)


@dataclass(frozen=True)
class DocumentStore:
    """Where documents' bytes go (`STORAGE_URL`), the keys that seal them, and their limits."""

    storage: Storage
    keys: MasterKeys
    max_bytes: int = 25 * 1024 * 1024
    # How long a signed download URL works, and how long an upload URL and its document wait.
    download_ttl: timedelta = timedelta(seconds=300)
    upload_ttl: timedelta = timedelta(hours=1)


@dataclass
class Services:
    clock: Clock
    hub: Hub
    policy: Policy = field(default_factory=Policy)
    # This process's open websockets, so that ended credentials and slow consumers close them.
    connections: Connections = field(default_factory=Connections)
    # Held by each pass of the clock-driven sweep: one pass at a time per process.
    sweeping: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Held by each pass building data exports: one pass at a time per process, so a caller that
    # asks while the background pass runs waits for it and then builds whatever is left.
    exporting: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Query cost and rate limits (schema/limits.py); no limiter means no rate limiting.
    limits: LimitSettings = field(default_factory=LimitSettings)
    rate_limiter: RateLimiter | None = None
    # Open websockets one credential may hold in this process.
    max_sockets_per_credential: int = 20
    # Mail to account holders (`MAIL_URL`), sent after the change that asks for it commits.
    mail: Outgoing = field(default_factory=lambda: Outgoing(ConsoleMailer(Path(DEFAULT_FOLDER))))
    # Sessions used since the sweep last wrote them down (`accounts.record_session_use`).
    sessions_used: set[int] = field(default_factory=set)
    # Where the product's web app is (`APP_URL`): the links in mails point there.
    app_url: str = "http://127.0.0.1:8000"
    # Documents in the Vault; None where a task has no store (documents are then unavailable).
    documents: DocumentStore | None = None
