"""Everything decided about an operation before it runs, as one schema extension.

strawberry runs each extension's hooks per request through context managers it builds anew (a
`contextlib` wrapper per hook and extension, with `inspect` checks): with five extensions that
machinery was about a quarter of the CPU of `{ __typename }` (`bench/RESULTS.md`). `OperationPolicy`
runs, in this order and with the same meaning as when they were separate extensions:

1. the token limit (`MAX_TOKENS`, as strawberry's `MaxTokensLimiter` set it: a parse option);
2. `QueryLimits` (schema/limits.py): price, limit and count the operation;
3. `UnstorableText` (schema/hygiene.py): refuse text no database can store;
4. `DocumentCache` (schema/documents.py): reuse the parse and validation of a text seen before,
   never a refusal made above;

and, inside the limits' operation hook as it was when it came after them, `ErrorPolicy`
(schema/errors.py): every error shown with a code, the unexpected ones masked and logged.

Each part is still its own class with its own hooks; this only steps them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Iterator
from typing import Any, cast

from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from schema.documents import DocumentCache
from schema.errors import ErrorPolicy
from schema.fanout import OPERATION_POLICY
from schema.hygiene import UnstorableText
from schema.limits import MAX_TOKENS, QueryLimits


def _request_id(context: Any) -> str | None:
    return getattr(context, "request_id", None)


def _finish(hook: Generator[None, None, None]) -> None:
    for _ in hook:
        raise RuntimeError("an extension hook yielded twice")


async def _finish_async(hook: AsyncGenerator[None, None]) -> None:
    async for _ in hook:
        raise RuntimeError("an extension hook yielded twice")


class OperationPolicy(SchemaExtension):
    def __init__(self) -> None:
        self.limits = QueryLimits()
        self.hygiene = UnstorableText()
        self.cache = DocumentCache()
        self.errors = ErrorPolicy(_request_id)

    @property
    def execution_context(self) -> ExecutionContext:
        return self._execution_context

    @execution_context.setter
    def execution_context(self, value: ExecutionContext) -> None:
        # strawberry sets it on the extensions it runs; the parts read it too.
        self._execution_context = value
        self.limits.execution_context = value
        self.hygiene.execution_context = value
        self.cache.execution_context = value
        self.errors.execution_context = value

    async def on_operation(self) -> AsyncGenerator[None, None]:
        # For `schema.fanout`, which shapes a subscription's later results with this instance.
        OPERATION_POLICY.set(self)
        self.execution_context.parse_options["max_tokens"] = MAX_TOKENS
        # Here rather than in a parsing hook (one hook fewer for strawberry to run per request).
        self.cache.before_parse()
        limits = self.limits.on_operation()
        await anext(limits)
        errors = cast(Generator[None, None, None], self.errors.on_operation())
        try:
            next(errors)
            yield
        except BaseException:
            errors.close()
            await limits.aclose()
            raise
        _finish(errors)
        await _finish_async(limits)

    async def on_validate(self) -> AsyncGenerator[None, None]:
        # Validation runs only on a document that parsed.
        self.cache.after_parse()
        limits = self.limits.on_validate()
        await anext(limits)
        hygiene = self.hygiene.on_validate()
        cache = self.cache.on_validate()
        try:
            next(hygiene)
            next(cache)
            yield
        except BaseException:
            cache.close()
            hygiene.close()
            await limits.aclose()
            raise
        _finish(cache)
        _finish(hygiene)
        await _finish_async(limits)

    def get_results(self) -> dict[str, Any]:
        return self.limits.get_results()

    def on_stream_result(self, result: Any) -> Iterator[None]:
        yield from self.errors.on_stream_result(result)
