"""Input checks shared by every area: each returns the clean value or raises InvalidInput."""

from __future__ import annotations

import re
from datetime import date, datetime

from resolvers.errors import InvalidInput

# Deliberately plain: one @, a dot in the domain, no spaces. Deliverability is proven by use.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def text(field: str, value: str, *, max_length: int, required: bool = True, multiline: bool = False) -> str:
    """Trimmed text within `max_length` characters, with no control characters."""
    cleaned = value.strip()
    if required and not cleaned:
        raise InvalidInput(field, "This can't be empty.", "REQUIRED")
    if len(cleaned) > max_length:
        raise InvalidInput(field, f"Use at most {max_length} characters.", "TOO_LONG")
    allowed = "\n\t\r" if multiline else ""
    if any(ord(ch) < 32 and ch not in allowed for ch in cleaned) or "\x7f" in cleaned:
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
