"""The two HTTP endpoints of documents: a staged upload's PUT and a signed download's GET.

Both are addressed by a signed token in the path (`resolvers.documents`), never logged whole
(`server.RequestIds` writes `/files/upload/…`), and both stream: an upload is encrypted into the
store as it arrives, a download decrypts only the chunks its range covers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from urllib.parse import quote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from resolvers import documents, exports
from resolvers.encryption import Corrupt, UnusableKey
from resolvers.services import Services
from resolvers.storage import StorageError

log = logging.getLogger("senvault.documents")

# At most 19 digits a number: more than any file holds, and int() of a huge string is refused.
_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-()[]+,=@")


def _refusal(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]},
        status_code=status,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def content_disposition(filename: str) -> str:
    """`attachment`, with an ASCII name every browser reads safely and the real name (RFC 6266, 8187)."""
    fallback = "".join(c if c in _SAFE else "_" for c in filename).strip(" .") or "document"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def byte_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """The one range a `Range` header asks for (inclusive), None for the whole file (no header, a
    malformed one or several ranges: RFC 9110 lets a server ignore them), or "unsatisfiable"."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0:
            return "unsatisfiable"
        return max(size - suffix, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, end


async def upload(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        length = request.headers.get("content-length", "")
        document = await documents.receive_upload(
            services,
            request.path_params["token"],
            request.stream(),
            int(length) if length.isdigit() else None,
        )
    except documents.TransferRefused as exc:
        return _refusal(exc.status, exc.code, exc.message)
    except ClientDisconnect:
        return _refusal(400, "UPLOAD_INTERRUPTED", "The upload was cut short; send it again.")
    return JSONResponse(
        {"byteSize": document.received_size, "sha256": document.received_sha256},
        headers={"Cache-Control": "no-store"},
    )


async def download(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        opened = await documents.open_download(services, request.path_params["token"])
    except documents.TransferRefused as exc:
        return _refusal(exc.status, exc.code, exc.message)
    except UnusableKey:
        log.error("a document's data key does not open with the configured master keys")
        return _refusal(503, "STORAGE_UNAVAILABLE", "This document cannot be read now.")
    document = opened.document
    return await _send(
        request,
        size=document.byte_size,
        content_type=document.content_type
        + ("; charset=utf-8" if document.content_type == "text/plain" else ""),
        filename=document.filename,
        etag=document.sha256,
        read=lambda start, end: documents.plaintext(services, opened, start, end),
    )


async def export_download(request: Request) -> Response:
    """A data export's ZIP, through its signed link (`resolvers.exports`)."""
    services: Services = request.app.state.services
    try:
        opened = await exports.open_download(services, request.path_params["token"])
    except documents.TransferRefused as exc:
        return _refusal(exc.status, exc.code, exc.message)
    except UnusableKey:
        log.error("a data export's data key does not open with the configured master keys")
        return _refusal(503, "STORAGE_UNAVAILABLE", "This export cannot be read now.")
    export = opened.export
    assert export.byte_size is not None
    made = export.ready_at.strftime("%Y-%m-%d") if export.ready_at else "export"
    return await _send(
        request,
        size=export.byte_size,
        content_type="application/zip",
        filename=f"senvault-data-{made}.zip",
        etag=f"export-{export.id}",
        read=lambda start, end: exports.plaintext(services, opened, start, end),
    )


async def _send(
    request: Request,
    *,
    size: int,
    content_type: str,
    filename: str,
    etag: str,
    read: Callable[[int, int], AsyncIterator[bytes]],
) -> Response:
    """A stored file as an attachment, whole or the one range asked for, decrypted as it streams."""
    headers = {
        "Content-Type": content_type,
        "Content-Disposition": content_disposition(filename),
        "X-Content-Type-Options": "nosniff",
        # Nothing renders or runs even if a browser were to open it in place.
        "Content-Security-Policy": "default-src 'none'; sandbox",
        # The link is a credential: no copy in caches, and never sent on in a Referer.
        "Cache-Control": "private, no-store",
        "Referrer-Policy": "no-referrer",
        "Accept-Ranges": "bytes",
        "ETag": f'"{etag}"',
    }
    wanted = byte_range(request.headers.get("range"), size)
    if wanted == "unsatisfiable":
        return _refusal(
            416,
            "RANGE_NOT_SATISFIABLE",
            "That range is outside the file.",
            {"Content-Range": f"bytes */{size}"},
        )
    status = 200
    start, end = 0, size - 1
    if isinstance(wanted, tuple):
        start, end = wanted
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    body = read(start, end)
    try:
        # The first piece before the status line: a missing or damaged object is a 503, not a
        # 200 cut short.
        first = await anext(body)
    except (StorageError, Corrupt, StopAsyncIteration):
        log.error("a stored object cannot be read")
        return _refusal(503, "STORAGE_UNAVAILABLE", "This file cannot be read now.")

    async def stream() -> AsyncIterator[bytes]:
        yield first
        async for piece in body:
            yield piece

    return StreamingResponse(stream(), status_code=status, headers=headers)
