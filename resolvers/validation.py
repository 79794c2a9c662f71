"""Input checks shared by every area: each returns the clean value or raises InvalidInput."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime

from resolvers.errors import InvalidInput

# Deliberately plain: one @, a dot in the domain, no spaces. Deliverability is proven by use.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# Bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069): they reorder what follows
# them, so a name or a message can be made to read differently from what it says ("Trojan Source").
_BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
_LINE_BREAKS = re.compile("\r\n|[\r\u2028\u2029]")


def _refused(ch: str, multiline: bool) -> bool:
    if ch in _BIDI_CONTROLS:
        return True
    if multiline and ch in "\n\t":
        return False
    # Cc is every C0 and C1 control and DEL; Zl/Zp are line and paragraph separators.
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp")


def _invisible(ch: str) -> bool:
    # Whitespace and format characters (zero-width space, joiners, word joiner, BOM, …).
    return ch.isspace() or unicodedata.category(ch) == "Cf"


def text(field: str, value: str, *, max_length: int, required: bool = True, multiline: bool = False) -> str:
    """Text as stored: trimmed and NFC-normalised, within `max_length` characters, with no control
    characters or bidi controls (multi-line text keeps newlines, as `\n`, and tabs), and not made
    only of invisible characters (SPEC §12, "Text hygiene"). Every text input passes here."""
    cleaned = unicodedata.normalize("NFC", value)
    if multiline:
        cleaned = _LINE_BREAKS.sub("\n", cleaned)
    cleaned = cleaned.strip()
    if all(_invisible(ch) for ch in cleaned):
        # Empty, or only zero-width characters: nothing anyone could read.
        if required:
            raise InvalidInput(field, "This can't be empty.", "REQUIRED")
        cleaned = ""
    if len(cleaned) > max_length:
        raise InvalidInput(field, f"Use at most {max_length} characters.", "TOO_LONG")
    if any(_refused(ch, multiline) for ch in cleaned):
        raise InvalidInput(field, "This contains characters that are not allowed.")
    return cleaned


def email(value: str, field: str = "email") -> tuple[str, str]:
    """The address as typed (trimmed) and its case-insensitive key."""
    cleaned = text(field, value, max_length=254)
    if not _EMAIL.match(cleaned):
        raise InvalidInput(field, "Enter a valid email address.")
    return cleaned, cleaned.lower()


def past_date(field: str, value: date, today: date, *, max_years: int | None = None) -> date:
    """A date not after today (and, when given, not more than `max_years` ago)."""
    if value > today:
        raise InvalidInput(field, "This date is in the future.", "DATE_IN_FUTURE")
    if max_years is not None and value < today.replace(year=today.year - max_years, day=1):
        raise InvalidInput(field, f"This date is more than {max_years} years ago.", "OUT_OF_RANGE")
    return value


def future_instant(field: str, value: datetime, now: datetime) -> datetime:
    """A timezone-aware instant after `now` (an expiry)."""
    if value.tzinfo is None:
        raise InvalidInput(field, "Give the expiry with a timezone offset.")
    if value <= now:
        raise InvalidInput(field, "The expiry must be in the future.", "DATE_IN_PAST")
    return value
