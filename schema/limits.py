"""Bounded cost for every operation, on every transport: one linear pass over the document.

Before an operation runs, `analyse` walks it once, expanding each fragment once per place it can be
priced differently (memoised by fragment name and inherited page size): its depth, alias count,
expanded size and cost are computed once and reused at every spread. A document whose fragments
each spread the previous one twice is therefore priced in time linear in its length, and refused.

Cost is GitHub's: each connection or list field multiplies its subtree by its `first` (or `last`;
for a plain list the product bounds, that bound; else the page cap), and the cost is the number of
objects the query could return. Introspection (`__schema`, `__type`) is counted in the size only.

`QueryLimits` refuses, before execution: an expanded size over `MAX_EXPANDED_FIELDS`
(`QUERY_TOO_COMPLEX`), depth over `MAX_DEPTH` or aliases over `MAX_ALIASES` (`BAD_USER_INPUT`), a
cost over the `MAX_QUERY_COST` setting (`QUERY_TOO_COSTLY`), and an operation past the caller's rate
limit (`RATE_LIMITED`; 429 with `Retry-After` on HTTP). Every answer carries `extensions.cost`.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    Visitor,
    get_named_type,
    visit,
)
from starlette.requests import Request
from starlette.responses import Response
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from models.tickets import SlaClockKind
from resolvers.rate_limits import LimitSettings, RateLimiter, Verdict, burst_capacity, credential_key
from resolvers.support_requests import MAX_SUGGESTIONS
from resolvers.tickets import MAX_TEMPLATES
from schema.documents import derived

MAX_DEPTH = 12
MAX_ALIASES = 30
MAX_TOKENS = 2000
# Fields in the document once every fragment is expanded. Documents under the token limit without
# fragments stay far below it; only fragment reuse can pass it.
MAX_EXPANDED_FIELDS = 5000
# Nested selection sets and fragment spreads followed at once; past it the document is refused
# (a guard for Python's stack: a real operation nests a dozen levels).
MAX_NESTING = 200
# Plain lists the product bounds below the page cap, priced at their bound (type, field): a
# ticket has one clock of each kind, a declined request at most MAX_SUGGESTIONS alternatives.
LIST_BOUNDS: dict[tuple[str, str], int] = {
    ("Ticket", "slaClocks"): len(SlaClockKind),
    ("SupportRequest", "suggestedAlternatives"): MAX_SUGGESTIONS,
    ("Query", "checklistTemplates"): MAX_TEMPLATES,
}
# Numbers are saturated here so a fragment bomb's counts stay small integers (and exact in JSON).
SATURATED = 2**53 - 1
# Objects per rate-limit point, as GitHub: an operation costs ceil(cost / 100) points, at least 1.
OBJECTS_PER_POINT = 100
# And one per 100 tokens of the document: a 2,000-token document costs 20 points to parse, whatever
# it asks for, so a client cannot make the server parse large documents faster than its budget.
TOKENS_PER_POINT = 100

QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
RATE_LIMITED = "RATE_LIMITED"


@dataclass(frozen=True)
class Shape:
    depth: int
    aliases: int
    fields: int
    cost: int


_EMPTY = Shape(0, 0, 0, 0)


class _TooDeep(Exception):
    pass


def _sat(value: int) -> int:
    return value if value < SATURATED else SATURATED


def _unwrap_is_list(type_: GraphQLOutputType | None) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


class _Analyser:
    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any],
        page_cap: int,
    ) -> None:
        self.schema = schema
        self.page_cap = page_cap
        self.variables = variables
        self.defaults: dict[str, ValueNode] = {
            d.variable.name.value: d.default_value
            for d in operation.variable_definitions or ()
            if d.default_value is not None
        }
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.memo: dict[tuple[str, int | None], Shape] = {}
        self.in_progress: set[tuple[str, int | None]] = set()
        self.nesting = 0

    def selection_set(
        self, parent: GraphQLNamedType | None, node: SelectionSetNode, page: int | None
    ) -> Shape:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise _TooDeep
        depth = aliases = fields = cost = 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                shape = self.field(parent, selection, page)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                shape = self.selection_set(inner, selection.selection_set, page)
            elif isinstance(selection, FragmentSpreadNode):
                shape = self.spread(selection.name.value, page)
            else:  # pragma: no cover - graphql-core has no other selection
                continue
            depth = max(depth, shape.depth)
            aliases = _sat(aliases + shape.aliases)
            fields = _sat(fields + shape.fields)
            cost = _sat(cost + shape.cost)
        self.nesting -= 1
        return Shape(depth, aliases, fields, cost)

    def spread(self, name: str, page: int | None) -> Shape:
        key = (name, page)
        known = self.memo.get(key)
        if known is not None:
            return known
        fragment = self.fragments.get(name)
        if fragment is None or key in self.in_progress:
            # Unknown fragments and cycles are reported by validation, which runs next.
            return _EMPTY
        self.in_progress.add(key)
        self.nesting += 1
        shape = self.selection_set(
            self.schema.get_type(fragment.type_condition.name.value), fragment.selection_set, page
        )
        self.nesting -= 1
        self.in_progress.discard(key)
        self.memo[key] = shape
        return shape

    def field(self, parent: GraphQLNamedType | None, node: FieldNode, page: int | None) -> Shape:
        alias = 1 if node.alias is not None else 0
        name = node.name.value
        if name.startswith("__"):
            inner = self.selection_set(None, node.selection_set, None) if node.selection_set else _EMPTY
            return Shape(0, _sat(alias + inner.aliases), _sat(1 + inner.fields), 0)
        if node.selection_set is None:
            return Shape(1, alias, 1, 0)
        definition = (
            parent.fields.get(name) if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType) else None
        )
        type_ = definition.type if definition is not None else None
        named = get_named_type(type_) if type_ is not None else None
        first = self.page_argument(node, definition)
        if _unwrap_is_list(type_):
            bound = LIST_BOUNDS.get((parent.name, name)) if parent is not None else None
            count = first if first is not None else (page if page is not None else bound or self.page_cap)
            inner = self.selection_set(named, node.selection_set, None)
            cost = _sat(count * (1 + inner.cost))
        else:
            # A connection: its `edges` and `nodes` lists hold `first` items.
            inner = self.selection_set(named, node.selection_set, first)
            cost = _sat(1 + inner.cost)
        return Shape(_sat(1 + inner.depth), _sat(alias + inner.aliases), _sat(1 + inner.fields), cost)

    def page_argument(self, node: FieldNode, definition: GraphQLField | None) -> int | None:
        """The field's `first` or `last` (the larger), within 0..page_cap: as given, else the
        argument's default; None when the field takes neither."""
        found: int | None = None
        given = {
            a.name.value: a.value
            for a in node.arguments or ()
            # A variable left out (with no default of its own) leaves the argument to its default.
            if not isinstance(a.value, VariableNode)
            or a.value.name.value in self.variables
            or a.value.name.value in self.defaults
        }
        for name in ("first", "last"):
            value: int | None
            if name in given:
                value = self.int_value(given[name])
            elif definition is not None and name in definition.args:
                default = definition.args[name].default_value
                if not isinstance(default, int) or isinstance(default, bool):
                    continue
                value = default
            else:
                continue
            value = self.page_cap if value is None else min(max(value, 0), self.page_cap)
            found = value if found is None else max(found, value)
        return found

    def int_value(self, node: ValueNode | None) -> int | None:
        if isinstance(node, IntValueNode):
            try:
                return int(node.value)
            except ValueError:
                return None
        if isinstance(node, VariableNode):
            value = self.variables.get(node.name.value)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if value is None and node.name.value not in self.variables:
                return self.int_value(self.defaults.get(node.name.value))
        return None


def select_operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name is not None and o.name.value == operation_name), None)


def analyse(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    page_cap: int = 100,
) -> Shape | None:
    """The operation's depth, aliases, expanded size and cost; None when no operation is selected.

    A document nested past `MAX_NESTING` comes back with every count saturated.
    """
    operation = select_operation(document, operation_name)
    if operation is None:
        return None
    root = schema.get_root_type(operation.operation)
    analyser = _Analyser(schema, document, operation, variables or {}, page_cap)
    try:
        return analyser.selection_set(root, operation.selection_set, None)
    except _TooDeep:
        return Shape(SATURATED, SATURATED, SATURATED, SATURATED)


def rate_points(cost: int, tokens: int = 0) -> int:
    """Rate-limit points an operation draws: one per 100 objects it could return or per 100 tokens
    of its document (parsing is the work a refused document still costs), at least one."""
    return max(1, math.ceil(cost / OBJECTS_PER_POINT), math.ceil(tokens / TOKENS_PER_POINT))


def token_count(document: DocumentNode) -> int:
    """The document's lexical tokens (what MAX_TOKENS bounds), from the parser's token chain."""
    token = document.loc.start_token if document.loc is not None else None
    count = 0
    while token is not None:
        count += 1
        token = token.next
    return max(0, count - 2)  # not the start- and end-of-file markers


# What a variable that is not an integer counts as for a price: the page cap (see `int_value`).
_NOT_AN_INT = "not an int"


def _price_key(used: frozenset[str], variables: Mapping[str, Any]) -> tuple[tuple[str, object], ...]:
    """What of the variables a price depends on, as a key: for each variable the document names
    (`used`) that was sent, its value if an integer, else only that it was sent. Never the values
    themselves (a client's megabyte string would be kept with the cached document), nor names the
    document does not use."""
    return tuple(
        sorted(
            (name, value if isinstance(value, int) and not isinstance(value, bool) else _NOT_AN_INT)
            for name, value in variables.items()
            if name in used
        )
    )


def _variable_names(document: DocumentNode) -> frozenset[str]:
    names: set[str] = set()

    class Collect(Visitor):
        def enter_variable(self, node: VariableNode, *_: Any) -> None:
            names.add(node.name.value)

    visit(document, Collect())
    return frozenset(names)


def _ambiguous(context: ExecutionContext) -> bool:
    """A document of several operations, sent without naming one. strawberry would run the first
    (its `operation_name` falls back to it); the GraphQL spec makes it an error."""
    if getattr(context, "_provided_operation_name", None) is not None or context.graphql_document is None:
        return False
    return derived(context, "operations", _operation_count) > 1


def _operation_count(document: DocumentNode) -> int:
    return sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)


def _refusal(message: str, code: str, **extra: object) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extra})


def rate_key(context: Any) -> str:
    """Whose budget an operation draws on: its credential, or the client address when anonymous."""
    viewer = getattr(context, "viewer", None)
    if viewer is not None:
        return credential_key(viewer)
    request = getattr(context, "request", None)
    client = getattr(request, "client", None)
    return "ip:" + (client.host if client is not None else "unknown")


def rate_limited_error(verdict: Verdict) -> GraphQLError:
    return _refusal(
        f"Rate limit reached: this needs {verdict.cost} points and {verdict.remaining} are left; "
        f"try again at {_iso(verdict.retry_at)}.",
        RATE_LIMITED,
        limit=verdict.limit,
        cost=verdict.cost,
        remaining=verdict.remaining,
        retryAt=_iso(verdict.retry_at),
        resetAt=_iso(verdict.full_at),
    )


def refused_early(context: Any) -> GraphQLError | None:
    """RATE_LIMITED when the socket's credential is already past its budget in this window: checked
    before its operation is parsed, so a client past its budget costs next to nothing."""
    limiter = getattr(getattr(context, "services", None), "rate_limiter", None)
    if not isinstance(limiter, RateLimiter) or getattr(context, "viewer", None) is None:
        return None
    verdict = limiter.refused(rate_key(context))
    return rate_limited_error(verdict) if verdict is not None else None


class QueryLimits(SchemaExtension):
    """Price, limit and count each operation before it runs (see the module's docstring)."""

    def __init__(self) -> None:
        self.shape: Shape | None = None
        self.verdict: Verdict | None = None
        self.charged = False

    def _settings(self) -> tuple[LimitSettings, RateLimiter | None]:
        services = getattr(self.execution_context.context, "services", None)
        settings = getattr(services, "limits", None) or LimitSettings()
        return settings, getattr(services, "rate_limiter", None)

    async def on_operation(self) -> AsyncGenerator[None, None]:
        yield
        if not self.charged:
            # The document did not parse: the attempt still draws its points, by its length (about
            # four characters a token), up to what parsing stops at.
            length = len(self.execution_context.query or "")
            await self._charge(rate_points(0, min(MAX_TOKENS, length // 4)))

    async def on_validate(self) -> AsyncGenerator[None, None]:
        context = self.execution_context
        settings, _ = self._settings()
        services = getattr(context.context, "services", None)
        policy = getattr(services, "policy", None)
        page_cap = int(getattr(policy, "max_page_size", 100))
        assert context.graphql_document is not None

        def price(document: DocumentNode) -> Shape | None:
            return analyse(
                context.schema._schema, document, context.operation_name, context.variables, page_cap
            )

        refusal: GraphQLError | None = None
        shape: Shape | None = None
        if _ambiguous(context):
            refusal = _refusal(
                "Must provide operation name if query contains multiple operations.", "BAD_REQUEST"
            )
        else:
            # The same text with the same operation, page cap and integers has the same shape.
            key = (
                _price_key(derived(context, "variable names", _variable_names), context.variables)
                if context.variables
                else ()
            )
            shape = derived(context, ("shape", context.operation_name, page_cap, key), price)
        self.shape = shape
        if shape is not None:
            if shape.fields > MAX_EXPANDED_FIELDS:
                refusal = _refusal(
                    f"The operation is too complex: it expands to more than {MAX_EXPANDED_FIELDS} fields.",
                    QUERY_TOO_COMPLEX,
                )
            elif shape.depth > MAX_DEPTH:
                refusal = _refusal(
                    f"The operation exceeds the maximum depth of {MAX_DEPTH}.", "BAD_USER_INPUT"
                )
            elif shape.aliases > MAX_ALIASES:
                refusal = _refusal(
                    f"{shape.aliases} aliases found. Allowed: {MAX_ALIASES} aliases.", "BAD_USER_INPUT"
                )
            elif shape.cost > settings.max_query_cost:
                refusal = _refusal(
                    f"The operation could return {shape.cost} objects; at most "
                    f"{settings.max_query_cost} may be asked for at once.",
                    QUERY_TOO_COSTLY,
                    cost=shape.cost,
                    limit=settings.max_query_cost,
                )
        tokens = derived(context, "tokens", token_count)
        points = rate_points(shape.cost if shape is not None and refusal is None else 0, tokens)
        verdict = await self._charge(points)
        if verdict is not None and not verdict.allowed:
            # Past its budget a client is told so, whatever else is wrong with the operation.
            refusal = rate_limited_error(verdict)
            response = getattr(context.context, "response", None)
            if isinstance(response, Response):
                response.status_code = 429
                response.headers["Retry-After"] = str(verdict.retry_after(_now(context.context)))
        if refusal is not None:
            context.pre_execution_errors = [refusal]
        yield

    async def _charge(self, points: int) -> Verdict | None:
        self.charged = True
        settings, limiter = self._settings()
        ctx = self.execution_context.context
        if limiter is None:
            return None
        per_minute = (
            settings.rate_limit_per_minute
            if getattr(ctx, "viewer", None) is not None
            else settings.anonymous_rate_limit_per_minute
        )
        capacity = burst_capacity(per_minute, rate_points(settings.max_query_cost))
        verdict = await limiter.charge(rate_key(ctx), points, per_minute, capacity)
        self.verdict = verdict
        if hasattr(ctx, "rate_limit"):
            ctx.rate_limit = verdict
        request = getattr(ctx, "request", None)
        response = getattr(ctx, "response", None)
        if isinstance(request, Request) and isinstance(response, Response):
            response.headers["RateLimit-Limit"] = str(verdict.limit)
            response.headers["RateLimit-Remaining"] = str(verdict.remaining)
            response.headers["RateLimit-Reset"] = str(verdict.reset_after(_now(ctx)))
        return verdict

    def get_results(self) -> dict[str, Any]:
        settings, _ = self._settings()
        requested = self.shape.cost if self.shape is not None else 0
        return {"cost": {"requested": requested, "limit": settings.max_query_cost}}


def _now(context: Any) -> float:
    # Real time, as the limiter counts (not the service clock, which tests move).
    return time.time()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


@strawberry.type(
    description="The caller's rate limit in cost points (as GitHub's `rateLimit`): a bucket of `limit` "
    "points that refills at the server's points-per-minute rate."
)
class RateLimit:
    limit: int = strawberry.field(description="Points the bucket holds: the most one may spend at once.")
    cost: int = strawberry.field(
        description="Points this operation drew: one per 100 objects or per 100 tokens, at least 1."
    )
    remaining: int = strawberry.field(description="Points left after this operation.")
    reset_at: datetime = strawberry.field(description="When all `limit` points are back.")


@strawberry.type
class RateLimitQuery:
    @strawberry.field(
        description="The caller's rate limit after this operation; null when the server does not limit."
    )
    def rate_limit(self, info: strawberry.Info) -> RateLimit | None:
        verdict = getattr(info.context, "rate_limit", None)
        if not isinstance(verdict, Verdict):
            return None
        return RateLimit(
            limit=verdict.limit,
            cost=verdict.cost,
            remaining=verdict.remaining,
            reset_at=datetime.fromtimestamp(verdict.full_at, UTC),
        )
