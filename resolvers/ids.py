"""Row ids as clients send them: inside global ids and cursors. One parser, so that no id a client
makes up can reach the database as something it cannot hold."""

from __future__ import annotations

# Row ids (and event sequence numbers) are signed 64-bit integers: nothing outside can name a row,
# and PostgreSQL refuses such a parameter outright (SQLite overflows in the driver).
MAX_ID = 2**63 - 1


def parse_row_id(raw: object, *, minimum: int = 1) -> int | None:
    """The id a client's text names, or None when it cannot name a row.

    Only plain decimal digits count: Python's `int()` also takes signs, spaces and underscores
    (`" +1_0"`), which would make several texts name one row.
    """
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 19:
        value = int(raw)
    else:
        return None
    return value if minimum <= value <= MAX_ID else None
