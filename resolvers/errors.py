"""Expected failures as small exception classes; `schema/errors.py` maps them to GraphQL."""

from __future__ import annotations


class UserError(Exception):
    """A broken rule or bad input: reported in a payload's `userErrors`, nothing changed."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class NotFound(UserError):
    """Absent, or present but not the viewer's to see: the two must be indistinguishable."""

    def __init__(self, what: str, field: str | None = None) -> None:
        super().__init__("NOT_FOUND", f"{what} not found.", field)


class InvalidInput(UserError):
    """One input value is malformed, out of range or too long."""

    def __init__(self, field: str, message: str, code: str = "INVALID") -> None:
        super().__init__(code, message, field)


class Unauthenticated(Exception):
    """No valid credentials: a top-level UNAUTHENTICATED error."""

    code = "UNAUTHENTICATED"

    def __init__(self, message: str = "Sign in to do this.") -> None:
        super().__init__(message)


class Forbidden(Exception):
    """Signed in, but this role or token may not do this at all: a top-level FORBIDDEN error."""

    code = "FORBIDDEN"

    def __init__(self, message: str = "You are not allowed to do this.") -> None:
        super().__init__(message)
