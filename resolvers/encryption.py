"""Encryption at rest for documents: AES-256-GCM in fixed-size chunks, a data key per stored object,
wrapped by the master key (`STORAGE_MASTER_KEY`).

An object is the concatenation of its chunks: `size // CHUNK` full chunks of `CHUNK` bytes of
plaintext and a last one of the rest (`size % CHUNK` bytes, possibly none), each sealed with the
data key as `ciphertext || 16-byte tag`. Chunk `i`'s nonce is the object's random 8-byte prefix
followed by `i` (4 bytes, big-endian), and its associated data names the object, `i` and whether it
is the last chunk: chunks cannot be moved between objects, reordered, dropped or the object cut
short without decryption failing. A byte range is served by decrypting only the chunks that cover it.

The data key, wrapped (AES-256-GCM under the master key, the object key as associated data), and the
nonce prefix are kept in the document's row, never in the store: the store holds only ciphertext.
Master keys are named by a short id (a hash of the key), so old keys can stay readable while every
wrapped data key is re-wrapped under a new one (`rewrap`; docs/decisions.md, "Key rotation").

Short secrets kept in rows (a TOTP secret) are sealed under the same master key (`seal_text`),
so a copy of the database alone does not hold them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CHUNK = 64 * 1024
TAG = 16
SEALED_CHUNK = CHUNK + TAG
_FORMAT = "1"


class UnusableKey(Exception):
    """A master key is missing or malformed, or a wrapped key does not open."""


class Corrupt(Exception):
    """Stored bytes that do not decrypt: tampered with, truncated, or under another key."""


def parse_master_key(text: str, name: str = "STORAGE_MASTER_KEY") -> bytes:
    """A master key as configured: 32 bytes, base64 (standard or URL-safe) or 64 hex digits."""
    raw = text.strip()
    key: bytes | None = None
    if len(raw) == 64:
        try:
            key = bytes.fromhex(raw)
        except ValueError:
            key = None
    if key is None:
        try:
            key = base64.b64decode(
                raw + "=" * (-len(raw) % 4), altchars=b"-_" if "-" in raw or "_" in raw else None
            )
        except (binascii.Error, ValueError):
            key = None
    if key is None or len(key) != 32:
        raise UnusableKey(
            f"{name} must be 32 random bytes, base64- or hex-encoded (e.g. `openssl rand -base64 32`)."
        )
    return key


def key_id(key: bytes) -> str:
    """A master key's public name: not the key, and not enough of a hash to guess it from."""
    return hashlib.sha256(b"senvault master key id\x00" + key).hexdigest()[:12]


@dataclass(frozen=True)
class MasterKeys:
    """The current master key (wraps new data keys) and earlier ones still accepted for unwrapping."""

    current: bytes
    previous: tuple[bytes, ...] = ()

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    def _by_id(self, wanted: str) -> bytes:
        for key in (self.current, *self.previous):
            if key_id(key) == wanted:
                return key
        raise UnusableKey(f"master key {wanted} is not configured")

    def signing_key(self, purpose: bytes) -> bytes:
        """A key for signing URLs, derived from the current master key (not the key itself)."""
        return hmac.new(self.current, b"senvault signing\x00" + purpose, hashlib.sha256).digest()


@dataclass(frozen=True)
class DataKey:
    key: bytes
    nonce_prefix: bytes


def new_data_key() -> DataKey:
    return DataKey(AESGCM.generate_key(bit_length=256), os.urandom(8))


def wrap(keys: MasterKeys, data_key: DataKey, object_key: str) -> str:
    """The data key sealed under the current master key, as stored in the document's row."""
    return f"{_FORMAT}:{_seal(keys, data_key.key, _wrap_aad(object_key))}:{data_key.nonce_prefix.hex()}"


def unwrap(keys: MasterKeys, wrapped: str, object_key: str) -> DataKey:
    try:
        version, kid, blob, prefix = wrapped.split(":")
        if version != _FORMAT:
            raise UnusableKey("unknown wrapped key format")
        return DataKey(_open(keys, kid, blob, _wrap_aad(object_key)), bytes.fromhex(prefix))
    except (ValueError, binascii.Error, InvalidTag) as exc:
        raise UnusableKey("the wrapped data key does not open") from exc


def rewrap(keys: MasterKeys, wrapped: str, object_key: str) -> str | None:
    """The same data key wrapped under the current master key, or None when it already is."""
    if _under_current_key(keys, wrapped):
        return None
    return wrap(keys, unwrap(keys, wrapped, object_key), object_key)


# A short secret kept in a database row (a TOTP secret), sealed under the master key:
# "s1:<master key id>:<base64 of nonce, ciphertext and tag>".
_SEALED_PREFIX = "s1"


def seal_text(keys: MasterKeys, text: str, purpose: str) -> str:
    """`text` sealed under the current master key for one row and use (`purpose`, the associated
    data: a sealed value cannot be moved to another row or field)."""
    return f"{_SEALED_PREFIX}:{_seal(keys, text.encode(), _sealed_aad(purpose))}"


def is_sealed(value: str) -> bool:
    return value.startswith(_SEALED_PREFIX + ":")


def open_text(keys: MasterKeys, sealed: str, purpose: str) -> str:
    """The text `seal_text` sealed; UnusableKey when it does not open (another row's, a key gone)."""
    try:
        prefix, kid, blob = sealed.split(":")
        if prefix != _SEALED_PREFIX:
            raise UnusableKey("not a sealed value")
        return _open(keys, kid, blob, _sealed_aad(purpose)).decode()
    except (ValueError, binascii.Error, InvalidTag, UnicodeDecodeError) as exc:
        raise UnusableKey("the sealed value does not open") from exc


def reseal_text(keys: MasterKeys, value: str, purpose: str) -> str | None:
    """The value sealed under the current master key (a plaintext one from before sealing, too), or
    None when it already is."""
    if not is_sealed(value):
        return seal_text(keys, value, purpose)
    if _under_current_key(keys, value):
        return None
    return seal_text(keys, open_text(keys, value, purpose), purpose)


def _seal(keys: MasterKeys, plain: bytes, aad: bytes) -> str:
    """`plain` under the current master key: "<key id>:<base64 of nonce, ciphertext and tag>"
    (the middle of a wrapped data key and of a sealed text)."""
    nonce = os.urandom(12)
    sealed = AESGCM(keys.current).encrypt(nonce, plain, aad)
    return f"{keys.current_id}:{base64.b64encode(nonce + sealed).decode()}"


def _open(keys: MasterKeys, kid: str, blob: str, aad: bytes) -> bytes:
    """What `_seal` sealed; ValueError, binascii.Error or InvalidTag when it does not open."""
    raw = base64.b64decode(blob)
    return AESGCM(keys._by_id(kid)).decrypt(raw[:12], raw[12:], aad)


def _under_current_key(keys: MasterKeys, value: str) -> bool:
    """Whether a wrapped data key or sealed text ("<format>:<key id>:...") is under the current key."""
    return value.split(":")[1] == keys.current_id


def _sealed_aad(purpose: str) -> bytes:
    return b"senvault sealed text\x00" + purpose.encode()


def _wrap_aad(object_key: str) -> bytes:
    return b"senvault data key\x00" + object_key.encode()


def _aad(object_key: str, index: int, final: bool) -> bytes:
    return b"senvault chunk\x00" + object_key.encode() + struct.pack(">I?", index, final)


def _nonce(data_key: DataKey, index: int) -> bytes:
    return data_key.nonce_prefix + struct.pack(">I", index)


def sealed_size(plain_size: int) -> int:
    """The stored size of `plain_size` bytes of plaintext."""
    return plain_size + TAG * (plain_size // CHUNK + 1)


async def encrypt(data_key: DataKey, object_key: str, plain: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Seal a stream of any-sized pieces into chunks; one chunk is held back so the last can be marked."""
    aead = AESGCM(data_key.key)
    buffer = bytearray()
    index = 0
    async for piece in plain:
        buffer += piece
        # Every full chunk is sealed as not the last; the last is what remains, 0 to CHUNK - 1
        # bytes (so a size that is a multiple of CHUNK ends with an empty last chunk).
        while len(buffer) >= CHUNK:
            chunk = bytes(buffer[:CHUNK])
            del buffer[:CHUNK]
            yield aead.encrypt(_nonce(data_key, index), chunk, _aad(object_key, index, False))
            index += 1
    yield aead.encrypt(_nonce(data_key, index), bytes(buffer), _aad(object_key, index, True))


def chunk_span(plain_size: int, start: int, end: int) -> tuple[int, int, int]:
    """For plaintext bytes `start..end` (inclusive): the first and last chunk index and the stored
    byte offset where the first begins."""
    first = start // CHUNK
    last = min(end // CHUNK, plain_size // CHUNK)
    return first, last, first * SEALED_CHUNK


async def decrypt_range(
    data_key: DataKey,
    object_key: str,
    plain_size: int,
    sealed: AsyncIterable[bytes],
    start: int,
    end: int,
) -> AsyncIterator[bytes]:
    """Plaintext bytes `start..end` (inclusive) from the stored chunks that cover them, which
    `sealed` yields from chunk `chunk_span(...)[0]` onward, in pieces of any size."""
    aead = AESGCM(data_key.key)
    last_index = plain_size // CHUNK
    first, last, _ = chunk_span(plain_size, start, end)
    index = first
    buffer = bytearray()

    def open_chunk(block: bytes) -> bytes:
        try:
            return aead.decrypt(_nonce(data_key, index), block, _aad(object_key, index, index == last_index))
        except InvalidTag as exc:
            raise Corrupt(f"chunk {index} does not decrypt") from exc

    def cut(plain: bytes) -> bytes:
        base = index * CHUNK
        lo = max(start - base, 0)
        hi = min(end - base + 1, len(plain))
        return plain[lo:hi]

    async for piece in sealed:
        buffer += piece
        while index <= last:
            size = SEALED_CHUNK if index < last_index else plain_size - last_index * CHUNK + TAG
            if len(buffer) < size:
                break
            block = bytes(buffer[:size])
            del buffer[:size]
            out = cut(open_chunk(block))
            index += 1
            if out:
                yield out
        if index > last:
            return
    if index <= last:
        raise Corrupt("the stored object is shorter than its document")
