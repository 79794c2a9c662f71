"""Count the SQL statements the ORM sends while a block runs (the served app runs in the test's process).

Every statement Tortoise sends is logged at DEBUG on `tortoise.db_client` before it is executed, on
every backend; counting those records counts statements, raw SQL through the ORM's client included.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from resolvers import db

_LOGGER = logging.getLogger("tortoise.db_client")


# The served app's own background tasks (server.py), whose statements no request or socket causes.
BACKGROUND_TASKS = frozenset({"sweeper", "exporter", "credentials"})


class _Counter(logging.Handler):
    def __init__(self, include: Callable[[], bool]) -> None:
        super().__init__(logging.DEBUG)
        self.include = include
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not self.include():
            return
        query = record.args[0] if isinstance(record.args, tuple) and record.args else record.msg
        self.statements.append(str(query))


def _outside_background_tasks() -> bool:
    task = asyncio.current_task()
    return task is None or task.get_name() not in BACKGROUND_TASKS


@contextmanager
def statements(*, sockets: bool = False) -> Iterator[list[str]]:
    """The statements HTTP requests sent while the block ran, in order (the list fills as they
    are sent); not the sweeper's or the test's own. With `sockets`, those of websocket operations
    and deliveries too (and the test's own: it should send none meanwhile)."""
    counter = _Counter(_outside_background_tasks if sockets else db.in_request)
    level, propagate = _LOGGER.level, _LOGGER.propagate
    _LOGGER.addHandler(counter)
    _LOGGER.setLevel(logging.DEBUG)
    # Counted here, not repeated into the test's captured log.
    _LOGGER.propagate = False
    try:
        yield counter.statements
    finally:
        _LOGGER.removeHandler(counter)
        _LOGGER.setLevel(level)
        _LOGGER.propagate = propagate
