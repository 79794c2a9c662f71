"""The one place where domain failures become GraphQL: user errors in payloads, codes at the top."""

from __future__ import annotations

import logging
import sqlite3
import traceback
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import asyncpg.exceptions
import strawberry
import tortoise.exceptions
from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.relay.types import GlobalIDValueError
from strawberry.schema.exceptions import CannotGetOperationTypeError

from resolvers import errors, metrics

log = logging.getLogger("senvault.graphql")

T = TypeVar("T")


@strawberry.type(description="An expected failure: a broken rule or a bad input. Nothing changed.")
class UserError:
    code: str = strawberry.field(
        description="Stable machine-readable code, e.g. NOT_FOUND, TOO_LONG, EMAIL_TAKEN."
    )
    message: str = strawberry.field(description="A sentence to show the person.")
    field: str | None = strawberry.field(
        description="The input field at fault, by its GraphQL name, when one is."
    )


def user_error(exc: errors.UserError) -> UserError:
    return UserError(code=exc.code, message=exc.message, field=exc.field)


async def attempt(action: Awaitable[T]) -> tuple[T | None, list[UserError]]:
    """Run a domain call; an expected failure becomes a user error instead of a result."""
    try:
        return await action, []
    except errors.UserError as exc:
        return None, [user_error(exc)]


# Failures of the connection to the database, not of a statement: the database is down, restarting or
# unreachable. Answered as SERVICE_UNAVAILABLE (HTTP 503 with Retry-After), not as a bug.
_DATABASE_GONE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, timed out (TimeoutError is an OSError)
    asyncpg.exceptions.PostgresConnectionError,  # class 08: connection exceptions
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutting down, starting up
    asyncpg.exceptions.InterfaceError,  # "connection is closed" / "pool is closing"
    tortoise.exceptions.DBConnectionError,
)
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    """`error` and what it was raised from, each once."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def database_unavailable(error: BaseException | None) -> bool:
    """Whether `error` (or what it was raised from) says the database cannot be reached."""
    return any(
        isinstance(link, _DATABASE_GONE)
        or (isinstance(link, sqlite3.OperationalError) and "unable to open" in str(link))
        for link in _chain(error)
    )


# Errors that carry their own code and are safe to show as they are.
_CODED: tuple[type[Exception], ...] = (errors.Unauthenticated, errors.Forbidden)


def top_level_code(error: GraphQLError) -> str | None:
    original = error.original_error
    if isinstance(original, _CODED):
        return original.code  # type: ignore[attr-defined, no-any-return]
    if isinstance(original, errors.UserError | GlobalIDValueError):
        # A bad argument to a query (which has no userErrors to carry it), or a global ID that
        # names no type of node (`node(id:)` decodes it before any resolver of ours runs).
        return "BAD_USER_INPUT"
    if original is None or isinstance(original, GraphQLError):
        # Parse and validation errors, bad variables, limits: the client's request is at fault.
        code = (error.extensions or {}).get("code")
        return str(code) if code else "BAD_USER_INPUT"
    if isinstance(original, CannotGetOperationTypeError):
        # No operation of that name in the document (a websocket `subscribe`, an SSE request):
        # over plain HTTP the same mistake is a 400.
        return "BAD_REQUEST"
    if error.path is None and isinstance(original, ValueError):
        # Before execution, where only the document and its variables are read: a literal that
        # cannot be converted (an integer of more than 4,300 digits).
        return "BAD_USER_INPUT"
    return None


# Errors of the database or the ORM, whose messages may quote a row's values.
_FROM_DATABASE = (asyncpg.exceptions.PostgresError, tortoise.exceptions.BaseORMException, sqlite3.Error)


def _log_unexpected(request_id: str | None, error: GraphQLError) -> None:
    """An unexpected error in the log with its stack, for whoever investigates. A database error's
    message quotes the values of the row it failed on (PostgreSQL's `DETAIL: Key (email_key)=(…)`,
    `Failing row contains (…)`): such an error is logged by its kind and what it names in the
    schema, without its message or those of the errors it was raised from."""
    original = error.original_error
    chain = list(_chain(original))
    if not any(isinstance(link, _FROM_DATABASE) for link in chain):
        log.error("unexpected error in request %s at %s", request_id, error.path, exc_info=original)
        return
    links: list[str] = []
    stack = ""
    for link in chain:
        names = [
            f"{attribute}={value}"
            for attribute in ("sqlstate", "constraint_name", "table_name", "column_name")
            if (value := getattr(link, attribute, None))
        ]
        links.append(type(link).__qualname__ + (f" ({', '.join(names)})" if names else ""))
        if not stack and link.__traceback__ is not None:
            stack = "".join(traceback.format_tb(link.__traceback__))
    log.error(
        "unexpected database error in request %s at %s: %s (messages left out: they quote row values)\n%s",
        request_id,
        error.path,
        " <- ".join(links),
        stack.rstrip(),
    )


class ErrorPolicy(MaskErrors):
    """Give every shown error a `code`; mask the rest with a reference the logs can find."""

    def __init__(self, get_request_id: Callable[[object], str | None]) -> None:
        super().__init__(should_mask_error=lambda e: top_level_code(e) is None)
        self._get_request_id = get_request_id

    def _process_result(self, result: Any) -> None:
        # strawberry checks the result against a runtime Protocol first, which cost about a tenth of
        # a small query's CPU; a result here is one of graphql-core's or strawberry's, with `errors`.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)

    def _process_errors(self, errors_: list[GraphQLError]) -> list[GraphQLError]:
        request_id = self._get_request_id(self.execution_context.context)
        processed: list[GraphQLError] = []
        for error in errors_:
            code = top_level_code(error)
            if code is None and database_unavailable(error.original_error):
                log.warning("database unavailable in request %s: %r", request_id, error.original_error)
                processed.append(
                    GraphQLError(
                        "The service is unavailable; retry shortly.",
                        nodes=error.nodes,
                        path=error.path,
                        extensions={"code": SERVICE_UNAVAILABLE, "requestId": request_id},
                    )
                )
            elif code is None:
                _log_unexpected(request_id, error)
                processed.append(
                    GraphQLError(
                        "Unexpected error.",
                        nodes=error.nodes,
                        path=error.path,
                        extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
                    )
                )
            else:
                extra: dict[str, object] = {}
                if isinstance(error.original_error, errors.UserError):
                    extra = {"reason": error.original_error.code, "field": error.original_error.field}
                processed.append(
                    GraphQLError(
                        error.message,
                        nodes=error.nodes,
                        source=error.source,
                        positions=error.positions,
                        path=error.path,
                        extensions={**(error.extensions or {}), **extra, "code": code},
                    )
                )
        for error in processed:
            metrics.GRAPHQL_ERRORS.labels(str((error.extensions or {}).get("code", "UNKNOWN"))).inc()
        return processed


def subscription_ended(code: str, message: str, retry_after: float | None = None) -> GraphQLError:
    """The error a subscription ends with (`schema.streams`, `schema.fanout`): its code and, when
    the client should resubscribe later, `retryAfterMs`."""
    extensions: dict[str, Any] = {"code": code}
    if retry_after is not None:
        # When to resubscribe: jittered, so that a whole process's subscribers do not all return at once.
        extensions["retryAfterMs"] = round(retry_after * 1000)
    return GraphQLError(message, extensions=extensions)
