"""Input every operation must pass before a resolver sees it, on every transport: strings that can
be stored and dates that exist. A client that sends anything else gets BAD_USER_INPUT, not a crash
deep in a driver (SPEC §12, "No client mistake is an internal error")."""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Iterator
from datetime import UTC, datetime

from graphql import DocumentNode, GraphQLError, StringValueNode, visit
from graphql.language import Visitor
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.extensions import SchemaExtension
from strawberry.schema.types.base_scalars import DateDefinition, DateTimeDefinition
from strawberry.types.scalar import ScalarDefinition

from schema.documents import derived


def storable(value: str) -> bool:
    """Text that UTF-8 and every database can hold: no lone surrogates (which JSON's `\\ud800`
    escapes can carry) and no NUL (which PostgreSQL refuses in text)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _strings(value: object) -> Iterator[str]:
    """Every string in a JSON value: keys and values, without recursion (its depth is the client's)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            for key, inner in item.items():
                stack.append(key)
                stack.append(inner)
        elif isinstance(item, list | tuple):
            stack.extend(item)


class _Literals(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.clean = True

    def enter_string_value(self, node: StringValueNode, *_: object) -> None:
        if not storable(node.value):
            self.clean = False


class UnstorableText(SchemaExtension):
    """Refuse an operation whose document or variables carry text that cannot be stored."""

    def on_validate(self) -> Generator[None, None, None]:
        context = self.execution_context
        if context.pre_execution_errors is None and not self._clean():
            # Set before validation runs, strawberry skips it and answers with this.
            context.pre_execution_errors = [
                GraphQLError(
                    "Text may not contain NUL characters or unpaired surrogates.",
                    extensions={"code": "BAD_USER_INPUT"},
                )
            ]
        yield

    def _clean(self) -> bool:
        context = self.execution_context
        if not all(storable(s) for s in _strings([context.variables, context.operation_name])):
            return False
        if context.graphql_document is None:
            return True
        return derived(context, "storable literals", _literals_storable)


def _literals_storable(document: DocumentNode) -> bool:
    literals = _Literals()
    visit(document, literals)
    return literals.clean


_parse_datetime = DateTimeDefinition.parse_value


def _instant(value: object) -> object:
    parsed = _parse_datetime(value) if _parse_datetime is not None else value
    if isinstance(parsed, datetime) and parsed.tzinfo is not None:
        try:
            # 9999-12-31T23:59:59-14:00 parses, but is past the last instant Python (and the
            # database) can hold: it fails the first time it is compared or stored.
            parsed.astimezone(UTC)
        except OverflowError:
            raise StrawberryInputCoercionError(
                f'Value cannot represent a DateTime: "{value}". It is outside years 1 to 9999 in UTC.'
            ) from None
    return parsed


# DateTime as strawberry has it, except that an instant outside years 1–9999 in UTC is refused. Both
# date scalars name the specification they follow (`specifiedByURL`), so that code generators and
# clients type them as the ISO 8601 strings they are.
DATETIME: ScalarDefinition = dataclasses.replace(
    DateTimeDefinition,
    parse_value=_instant,
    specified_by_url="https://scalars.graphql.org/andimarek/date-time",
)
DATE: ScalarDefinition = dataclasses.replace(
    DateDefinition, specified_by_url="https://scalars.graphql.org/andimarek/local-date"
)
