"""What a file really is, from its bytes: the seven types a Vault keeps (SPEC §14), or None.

A small table of signatures rather than a library: the libraries tell PDF, PNG and JPEG apart, but
not a DOCX from any other ZIP, an ODT from another OpenDocument file, HEIC from AVIF, or plain text
from HTML (docs/decisions.md, "Documents"). Fed in pieces as an upload streams by, it keeps only the
first `HEAD` bytes and the last `TAIL` (a ZIP's central directory is at its end), and checks text as
it goes, so it needs no second pass over the file and never holds it whole.
"""

from __future__ import annotations

import codecs
import struct

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
HEIC = "image/heic"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODT = "application/vnd.oasis.opendocument.text"
TEXT = "text/plain"
TYPES = (PDF, PNG, JPEG, HEIC, DOCX, ODT, TEXT)

HEAD = 8 * 1024
TAIL = 256 * 1024

# HEIF brands of HEVC-coded images (ISO/IEC 23008-12); AVIF and other HEIF images are not HEIC.
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
_ODT_MIMETYPE = ODT.encode()
# C0 controls other than tab, line feed, form feed and carriage return, and DEL: not in plain text.
_CONTROLS = bytes([*range(0, 9), 11, *range(14, 32), 127])
_NOT_CONTROLS = bytes(b for b in range(256) if b not in _CONTROLS)
# Markup a browser would render or run: refused as plain text, whatever it is served as.
_MARKUP = (b"<!doctype", b"<html", b"<head", b"<body", b"<script", b"<svg", b"<?xml", b"<iframe", b"<!--")


class Sniffer:
    """Fed the bytes of one file in order; `result()` names its type, or None for none we keep."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.size = 0
        self._text = True
        self._utf8 = codecs.getincrementaldecoder("utf-8")()

    def feed(self, piece: bytes) -> None:
        if len(self.head) < HEAD:
            self.head += piece[: HEAD - len(self.head)]
        self.tail += piece
        if len(self.tail) > TAIL:
            del self.tail[: len(self.tail) - TAIL]
        self.size += len(piece)
        if self._text:
            if piece.translate(None, _NOT_CONTROLS):
                self._text = False
            else:
                try:
                    self._utf8.decode(piece)
                except UnicodeDecodeError:
                    self._text = False

    def result(self) -> str | None:
        head = bytes(self.head)
        if head.startswith(b"%PDF-"):
            return PDF
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            return PNG
        if head.startswith(b"\xff\xd8\xff"):
            return JPEG
        if head[4:8] == b"ftyp" and _heic(head):
            return HEIC
        if head.startswith(b"PK\x03\x04"):
            return _zip_type(head, bytes(self.tail), self.size)
        if self._is_text(head):
            return TEXT
        return None

    def _is_text(self, head: bytes) -> bool:
        if not self._text or self.size == 0:
            return False
        try:
            self._utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
        start = head.removeprefix(codecs.BOM_UTF8).lstrip().lower()
        return not start.startswith(_MARKUP)


def _heic(head: bytes) -> bool:
    (box_size,) = struct.unpack(">I", head[:4])
    box = head[8 : min(box_size, len(head))]
    if len(box) < 8:
        return False
    major = box[:4]
    compatible = {box[i : i + 4] for i in range(8, len(box) - 3, 4)}
    return major != b"avif" and bool(({major} | compatible) & _HEIC_BRANDS)


def _zip_type(head: bytes, tail: bytes, size: int) -> str | None:
    # ODF requires its first entry to be `mimetype`, stored uncompressed: the type is in the head.
    if len(head) >= 30:
        name_length, extra_length = struct.unpack("<HH", head[26:30])
        name = head[30 : 30 + name_length]
        content = head[30 + name_length + extra_length :]
        if name == b"mimetype" and content.startswith(_ODT_MIMETYPE) and not _after(content, _ODT_MIMETYPE):
            return ODT
    names = _central_directory(tail, size)
    if names is not None and b"[Content_Types].xml" in names and b"word/document.xml" in names:
        return DOCX
    return None


def _after(content: bytes, prefix: bytes) -> bool:
    # `application/vnd.oasis.opendocument.text-template` and `-master` are other documents.
    rest = content[len(prefix) : len(prefix) + 1]
    return rest not in (b"", b"P")


def _central_directory(tail: bytes, size: int) -> set[bytes] | None:
    """The entry names in a ZIP's central directory, when it lies within the tail we kept."""
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or len(tail) - end < 22:
        return None
    entries, cd_size, cd_offset = struct.unpack("<HII", tail[end + 10 : end + 20])
    tail_start = size - len(tail)
    start = cd_offset - tail_start
    if start < 0 or start + cd_size > end:
        return None
    names: set[bytes] = set()
    at = start
    for _ in range(entries):
        if tail[at : at + 4] != b"PK\x01\x02":
            return None
        name_length, extra_length, comment_length = struct.unpack("<HHH", tail[at + 28 : at + 34])
        names.add(tail[at + 46 : at + 46 + name_length])
        at += 46 + name_length + extra_length + comment_length
    return names
