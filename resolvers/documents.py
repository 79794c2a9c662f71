"""Documents in the Vault: staged uploads checked against their bytes, encrypted at rest, and
downloads through short-lived signed URLs that are authorised again when fetched.

The flow (as Shopify's `stagedUploadsCreate`): `create_upload` records what the family says it will
send and signs an upload URL; `receive_upload` streams the bytes to the store, encrypting, hashing
and sniffing them as they pass; `complete_upload` compares what came with what was declared and
makes the document AVAILABLE or REJECTED. Nothing of a document (its name, its bytes, its hash) is
written to a log line or an event.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from models.documents import Document, DocumentStatus, RejectionReason
from models.vault import Evidence, VaultScope
from resolvers import accounts, db, encryption, signing, sniffing, validation
from resolvers.access import vault as access
from resolvers.access.core import own_row
from resolvers.errors import InvalidInput, UserError
from resolvers.pagination import Page, PageKey, Window, page_key, pages_by_parent
from resolvers.services import DocumentStore, Services
from resolvers.storage import StorageError
from resolvers.vault import log_reads
from resolvers.viewer import Viewer

log = logging.getLogger("senvault.documents")

PREFIX = "documents/"
MAX_FILENAME = 255
# Uploads a family may have waiting at once: each holds a row and, once sent, an object.
MAX_PENDING_UPLOADS = 50
# How long after its upload URL ends a pending document waits for `completeDocumentUpload`.
COMPLETE_GRACE = timedelta(hours=1)
# An object no document holds is removed once it is this old (by the time in its key): an upload
# in progress has written its object but not yet its row.
ORPHAN_AGE = timedelta(hours=6)
UPLOAD_PATH = "/files/upload/"
DOWNLOAD_PATH = "/files/download/"
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def store(services: Services) -> DocumentStore:
    if services.documents is None:
        raise UserError("STORAGE_UNAVAILABLE", "Documents cannot be stored here.")
    return services.documents


# --- the family's changes -------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """Where and how to send a document's bytes."""

    path: str
    method: str
    headers: list[tuple[str, str]]
    expires_at: datetime


def _filename(value: str) -> str:
    name = validation.text("filename", value, max_length=MAX_FILENAME)
    if any(c in name for c in "/\\") or name in (".", ".."):
        raise InvalidInput("filename", "A file name cannot contain / or \\.")
    return name


def _content_type(value: str) -> str:
    cleaned = value.split(";", 1)[0].strip().lower()
    if cleaned not in sniffing.TYPES:
        raise UserError(
            "UNSUPPORTED_CONTENT_TYPE",
            "Upload a PDF, PNG, JPEG, HEIC, DOCX, ODT or plain-text file.",
            "contentType",
        )
    return cleaned


def upload_of(services: Services, document: Document) -> Upload:
    """A signed upload URL for a pending document."""
    key = store(services).keys.signing_key(b"upload")
    token = signing.sign(key, "u", [str(document.id)], document.upload_expires_at)
    return Upload(
        path=UPLOAD_PATH + token,
        method="PUT",
        headers=[("Content-Type", document.content_type)],
        expires_at=document.upload_expires_at,
    )


async def create_upload(
    services: Services,
    viewer: Viewer | None,
    *,
    evidence_id: int,
    filename: str,
    content_type: str,
    byte_size: int,
    sha256: str,
) -> tuple[Document, Upload]:
    """A pending document under the family's evidence, and where to send its bytes."""
    v = access.writer(viewer)
    documents = store(services)
    evidence = await own_row(Evidence, evidence_id, "Evidence", "evidenceId", family_id=v.family_id)
    name = _filename(filename)
    kind = _content_type(content_type)
    if byte_size < 1:
        raise InvalidInput("byteSize", "A document has at least one byte.")
    if byte_size > documents.max_bytes:
        raise UserError("TOO_LARGE", f"A document can be at most {documents.max_bytes:,} bytes.", "byteSize")
    if not _SHA256.fullmatch(sha256):
        raise InvalidInput("sha256", "Give the file's SHA-256 as 64 hexadecimal digits.")
    now = services.clock.now()
    pending = await Document.filter(
        family_id=evidence.family_id, status=DocumentStatus.PENDING_UPLOAD
    ).count()
    if pending >= MAX_PENDING_UPLOADS:
        raise UserError(
            "TOO_MANY_PENDING_UPLOADS",
            f"Finish or delete some of your {pending} unfinished uploads first.",
            "evidenceId",
        )
    document = await Document.create(
        family_id=evidence.family_id,
        child_id=evidence.child_id,
        evidence_id=evidence.id,
        filename=name,
        content_type=kind,
        byte_size=byte_size,
        sha256=sha256.lower(),
        status=DocumentStatus.PENDING_UPLOAD,
        created_at=now,
        upload_expires_at=now + documents.upload_ttl,
    )
    return document, upload_of(services, document)


class TransferRefused(Exception):
    """An upload or download the endpoint refuses: its HTTP status and a code for the client."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _not_found() -> TransferRefused:
    return TransferRefused(404, "NOT_FOUND", "Not found.")


def _object_key(document_id: int, now: datetime) -> str:
    # The time is the sweep's: an object no row holds is removed only once it is old enough.
    return f"{PREFIX}{document_id}/{int(now.timestamp() * 1000)}-{secrets.token_hex(6)}"


def _verified(services: Services, purpose: str, token: str) -> list[str]:
    documents = store(services)
    try:
        return signing.verify(
            documents.keys.signing_key(purpose.encode()), purpose[0], token, services.clock.now()
        )
    except signing.BadSignature:
        raise _not_found() from None
    except signing.Expired:
        raise TransferRefused(410, "URL_EXPIRED", "This link has expired; ask for a new one.") from None


async def receive_upload(
    services: Services, token: str, body: AsyncIterable[bytes], declared_length: int | None = None
) -> Document:
    """The bytes of a pending document, from its signed upload URL: encrypted into a new object,
    hashed and sniffed as they stream by. A repeated upload replaces the previous one. A body that
    says it is longer than the document (`Content-Length`) is refused before it is read."""
    (raw_id,) = _verified(services, "upload", token)
    documents = store(services)
    document = await Document.get_or_none(id=int(raw_id), status=DocumentStatus.PENDING_UPLOAD)
    if document is None:
        raise TransferRefused(409, "UPLOAD_CLOSED", "This upload is finished or was deleted.")
    now = services.clock.now()
    key = _object_key(document.id, now)
    data_key = encryption.new_data_key()
    digest = hashlib.sha256()
    sniffer = sniffing.Sniffer()
    limit = document.byte_size
    too_large = TransferRefused(
        413, "TOO_LARGE", f"This upload was declared as {limit:,} bytes; more were sent."
    )
    if declared_length is not None and declared_length > limit:
        raise too_large

    async def plain() -> AsyncIterator[bytes]:
        async for piece in body:
            if sniffer.size + len(piece) > limit:
                raise too_large
            digest.update(piece)
            sniffer.feed(piece)
            yield piece

    try:
        await documents.storage.put(key, encryption.encrypt(data_key, key, plain()))
    except StorageError:
        log.exception("the store failed to take an upload")
        raise TransferRefused(503, "STORAGE_UNAVAILABLE", "The file store is unavailable; retry.") from None
    changed = await Document.filter(id=document.id, status=DocumentStatus.PENDING_UPLOAD).update(
        object_key=key,
        wrapped_key=encryption.wrap(documents.keys, data_key, key),
        received_size=sniffer.size,
        received_sha256=digest.hexdigest(),
        received_type=sniffer.result(),
    )
    if not changed:
        await _discard(services, key)
        raise TransferRefused(409, "UPLOAD_CLOSED", "This upload is finished or was deleted.")
    if document.object_key:
        await _discard(services, document.object_key)
    return await Document.get(id=document.id)


async def _discard(services: Services, key: str | None) -> None:
    """Remove an object now if the store lets us; the sweep removes whatever this misses."""
    if key is None or services.documents is None:
        return
    try:
        await services.documents.storage.delete(key)
    except StorageError:
        log.warning("an object could not be removed now; the sweep will remove it")


async def complete_upload(services: Services, viewer: Viewer | None, document_id: int) -> Document:
    """Check the uploaded bytes against what was declared: AVAILABLE, or REJECTED with the reason."""
    v = access.writer(viewer)
    store(services)
    document = await own_row(Document, document_id, "Document", "documentId", family_id=v.family_id)
    if document.status is not DocumentStatus.PENDING_UPLOAD:
        raise UserError("ALREADY_COMPLETED", "This upload is already complete.", "documentId")
    if document.received_size is None or document.object_key is None:
        raise UserError("UPLOAD_MISSING", "Send the file to its upload URL first.", "documentId")
    reason: RejectionReason | None = None
    if document.received_size != document.byte_size:
        reason = RejectionReason.SIZE_MISMATCH
    elif document.received_sha256 != document.sha256:
        reason = RejectionReason.HASH_MISMATCH
    elif document.received_type != document.content_type:
        reason = RejectionReason.TYPE_MISMATCH
    now = services.clock.now()
    if reason is None:
        changes: dict[str, object] = {"status": DocumentStatus.AVAILABLE, "uploaded_at": now}
    else:
        # A rejected file is not kept: its key goes with it, and its object is removed.
        changes = {
            "status": DocumentStatus.REJECTED,
            "rejection_reason": reason,
            "object_key": None,
            "wrapped_key": None,
        }
    changed = await Document.filter(
        id=document.id, status=DocumentStatus.PENDING_UPLOAD, object_key=document.object_key
    ).update(**changes)
    if not changed:
        raise UserError("UPLOAD_CHANGED", "The upload changed while it was checked; try again.", "documentId")
    if reason is not None:
        await _discard(services, document.object_key)
    return await Document.get(id=document.id)


async def delete_document(services: Services, viewer: Viewer | None, document_id: int) -> Document:
    """Delete a document: its row and data key at once (the object is then unreadable), its object
    now or by the sweep."""
    v = access.writer(viewer)
    document = await own_row(Document, document_id, "Document", "documentId", family_id=v.family_id)
    await Document.filter(id=document.id).delete()
    await _discard(services, document.object_key)
    # As returned in the payload: its bytes are gone, so no link is issued for it.
    document.object_key = None
    return document


async def discard_objects(services: Services, keys: list[str]) -> None:
    """After evidence and its documents are deleted: their objects, now or by the sweep."""
    for key in keys:
        await _discard(services, key)


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceDocuments:
    """One page of one piece of evidence's documents, as a loader key: the evidence, whose Vault and
    which child it is of (what access is decided by), and the page."""

    family_id: int
    child_id: int
    page: PageKey


def documents_key(evidence_id: int, family_id: int, child_id: int, window: Window) -> EvidenceDocuments:
    """The loader key for a window on an evidence item's documents; a bad cursor is INVALID."""
    return EvidenceDocuments(family_id, child_id, page_key("Document", evidence_id, window))


async def document_pages(
    services: Services, viewer: Viewer | None, keys: Sequence[EvidenceDocuments]
) -> list[Page[Document] | None]:
    """Pages of many evidence items' documents, newest first, each None unless the viewer may read
    that child's documents now (the family, or an advocate whose live EVIDENCE grant covers the
    child). One transaction: access once per family, one windowed statement per distinct page, and
    an advocate's reads written to the access log, however many evidence items are listed."""
    async with in_transaction():
        vaults: dict[int, access.Access | None] = {}
        for key in keys:
            if key.family_id not in vaults:
                vaults[key.family_id] = await access.access(services, viewer, key.family_id)
        readable = [k for k in dict.fromkeys(keys) if access.covers(vaults[k.family_id], k.child_id)]
        pages: dict[EvidenceDocuments, Page[Document]] = {}
        if readable:
            found = await pages_by_parent(
                Document, "evidence_id", "Document", [k.page for k in readable], newest_first=True
            )
            pages = dict(zip(readable, found, strict=True))
        for family_id, acc in vaults.items():
            if acc is not None:
                reads: list[tuple[int | None, str]] = [
                    (d.child_id, f"document: {d.filename}")
                    for key, page in pages.items()
                    if key.family_id == family_id
                    for d in page.items
                ]
                await log_reads(services, acc, VaultScope.EVIDENCE, reads)
        return [pages.get(key) for key in keys]


async def evidence_of(services: Services, viewer: Viewer | None, document: Document) -> Evidence | None:
    """A document's evidence, to whoever may read the document now."""
    acc = await access.documents_access(services, viewer, document.family_id, document.child_id)
    return await Evidence.get_or_none(id=document.evidence_id) if acc is not None else None


async def download_paths(
    services: Services, viewer: Viewer | None, wanted: Sequence[Document]
) -> list[str | None]:
    """Signed download URLs (their paths) for documents, each None unless it is AVAILABLE and the
    viewer may read it now. Those issued to an advocate are written to the family's access log, in
    the transaction that checked the grant: one check and one write per family, however many
    documents a page lists."""
    paths: list[str | None] = [None] * len(wanted)
    store = services.documents
    if store is None or viewer is None:
        return paths
    by_family: dict[int, list[int]] = {}
    for index, document in enumerate(wanted):
        if document.status is DocumentStatus.AVAILABLE and document.object_key is not None:
            by_family.setdefault(document.family_id, []).append(index)
    if not by_family:
        return paths
    issued: list[int] = []
    async with in_transaction():
        for family_id, indexes in by_family.items():
            acc = await access.access(services, viewer, family_id)
            allowed = [i for i in indexes if access.covers(acc, wanted[i].child_id)]
            if acc is None or not allowed:
                continue
            reads: list[tuple[int | None, str]] = [
                (wanted[i].child_id, f"download link: {wanted[i].filename}") for i in allowed
            ]
            await log_reads(services, acc, VaultScope.EVIDENCE, reads)
            issued.extend(allowed)
    expires = services.clock.now() + store.download_ttl
    key = store.keys.signing_key(b"download")
    credential = [str(viewer.session_id or ""), str(viewer.api_token_id or "")]
    for i in issued:
        paths[i] = DOWNLOAD_PATH + signing.sign(key, "d", [str(wanted[i].id), *credential], expires)
    return paths


@dataclass(frozen=True)
class Opened:
    """A document a signed URL may fetch now, and the key to read its object."""

    document: Document
    data_key: encryption.DataKey


async def open_download(services: Services, token: str) -> Opened:
    """The document a download URL names, if the viewer it was issued to may still read it: the
    credential still live and, for an advocate, the grant too. Anything else is NOT_FOUND."""
    raw_id, session_id, api_token_id = _verified(services, "download", token)
    viewer = await accounts.viewer_by_credential(
        services, int(session_id) if session_id else None, int(api_token_id) if api_token_id else None
    )
    document = await Document.get_or_none(id=int(raw_id), status=DocumentStatus.AVAILABLE)
    if viewer is None or document is None or document.object_key is None or document.wrapped_key is None:
        raise _not_found()
    if await access.documents_access(services, viewer, document.family_id, document.child_id) is None:
        raise _not_found()
    data_key = encryption.unwrap(store(services).keys, document.wrapped_key, document.object_key)
    return Opened(document, data_key)


async def plaintext(services: Services, opened: Opened, start: int, end: int) -> AsyncIterator[bytes]:
    """Bytes `start..end` (inclusive) of an opened document, decrypting only the chunks that cover them."""
    document = opened.document
    assert document.object_key is not None
    async for piece in read_sealed(
        store(services), opened.data_key, document.object_key, document.byte_size, start, end
    ):
        yield piece


async def read_sealed(
    documents: DocumentStore,
    data_key: encryption.DataKey,
    object_key: str,
    plain_size: int,
    start: int,
    end: int,
) -> AsyncIterator[bytes]:
    """Bytes `start..end` (inclusive) of any object sealed by `encryption.encrypt` (a document, a
    data export), decrypting only the chunks that cover them."""
    first, last, offset = encryption.chunk_span(plain_size, start, end)
    stored_end = min((last + 1) * encryption.SEALED_CHUNK, encryption.sealed_size(plain_size)) - 1
    sealed = documents.storage.get(object_key, offset, stored_end)
    async for piece in encryption.decrypt_range(data_key, object_key, plain_size, sealed, start, end):
        yield piece


# --- key rotation ---------------------------------------------------------------------------


async def rewrap_keys(services: Services) -> int:
    """Re-wrap every document's data key under the current master key (`python server.py
    rotate-storage-key`); the objects are untouched. Returns how many rows changed."""
    keys = store(services).keys

    def rewrapped(row: dict[str, Any]) -> str | None:
        return encryption.rewrap(keys, str(row["wrapped_key"]), str(row["object_key"]))

    return await db.rewrite_column(Document, "wrapped_key", rewrapped, "object_key")


# --- the sweep ------------------------------------------------------------------------------


async def sweep(services: Services) -> None:
    """Pending documents whose upload was never completed are deleted, and objects that no document
    holds (deleted or rejected documents, replaced or abandoned uploads) are removed from the store."""
    if services.documents is None:
        return
    now = services.clock.now()
    await Document.filter(
        status=DocumentStatus.PENDING_UPLOAD, upload_expires_at__lt=now - COMPLETE_GRACE
    ).delete()
    batch: list[str] = []
    async for key in services.documents.storage.keys(PREFIX):
        batch.append(key)
        if len(batch) >= 500:
            await _remove_orphans(services, batch, now)
            batch = []
    if batch:
        await _remove_orphans(services, batch, now)


def _written_at(key: str) -> datetime | None:
    try:
        millis = int(key.rsplit("/", 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return None
    return datetime.fromtimestamp(millis / 1000, UTC)


async def _remove_orphans(services: Services, keys: list[str], now: datetime) -> None:
    rows = await Document.filter(object_key__in=keys).values_list("object_key", flat=True)
    held = {str(row) for row in rows}
    for key in keys:
        written = _written_at(key)
        if key in held or written is None or written > now - ORPHAN_AGE:
            continue
        await _discard(services, key)
