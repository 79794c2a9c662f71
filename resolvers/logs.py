"""What the server writes for operators: an access line per HTTP request, and every other log
record, as text or as JSON lines (`LOG_FORMAT`), each naming the request it was written in.

The access log is written here rather than through `logging`: through it (uvicorn's access
logger, or a plain `Formatter`) a line cost 40-75 µs of CPU per request on the read benchmark,
more than the whole API's own work on a trivial query; written directly it costs a few. It never
holds a query string: a GET operation's variables can name a child.
"""

from __future__ import annotations

import copy
import logging
import sys
import time
from typing import Any, TextIO

import orjson
import uvicorn.config
from pythonjsonlogger.core import RESERVED_ATTRS

from schema.context import current_request_id

FORMATS = ("text", "json")


def _check(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}")


class AccessLog:
    """One line per HTTP request: time, request id, client, request line, status and duration."""

    def __init__(self, fmt: str = "text", stream: TextIO | None = None) -> None:
        _check(fmt)
        self._json = fmt == "json"
        self._stream = stream
        self._second = -1
        self._stamp = ""

    def _time(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((now - second) * 1000):03d}Z"

    def write(
        self,
        *,
        request_id: str,
        client: tuple[str, int] | None,
        method: str,
        path: str,
        http_version: str,
        status: int,
        seconds: float,
    ) -> None:
        now = time.time()
        address = f"{client[0]}:{client[1]}" if client else "-"
        if self._json:
            line = orjson.dumps(
                {
                    "time": self._time(now),
                    "level": "INFO",
                    "logger": "senvault.access",
                    "request_id": request_id,
                    "client": address,
                    "method": method,
                    "path": path,
                    "http_version": http_version,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                }
            ).decode()
        else:
            line = (
                f'{self._time(now)} INFO [{request_id}] {address} - "{method} {path} HTTP/{http_version}" '
                f"{status} {seconds * 1000:.1f}ms"
            )
        stream = self._stream or sys.stdout
        stream.write(line + "\n")
        stream.flush()


def install_request_id_logging() -> None:
    """Give every log record the id of the request it was written in (`%(request_id)s`; `-`
    outside one), and leave out what no line of ours prints (thread and process names)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "senvault_request_ids", False):
        return
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = current_request_id.get() or "-"
        return record

    factory.senvault_request_ids = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def log_config(fmt: str = "text") -> dict[str, Any]:
    """uvicorn's logging with the request id on every line, as text or as JSON lines (through
    python-json-logger). uvicorn's own access log is off: `AccessLog` writes it."""
    _check(fmt)
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    if fmt == "json":
        config["formatters"]["default"] = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
            # uvicorn repeats some messages with terminal colours; a log store needs them once.
            "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
        }
    else:
        config["formatters"]["default"]["fmt"] = (
            "%(asctime)s %(levelprefix)s [%(request_id)s] %(name)s: %(message)s"
        )
    # Every other library's lines (the ORM's, ours) through the same handler and format.
    config["root"] = {"handlers": ["default"], "level": "INFO"}
    # The ORM writes each statement with its parameter values (a child's name, an evidence
    # title) at DEBUG: never, even when the rest of the logging is turned up to DEBUG.
    config["loggers"]["tortoise.db_client"] = {"level": "INFO"}
    # SQLite's driver does the same below the ORM.
    config["loggers"]["aiosqlite"] = {"level": "INFO"}
    return config
