"""The chunked encryption of documents on its own: every size around the chunk boundaries, ranges,
and stored bytes that were changed, reordered, cut short or moved to another object."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from resolvers import encryption
from resolvers.encryption import CHUNK, SEALED_CHUNK, Corrupt, MasterKeys, UnusableKey

KEY = "documents/1/1000-abc"


async def _pieces(data: bytes, size: int = 10_000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def _seal(data_key: encryption.DataKey, plain: bytes, key: str = KEY) -> bytes:
    return b"".join([c async for c in encryption.encrypt(data_key, key, _pieces(plain))])


async def _open(
    data_key: encryption.DataKey, sealed: bytes, size: int, start: int, end: int, key: str = KEY
) -> bytes:
    _, _, offset = encryption.chunk_span(size, start, end)
    pieces = encryption.decrypt_range(data_key, key, size, _pieces(sealed[offset:], 7_000), start, end)
    return b"".join([p async for p in pieces])


@pytest.mark.parametrize("size", [1, 100, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17])
async def test_every_size_round_trips_whole_and_in_ranges(size: int) -> None:
    data_key = encryption.new_data_key()
    plain = os.urandom(size)
    sealed = await _seal(data_key, plain)
    assert len(sealed) == encryption.sealed_size(size)
    assert await _open(data_key, sealed, size, 0, size - 1) == plain
    for start, end in [(0, 0), (size - 1, size - 1), (size // 3, size // 2), (max(CHUNK - 2, 0), CHUNK + 2)]:
        end = min(end, size - 1)
        if start <= end:
            assert await _open(data_key, sealed, size, start, end) == plain[start : end + 1]


async def test_changed_reordered_truncated_or_moved_chunks_do_not_open() -> None:
    data_key = encryption.new_data_key()
    size = 2 * CHUNK + 10
    plain = os.urandom(size)
    sealed = await _seal(data_key, plain)
    flipped = bytearray(sealed)
    flipped[5] ^= 1
    swapped = sealed[SEALED_CHUNK : 2 * SEALED_CHUNK] + sealed[:SEALED_CHUNK] + sealed[2 * SEALED_CHUNK :]
    cut = sealed[: 2 * SEALED_CHUNK]
    for damaged in (bytes(flipped), swapped, cut):
        with pytest.raises(Corrupt):
            await _open(data_key, damaged, size, 0, size - 1)
    # The last full chunk passed off as the end: it was sealed as not the last.
    last_full = sealed[:SEALED_CHUNK]
    with pytest.raises(Corrupt):
        await _open(data_key, last_full, CHUNK - 16, 0, CHUNK - 17)
    with pytest.raises(Corrupt):
        await _open(data_key, sealed, size, 0, size - 1, key="documents/2/1000-abc")
    with pytest.raises(Corrupt):
        await _open(encryption.new_data_key(), sealed, size, 0, size - 1)


def test_a_wrapped_key_opens_only_with_its_master_key_and_object() -> None:
    old, new = MasterKeys(os.urandom(32)), MasterKeys(os.urandom(32))
    data_key = encryption.new_data_key()
    wrapped = encryption.wrap(old, data_key, KEY)
    assert encryption.unwrap(old, wrapped, KEY) == data_key
    with pytest.raises(UnusableKey):
        encryption.unwrap(new, wrapped, KEY)
    with pytest.raises(UnusableKey):
        encryption.unwrap(old, wrapped, "documents/2/1000-abc")
    rotated = MasterKeys(new.current, (old.current,))
    rewrapped = encryption.rewrap(rotated, wrapped, KEY)
    assert rewrapped is not None
    assert encryption.unwrap(new, rewrapped, KEY) == data_key
    assert encryption.rewrap(rotated, rewrapped, KEY) is None


@pytest.mark.parametrize("text", ["", "short", "not base64 at all!", "Z" * 64, "AAAA" * 12])
def test_a_malformed_master_key_is_refused(text: str) -> None:
    with pytest.raises(UnusableKey):
        encryption.parse_master_key(text)
