"""A copy of everything an account holds (SPEC §16, UK GDPR's right of access): one ZIP with a
JSON file per area, the documents' files decrypted, and a README describing every file.

`request` records a PENDING export; the sweep builds it (`run_pending`), on whichever process
claims it first: the claim is one conditional UPDATE that takes a lease, so two processes never
build one export at once, and an export whose process died mid-build is taken over when its lease
ends (it survives a restart). The ZIP is sealed like a document (AES-256-GCM, a data key wrapped by
the master key) into the document store under `exports/`, and served for `TTL` through short-lived
signed URLs to the account holder, signed in. Nothing of an export's content is logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import zipfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from tortoise.expressions import F, Q
from tortoise.models import Model

from models.accounts import Role, User
from models.advocates import Advocate
from models.documents import Document, DocumentStatus
from models.families import Child, Family
from models.notifications import Notification, NotificationKind
from models.rights import DataExport, ExportStatus
from models.support import Message, SupportRelationship, SupportRequest, Thread
from models.tickets import ChecklistItem, ChecklistTemplate, SlaClock, Ticket, TicketNote
from models.vault import EhcpCase, Evidence, Review, TimelineEntry, VaultAccessLog, VaultGrant
from resolvers import accounts, documents, encryption, notifications, signing
from resolvers.access import accounts as access
from resolvers.events import unit_of_work
from resolvers.pagination import Page, Window, empty_page, paginate
from resolvers.services import DocumentStore, Services
from resolvers.storage import StorageError
from resolvers.viewer import Viewer

log = logging.getLogger("senvault.exports")

PREFIX = "exports/"
TTL = timedelta(days=7)
# How long a build may take before another process may take it over.
LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 5
DOWNLOAD_PATH = "/exports/download/"
READ_CHUNK = 64 * 1024


def object_key(export_id: int, attempt: int) -> str:
    # One key per attempt: a build taken over by another process never writes over the other's.
    return f"{PREFIX}{export_id}-{attempt}.zip"


# --- asking for one -------------------------------------------------------------------------------


async def request(services: Services, viewer: Viewer | None) -> DataExport:
    """A new export of the viewer's account, built in the background; one waiting at a time."""
    v = access.session_holder(viewer)
    documents.store(services)  # STORAGE_UNAVAILABLE now rather than a build that cannot finish
    waiting = await DataExport.filter(user_id=v.user_id, status=ExportStatus.PENDING).first()
    if waiting is not None:
        return waiting
    return await DataExport.create(user_id=v.user_id, requested_at=services.clock.now())


async def page_for(viewer: Viewer | None, user_id: int, window: Window) -> Page[DataExport]:
    """The user's exports, newest first: to the account holder, signed in."""
    if not access.manages_account(viewer, user_id):
        return empty_page()
    return await paginate(DataExport.filter(user_id=user_id), kind="DataExport", window=window)


def may_read(viewer: Viewer | None, export: DataExport) -> bool:
    return access.manages_account(viewer, export.user_id)


async def exports(viewer: Viewer | None, ids: Sequence[object]) -> list[DataExport | None]:
    from resolvers.access import core

    return await core.fetch(viewer, DataExport, ids, may_read)


def download_path(services: Services, viewer: Viewer | None, export: DataExport) -> str | None:
    """A signed link to a READY export, for its holder signed in; None otherwise."""
    now = services.clock.now()
    if not may_read(viewer, export) or viewer is None or viewer.session_id is None:
        return None
    if export.status is not ExportStatus.READY or export.expires_at is None or export.expires_at <= now:
        return None
    store = documents.store(services)
    expires = min(now + store.download_ttl, export.expires_at)
    token = signing.sign(
        store.keys.signing_key(b"export"), "x", [str(export.id), str(viewer.session_id)], expires
    )
    return DOWNLOAD_PATH + token


@dataclass(frozen=True)
class Opened:
    export: DataExport
    data_key: encryption.DataKey


async def open_download(services: Services, token: str) -> Opened:
    """The export a signed link names, while its session is live and the export is READY."""
    store = documents.store(services)
    now = services.clock.now()
    try:
        raw_id, session_id = signing.verify(store.keys.signing_key(b"export"), "x", token, now)
    except (signing.BadSignature, signing.Expired, ValueError):
        raise documents.TransferRefused(404, "NOT_FOUND", "This link has expired or is not valid.") from None
    viewer = await accounts.viewer_by_credential(services, int(session_id), None)
    export = await DataExport.get_or_none(id=int(raw_id), status=ExportStatus.READY)
    if (
        viewer is None
        or export is None
        or not may_read(viewer, export)
        or export.expires_at is None
        or export.expires_at <= now
        or export.object_key is None
        or export.wrapped_key is None
    ):
        raise documents.TransferRefused(404, "NOT_FOUND", "This link has expired or is not valid.")
    return Opened(export, encryption.unwrap(store.keys, export.wrapped_key, export.object_key))


async def plaintext(services: Services, opened: Opened, start: int, end: int) -> AsyncIterator[bytes]:
    export = opened.export
    assert export.object_key is not None
    assert export.byte_size is not None
    async for piece in documents.read_sealed(
        documents.store(services), opened.data_key, export.object_key, export.byte_size, start, end
    ):
        yield piece


# --- building them ----------------------------------------------------------------------------------


async def run_pending(services: Services) -> int:
    """Build every export waiting that no other process is building (in this process, after any pass
    already running); returns how many were built."""
    if services.documents is None:
        return 0
    built = 0
    async with services.exporting:
        while (export := await _claim(services)) is not None:
            try:
                await _build(services, services.documents, export)
                built += 1
            except (StorageError, OSError, encryption.UnusableKey):
                # Tried again when the lease ends, up to MAX_ATTEMPTS.
                log.exception("a data export could not be built; it will be tried again")
                return built
    return built


async def _claim(services: Services) -> DataExport | None:
    now = services.clock.now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    # Those whose every attempt failed stop waiting: the holder may ask for a new one.
    await DataExport.filter(free, status=ExportStatus.PENDING, attempts__gte=MAX_ATTEMPTS).update(
        status=ExportStatus.FAILED, lease_until=None
    )
    candidates = (
        await DataExport.filter(free, status=ExportStatus.PENDING, attempts__lt=MAX_ATTEMPTS)
        .order_by("requested_at", "id")
        .limit(5)
    )
    for candidate in candidates:
        taken = await DataExport.filter(free, id=candidate.id, status=ExportStatus.PENDING).update(
            lease_until=now + LEASE, attempts=F("attempts") + 1
        )
        if taken:
            return await DataExport.get(id=candidate.id)
    return None


async def _build(services: Services, store: DocumentStore, export: DataExport) -> None:
    user = await User.get(id=export.user_id)
    key = object_key(export.id, export.attempts)
    with tempfile.TemporaryDirectory(prefix="senvault-export-") as tmp:
        folder = Path(tmp)
        archive = folder / "export.zip"
        files = await _write_areas(services, store, user, folder / "content")
        await asyncio.to_thread(_zip, folder / "content", files, archive)
        size = archive.stat().st_size
        data_key = encryption.new_data_key()
        await store.storage.put(key, encryption.encrypt(data_key, key, _read_file(archive)))
    now = services.clock.now()
    async with unit_of_work(services) as outbox:
        # Only while this attempt is still the latest: one taken over after its lease ran out
        # leaves the export to the process that took it.
        done = await DataExport.filter(
            id=export.id, status=ExportStatus.PENDING, attempts=export.attempts
        ).update(
            status=ExportStatus.READY,
            ready_at=now,
            expires_at=now + TTL,
            byte_size=size,
            object_key=key,
            wrapped_key=encryption.wrap(store.keys, data_key, key),
            lease_until=None,
        )
        if not done:
            await discard(services, key)
            return
        await notifications.notify(
            outbox,
            user.id,
            NotificationKind.DATA_EXPORT_READY,
            "Your data export is ready",
            "The copy of your data you asked for is ready to download for the next 7 days.",
            notifications.subject("DataExport", export.id),
        )


async def _read_file(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while piece := await asyncio.to_thread(f.read, READ_CHUNK):
            yield piece


def _zip(content: Path, files: list[str], archive: Path) -> None:
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in files:
            zf.write(content / name, name)


async def expire(services: Services) -> int:
    """READY exports past their 7 days become EXPIRED and their objects go; returns how many."""
    now = services.clock.now()
    due = await DataExport.filter(status=ExportStatus.READY, expires_at__lte=now)
    for export in due:
        if await DataExport.filter(id=export.id, status=ExportStatus.READY).update(
            status=ExportStatus.EXPIRED
        ):
            await discard(services, export.object_key)
    return len(due)


async def discard(services: Services, key: str | None) -> None:
    """Remove an export's object now if the store lets us (the sweep retries what is left)."""
    if key is None or services.documents is None:
        return
    try:
        await services.documents.storage.delete(key)
    except StorageError:
        log.warning("an export's object could not be removed now")


async def remove_orphans(services: Services) -> int:
    """Objects under `exports/` that no READY export holds (a build that died, an erasure that
    stopped half-way); returns how many went."""
    if services.documents is None:
        return 0
    # PENDING before READY: an export that becomes READY between the two reads is then seen as one
    # or the other, never as neither.
    pending = await DataExport.filter(status=ExportStatus.PENDING).values("id", "attempts")
    building = {object_key(int(row["id"]), int(row["attempts"])) for row in pending}
    ready = await DataExport.filter(status=ExportStatus.READY).values("object_key")
    held = {str(row["object_key"]) for row in ready if row["object_key"]}
    removed = 0
    async for key in services.documents.storage.keys(PREFIX):
        if key not in held and key not in building:
            await discard(services, key)
            removed += 1
    return removed


# --- what goes in --------------------------------------------------------------------------------

README = """A copy of your SEN Evidence Vault account, made {made} (UTC).

Each .json file holds one area, as a list of records (account.json and profile.json hold one);
times are ISO 8601 in UTC, dates are YYYY-MM-DD. An empty list means the account holds nothing
there.

{files}
"""

DESCRIPTIONS = {
    "account.json": "Your account: name, email address, role, when it was made and its security settings.",
    "children.json": "Your children's records in the Vault.",
    "evidence.json": "Each piece of evidence, with the documents attached to it (`documents`; each "
    "`file` names its copy in the documents/ folder).",
    "documents/": "The documents' files, decrypted, named by document id and their original filename.",
    "timeline.json": "The timeline entries of each child.",
    "ehcp_cases.json": "Each child's EHCP case: stage, local authority and dates.",
    "requests.json": "The support requests you sent (families) or received (advocates), as they stand.",
    "messages.json": "Every message in your conversations with advocates or families, both sides, by thread.",
    "relationships.json": "Your support relationships, open and ended.",
    "grants.json": "Every grant of access to your Vault, with its history: when made, what it covered, "
    "when and why it ended.",
    "access_log.json": "Who read what in your Vault, and when.",
    "reviews.json": "Reviews you wrote (families) or that were written about you (advocates).",
    "notifications.json": "Your notifications.",
    "profile.json": "Your advocate profile as the directory shows it, and your SLA targets.",
    "tickets.json": "Your tickets: each request and case in your queue, with its SLA clocks, checklist "
    "and your private notes.",
    "checklist_templates.json": "Your checklist templates.",
}


# A request as both its sides see it.
REQUEST_FIELDS = (
    "status",
    "message",
    "support_types",
    "child_display_name",
    "created_at",
    "responded_at",
    "decided_at",
    "decline_reason",
    "decline_message",
    "suggested_alternatives",
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


async def _rows(
    model: type[Model], query: Q, fields: Sequence[str], order: str = "id"
) -> list[dict[str, Any]]:
    return [_plain(row) for row in await model.filter(query).order_by(order).values(*fields)]


async def _write_areas(services: Services, store: DocumentStore, user: User, content: Path) -> list[str]:
    await asyncio.to_thread(content.mkdir)
    areas: dict[str, Any] = {
        "account.json": _plain(
            {
                "displayName": user.display_name,
                "email": user.email,
                "role": user.role,
                "createdAt": user.created_at,
                "emailVerified": user.email_verified_at is not None,
                "twoFactorEnabled": user.totp_enabled_at is not None,
            }
        ),
        "notifications.json": await _rows(
            Notification, Q(user_id=user.id), ("kind", "title", "body", "created_at", "read_at")
        ),
    }
    files: list[str] = []
    family = await Family.get_or_none(user_id=user.id)
    if user.role is Role.FAMILY and family is not None:
        areas.update(await _family_areas(family.id))
        files += await _documents(services, store, family.id, content, areas["evidence.json"])
    advocate = await Advocate.get_or_none(user_id=user.id)
    if user.role is Role.ADVOCATE and advocate is not None:
        areas.update(await _advocate_areas(advocate))
    threads = [t["id"] for t in await _threads(family, advocate)]
    areas["messages.json"] = await _messages(threads, user.id)
    for name, data in areas.items():
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        await asyncio.to_thread((content / name).write_text, text)
    listed = sorted(areas) + (["documents/"] if files else [])
    described = "\n".join(f"{name}\n    {DESCRIPTIONS[name]}\n" for name in listed)
    made = services.clock.now().strftime("%d %B %Y %H:%M")
    await asyncio.to_thread((content / "README.txt").write_text, README.format(made=made, files=described))
    return ["README.txt", *sorted(areas), *files]


async def _family_areas(family_id: int) -> dict[str, Any]:
    mine = Q(family_id=family_id)
    evidence = await _rows(
        Evidence, mine, ("id", "child_id", "title", "category", "date", "description", "created_at")
    )
    return {
        "children.json": await _rows(
            Child,
            mine,
            ("id", "display_name", "date_of_birth", "ehcp_stage", "local_authority", "created_at"),
        ),
        "evidence.json": evidence,
        "timeline.json": await _rows(
            TimelineEntry, mine, ("id", "child_id", "date", "title", "note", "created_at")
        ),
        "ehcp_cases.json": await _rows(
            EhcpCase, mine, ("child_id", "stage", "local_authority", "request_date")
        ),
        "requests.json": await _rows(
            SupportRequest, mine, ("id", "child_id", "advocate__display_name", *REQUEST_FIELDS)
        ),
        "relationships.json": await _rows(
            SupportRelationship,
            mine,
            (
                "id",
                "child_id",
                "advocate__display_name",
                "status",
                "opened_at",
                "closed_at",
                "close_reason",
                "close_note",
            ),
        ),
        "grants.json": await _rows(
            VaultGrant,
            mine,
            (
                "id",
                "relationship_id",
                "advocate__display_name",
                "scopes",
                "child_ids",
                "created_at",
                "expires_at",
                "revoked_at",
                "end_reason",
            ),
        ),  # fmt: skip
        "access_log.json": await _rows(
            VaultAccessLog, mine, ("actor__display_name", "scope", "child_id", "what", "at"), order="at"
        ),
        "reviews.json": await _rows(
            Review, mine, ("relationship_id", "advocate__display_name", "rating", "text", "created_at")
        ),
    }


async def _advocate_areas(advocate: Advocate) -> dict[str, Any]:
    mine = Q(advocate_id=advocate.id)
    profile = (await Advocate.filter(id=advocate.id).values())[0]
    tickets = await _rows(
        Ticket,
        mine,
        (
            "id",
            "request_id",
            "relationship_id",
            "status",
            "outcome",
            "resolution_note",
            "resolved_at",
            "created_at",
        ),
    )
    ids = [t["id"] for t in tickets]
    clocks = await _rows(
        SlaClock, Q(ticket_id__in=ids), ("ticket_id", "kind", "started_at", "due_at", "met_at", "breached_at")
    )
    items = await _rows(
        ChecklistItem, Q(ticket_id__in=ids), ("ticket_id", "text", "position", "done", "done_at")
    )
    notes = await _rows(TicketNote, Q(ticket_id__in=ids), ("ticket_id", "body", "created_at"))
    for ticket in tickets:
        ticket["slaClocks"] = [c for c in clocks if c["ticket_id"] == ticket["id"]]
        ticket["checklist"] = [i for i in items if i["ticket_id"] == ticket["id"]]
        ticket["notes"] = [n for n in notes if n["ticket_id"] == ticket["id"]]
    return {
        "profile.json": _plain({k: v for k, v in profile.items() if k not in ("id", "user_id")}),
        "requests.json": await _rows(SupportRequest, mine, ("id", "child_age_years", *REQUEST_FIELDS)),
        "relationships.json": await _rows(
            SupportRelationship,
            mine,
            ("id", "status", "opened_at", "closed_at", "close_reason", "close_note"),
        ),
        "tickets.json": tickets,
        "checklist_templates.json": await _rows(ChecklistTemplate, mine, ("name", "items", "created_at")),
        "reviews.json": await _rows(
            Review, mine & Q(hidden_at__isnull=True), ("rating", "text", "created_at")
        ),
    }


async def _threads(family: Family | None, advocate: Advocate | None) -> list[dict[str, Any]]:
    if family is not None:
        return list(await Thread.filter(family_id=family.id).order_by("id").values("id"))
    if advocate is not None:
        return list(await Thread.filter(advocate_id=advocate.id).order_by("id").values("id"))
    return []


async def _messages(thread_ids: list[int], user_id: int) -> list[dict[str, Any]]:
    rows = await _rows(
        Message,
        Q(thread_id__in=thread_ids),
        ("thread_id", "author_id", "author__display_name", "body", "created_at"),
    )
    for row in rows:
        row["fromYou"] = row.pop("author_id") == user_id
    return rows


async def _documents(
    services: Services, store: DocumentStore, family_id: int, content: Path, evidence: list[dict[str, Any]]
) -> list[str]:
    """Each AVAILABLE document of the family decrypted into documents/, listed under its evidence."""
    rows = await Document.filter(family_id=family_id, status=DocumentStatus.AVAILABLE).order_by("id")
    by_evidence: dict[int, list[dict[str, Any]]] = {}
    files: list[str] = []
    folder = content / "documents"
    for document in rows:
        assert document.object_key is not None
        assert document.wrapped_key is not None
        name = f"documents/{document.id}-{_safe(document.filename)}"
        await asyncio.to_thread(folder.mkdir, exist_ok=True)
        data_key = encryption.unwrap(store.keys, document.wrapped_key, document.object_key)
        with (content / name).open("wb") as out:
            if document.byte_size:
                async for piece in documents.read_sealed(
                    store, data_key, document.object_key, document.byte_size, 0, document.byte_size - 1
                ):
                    await asyncio.to_thread(out.write, piece)
        files.append(name)
        by_evidence.setdefault(document.evidence_id, []).append(
            _plain(
                {
                    "filename": document.filename,
                    "contentType": document.content_type,
                    "byteSize": document.byte_size,
                    "sha256": document.sha256,
                    "uploadedAt": document.uploaded_at,
                    "file": name,
                }
            )
        )
    for item in evidence:
        item["documents"] = by_evidence.get(item["id"], [])
    return files


def _safe(filename: str) -> str:
    kept = "".join(c if c.isalnum() or c in "._- " else "_" for c in filename).strip(" .")
    return kept[:120] or "document"
