"""Where documents' bytes are kept: one small interface, two stores behind it.

`STORAGE_URL` chooses: `file://PATH` (the embedded default, a folder on the local disk) or
`s3://BUCKET?endpoint=URL&region=R` (any S3-compatible store, through aiobotocore; credentials from
the usual `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` variables, never from the URL). Every byte
given to a store is already encrypted (`resolvers.encryption`): a store never sees plaintext.

Objects are written whole or not at all (a temporary file renamed into place; an S3 multipart
upload completed only at the end), read from any offset, and streamed both ways in pieces: a
store never holds a whole document in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qs, urlparse

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

# Reads and writes move this much at a time.
PIECE = 256 * 1024
# S3 multipart uploads need parts of at least 5 MiB (all but the last).
S3_PART = 5 * 1024 * 1024


class StorageError(Exception):
    """The store failed (unreachable, refused, full): the operation can be retried."""


class Storage(Protocol):
    description: str

    async def put(self, key: str, data: AsyncIterable[bytes]) -> int:
        """Store `data` under `key`, whole or not at all; returns how many bytes were stored."""

    def get(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """The stored bytes `start..end` (inclusive), in pieces."""

    async def delete(self, key: str) -> None:
        """Remove `key`; removing what is not there is not an error."""

    def keys(self, prefix: str) -> AsyncIterator[str]:
        """Every key under `prefix` (the sweep looks for objects no document holds)."""

    async def check(self) -> None:
        """Raise StorageError unless the store can be written to now (`/readyz`)."""

    async def close(self) -> None: ...


def _safe_key(key: str) -> str:
    # Keys are made by `resolvers.documents` only; refuse anything that could leave the root.
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise ValueError(f"not a storage key: {key!r}")
    return key


class LocalStorage:
    """A folder on the local disk; `.partial/` holds writes in progress, renamed into place when whole."""

    def __init__(self, root: Path) -> None:
        self.root = root = root.resolve()
        self.partial = root / ".partial"
        self.partial.mkdir(parents=True, exist_ok=True)
        self.description = f"file://{root}"

    def _path(self, key: str) -> Path:
        return self.root / _safe_key(key)

    async def put(self, key: str, data: AsyncIterable[bytes]) -> int:
        target = self._path(key)
        temp = self.partial / secrets.token_hex(12)
        handle = await asyncio.to_thread(open, temp, "wb")
        written = 0
        pending = bytearray()
        try:
            try:
                async for piece in data:
                    pending += piece
                    if len(pending) >= PIECE:
                        await asyncio.to_thread(handle.write, bytes(pending))
                        written += len(pending)
                        pending.clear()
                if pending:
                    await asyncio.to_thread(handle.write, bytes(pending))
                    written += len(pending)
                # A lost record hurts a family: the bytes are on the disk before the row says so.
                await asyncio.to_thread(handle.flush)
                await asyncio.to_thread(os.fsync, handle.fileno())
            finally:
                await asyncio.to_thread(handle.close)
            await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
            await asyncio.to_thread(os.replace, temp, target)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(temp.unlink)
            if isinstance(exc, OSError):
                raise StorageError(f"the disk refused the write: {type(exc).__name__}") from exc
            raise
        return written

    async def get(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        try:
            handle = await asyncio.to_thread(open, self._path(key), "rb")
        except OSError as exc:
            raise StorageError(f"object {key} cannot be read: {type(exc).__name__}") from exc
        try:
            await asyncio.to_thread(handle.seek, start)
            left = end - start + 1
            while left > 0:
                piece = await asyncio.to_thread(handle.read, min(PIECE, left))
                if not piece:
                    return
                left -= len(piece)
                yield piece
        finally:
            await asyncio.to_thread(handle.close)

    async def delete(self, key: str) -> None:
        try:
            await asyncio.to_thread(self._path(key).unlink)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"the disk refused the delete: {type(exc).__name__}") from exc

    async def check(self) -> None:
        writable = await asyncio.to_thread(os.access, self.partial, os.W_OK | os.X_OK)
        if not writable:
            raise StorageError("the folder is missing or not writable")

    async def keys(self, prefix: str) -> AsyncIterator[str]:
        base = self.root / _safe_key(prefix.rstrip("/"))

        def walk() -> list[str]:
            if not base.exists():
                return []
            return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

        for key in await asyncio.to_thread(walk):
            yield key

    async def close(self) -> None:
        return None


class S3Storage:
    """A bucket of any S3-compatible store, through one aiobotocore client for the app's life."""

    def __init__(self, bucket: str, client: S3Client, stack: AsyncExitStack, description: str) -> None:
        self.bucket = bucket
        self.client = client
        self._stack = stack
        self.description = description

    @classmethod
    async def open(cls, bucket: str, endpoint: str | None, region: str) -> S3Storage:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        stack = AsyncExitStack()
        client = await stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=endpoint,
                region_name=region,
                config=AioConfig(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5),
            )
        )
        return cls(bucket, client, stack, f"s3://{bucket}" + (f" at {endpoint}" if endpoint else ""))

    async def put(self, key: str, data: AsyncIterable[bytes]) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        buffer = bytearray()
        parts: list[CompletedPartTypeDef] = []
        upload_id: str | None = None
        written = 0
        try:
            async for piece in data:
                buffer += piece
                if len(buffer) >= S3_PART:
                    if upload_id is None:
                        created = await self.client.create_multipart_upload(Bucket=self.bucket, Key=key)
                        upload_id = created["UploadId"]
                    number = len(parts) + 1
                    sent = await self.client.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=bytes(buffer)
                    )
                    parts.append({"ETag": sent["ETag"], "PartNumber": number})
                    written += len(buffer)
                    buffer.clear()
            if upload_id is None:
                await self.client.put_object(Bucket=self.bucket, Key=key, Body=bytes(buffer))
            else:
                number = len(parts) + 1
                if buffer or not parts:
                    sent = await self.client.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=bytes(buffer)
                    )
                    parts.append({"ETag": sent["ETag"], "PartNumber": number})
                await self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
            written += len(buffer)
            return written
        except BaseException as exc:
            if upload_id is not None:
                with contextlib.suppress(BotoCoreError, ClientError, OSError):
                    await self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            if isinstance(exc, BotoCoreError | ClientError):
                raise StorageError(f"the store refused the write: {type(exc).__name__}") from exc
            raise

    async def get(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = await self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end}")
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"the store refused the read: {type(exc).__name__}") from exc
        async with answer["Body"] as body:
            async for piece in body.iter_chunks(PIECE):
                yield piece

    async def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            await self.client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"the store refused the delete: {type(exc).__name__}") from exc

    async def check(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(type(exc).__name__) from exc

    async def keys(self, prefix: str) -> AsyncIterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    async def close(self) -> None:
        await self._stack.aclose()


async def open_storage(url: str) -> Storage:
    """The store `STORAGE_URL` names."""
    parts = urlparse(url)
    if parts.scheme == "file":
        # `file://./senvault-files` (relative: netloc `.`) and `file:///srv/files` (absolute).
        raw = (parts.netloc + parts.path) if parts.netloc else parts.path
        return await asyncio.to_thread(LocalStorage, Path(raw))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError("STORAGE_URL s3://BUCKET needs a bucket name")
        query = parse_qs(parts.query)
        endpoint = query.get("endpoint", [None])[0]
        region = query.get("region", [os.environ.get("AWS_DEFAULT_REGION", "us-east-1")])[0] or "us-east-1"
        return await S3Storage.open(parts.netloc, endpoint, region)
    raise ValueError(f"STORAGE_URL must be file://PATH or s3://BUCKET, not {url!r}")
