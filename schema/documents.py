"""Parsed and validated documents, kept for the next request that sends the same text.

An SPA sends the same few documents all day; parsing and validating each again was most of the CPU of
a small query (`{ __typename }`: 55% of it in graphql-core's validation, 6% in parsing; see
`bench/RESULTS.md`). `DocumentCache` keeps, by the document's text, the parsed document and the
errors of graphql-core's validation, which depend on nothing else (not on variables, viewer or
limits): both are a function of the text and the schema.

What is per request stays per request: `QueryLimits` prices and charges every operation,
`UnstorableText` checks variables, and a refusal either of them makes is never cached. The cache
is bounded in entries and in the total length of the texts it holds, and documents longer than
`MAX_CACHED_CHARS` are never kept, so unique texts from a client cannot grow memory; they only
evict each other.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Generator, Hashable
from typing import Any, Generic, TypeVar

from graphql import DocumentNode, GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

T = TypeVar("T")

MAX_ENTRIES = 256
MAX_CACHED_CHARS = 8 * 1024
MAX_TOTAL_CHARS = 512 * 1024
MAX_FACTS = 16


class _Entry:
    __slots__ = ("document", "errors", "facts")

    def __init__(self, document: DocumentNode) -> None:
        self.document = document
        # graphql-core's validation errors (an empty list: valid), once validation has run.
        self.errors: list[GraphQLError] | None = None
        # What other extensions derive from the document alone (see `derived`), at most MAX_FACTS.
        self.facts: dict[Hashable, Any] = {}


class DocumentLRU:
    """Documents by text, least recently used first out."""

    def __init__(
        self,
        max_entries: int = MAX_ENTRIES,
        max_chars: int = MAX_CACHED_CHARS,
        max_total_chars: int = MAX_TOTAL_CHARS,
    ) -> None:
        self.max_entries = max_entries
        self.max_chars = max_chars
        self.max_total_chars = max_total_chars
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._chars = 0

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, text: str) -> _Entry | None:
        """The entry, without counting it as a use."""
        return self._entries.get(text)

    def get(self, text: str) -> _Entry | None:
        entry = self._entries.get(text)
        if entry is not None:
            self._entries.move_to_end(text)
        return entry

    def put(self, text: str, document: DocumentNode) -> _Entry | None:
        if len(text) > self.max_chars:
            return None
        entry = self.get(text)
        if entry is not None:
            return entry
        entry = self._entries[text] = _Entry(document)
        self._chars += len(text)
        while len(self._entries) > self.max_entries or self._chars > self.max_total_chars:
            evicted, _ = self._entries.popitem(last=False)
            self._chars -= len(evicted)
        return entry

    def clear(self) -> None:
        self._entries.clear()
        self._chars = 0


documents = DocumentLRU()


def derived(context: ExecutionContext, key: Hashable, compute: Callable[[DocumentNode], T]) -> T:
    """`compute(document)` for a fact that depends only on the document's text and on `key` (its
    token count, whether its literals can be stored, its cost for given page sizes): computed once
    per cached document, and on every request for a document that is not cached."""
    document = context.graphql_document
    assert document is not None
    entry = documents.peek(context.query) if context.query else None
    if entry is None or entry.document is not document:
        return compute(document)
    if key in entry.facts:
        value: T = entry.facts[key]
        return value
    value = compute(document)
    if len(entry.facts) < MAX_FACTS:
        entry.facts[key] = value
    return value


class PerOperation(Generic[T]):
    """What is worked out from an operation alone, for code that holds its executor, not its text
    (`derived` is for code that has the text). Kept by the operation's identity, which the cache
    makes one per text; the operation is kept with it, so that an id reused by a later operation is
    not taken for it. Past `limit` operations it starts again: unique texts only evict each other."""

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self._known: dict[int, tuple[OperationDefinitionNode, T]] = {}

    def get(self, operation: OperationDefinitionNode, compute: Callable[..., T], *args: Any) -> T:
        """`compute(*args)`, once per operation. An operation whose text is too long to be cached is
        not kept: it is parsed anew for each request anyway, and keeping it would keep its whole
        text (a client's megabyte of comment) for as long as this remembers it."""
        known = self._known.get(id(operation))
        if known is not None and known[0] is operation:
            return known[1]
        value = compute(*args)
        location = operation.loc
        if location is None or len(location.source.body) > MAX_CACHED_CHARS:
            return value
        if len(self._known) >= self.limit:
            self._known.clear()
        self._known[id(operation)] = (operation, value)
        return value


class DocumentCache(SchemaExtension):
    """Reuse the parse and the validation of a text seen before (see the module's docstring).

    Listed last among the schema's extensions: its validation hook then runs after those that may
    refuse an operation before validation, and it neither reuses nor keeps their refusals."""

    def __init__(self) -> None:
        self._entry: _Entry | None = None

    def before_parse(self) -> None:
        """A text seen before: its document, so that strawberry does not parse it again."""
        context = self.execution_context
        text = context.query
        entry = documents.get(text) if text else None
        if entry is not None and context.graphql_document is None:
            context.graphql_document = entry.document
        self._entry = entry

    def after_parse(self) -> None:
        """A new text that parsed: its document, kept for the next request that sends it."""
        context = self.execution_context
        if self._entry is None and context.query and context.graphql_document is not None:
            self._entry = documents.put(context.query, context.graphql_document)

    def on_parse(self) -> Generator[None, None, None]:
        self.before_parse()
        yield
        self.after_parse()

    def on_validate(self) -> Generator[None, None, None]:
        context = self.execution_context
        entry = self._entry
        if entry is None or context.pre_execution_errors is not None:
            # Not cached, or refused by an extension before validation: nothing to reuse or keep.
            yield
            return
        if entry.errors is not None:
            context.pre_execution_errors = list(entry.errors)
            yield
            return
        yield
        if context.pre_execution_errors is not None:
            entry.errors = list(context.pre_execution_errors)
