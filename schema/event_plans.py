"""A live event's selection answered by a plan made once per document, where graphql-core's
executor would walk the selection anew for every event and every subscriber.

Per delivery, graphql-core builds an `Info` for every field, looks up each field's resolver,
checks each value's type and completes it, through a dozen calls a field: 44% of the CPU of
delivering one event to each of 1,000 different families (py-spy, `bench/live.py`, distinct
viewers). Most live selections read nothing but plain attributes of the event's objects: a
notification's `kind` and `title`, an event's `cursor`. For such a selection the work per event is
a few attribute reads and the leaf types' own output coercion, and that is what a plan does:

- it is made from graphql-core's own field collection (`collect_fields`, `collect_subfields`), so
  fragments, aliases and repeated fields answer in the same keys and order;
- a field is planned only when its resolver reads without side effects and without `info`: the
  subscription's root field (strawberry resolves an event to itself), a field without a resolver
  (strawberry's default, an attribute read) and a Node's `id` (`schema.fast_paths`); no arguments,
  no directive anywhere in the document, no interface or union to resolve;
- its leaves are completed by the types' own `coerce_output_value`, its objects checked with their
  own `is_type_of`.

Anything a plan cannot answer exactly as graphql-core would (a null where the type forbids one, a
value of the wrong type, a leaf that does not coerce, a resolver that raises) makes it give up on
that event, and graphql-core executes the event as before: its errors, their paths and messages
are graphql-core's own. Giving up costs only the attribute reads already done, which change nothing.
`tests/test_event_plans.py` compares plans with graphql-core's execution field by field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from weakref import WeakSet

from graphql import (
    DirectiveNode,
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    Undefined,
    Visitor,
    visit,
)
from graphql.execution.collect_fields import (
    FieldDetailsList,
    FragmentDetails,
    GroupedFieldSet,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues

from schema.documents import PerOperation

# Resolvers that only read their source, without `info` or arguments (`schema.fast_paths` adds its
# Node ids here).
READS_ONLY: WeakSet[Callable[..., Any]] = WeakSet()

Complete = Callable[[Any], Any]
# What a planned resolver is given for the `info` it does not read.
_NO_INFO: Any = None
Plan = Callable[[Any], dict[str, Any]]


class GiveUp(Exception):
    """This event is not one a plan answers as graphql-core would: execute it as usual."""


class _Unplannable(Exception):
    """The document has something a plan does not do."""


def _reads_only(resolve: Any) -> bool:
    # strawberry marks the resolver of a field without one (`from_resolver`, `_is_default`).
    return resolve is not None and (getattr(resolve, "_is_default", False) is True or resolve in READS_ONLY)


def _has_directives(operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDetails]) -> bool:
    found = False

    class Find(Visitor):
        def enter_directive(self, node: DirectiveNode, *_: Any) -> Any:
            nonlocal found
            found = True
            return Visitor.BREAK

    visit(operation, Find())
    for details in fragments.values():
        if not found:
            visit(details.definition, Find())
    return found


class _Planner:
    def __init__(
        self,
        schema: GraphQLSchema,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDetails],
        variable_values: VariableValues,
    ) -> None:
        self.schema = schema
        self.operation = operation
        self.fragments = fragments
        self.variable_values = variable_values

    def root(self) -> Plan:
        root_type = self.schema.subscription_type
        if root_type is None:
            raise _Unplannable
        collected = collect_fields(
            self.schema, self.fragments, self.variable_values, root_type, self.operation
        )
        if collected.new_defer_usages or collected.forbidden_directive_instances:
            raise _Unplannable
        if len(collected.grouped_field_set) != 1:
            raise _Unplannable
        ((key, details),) = collected.grouped_field_set.items()
        field = self.schema.get_field(root_type, details[0].node.name.value)
        if field is None or field.resolve is None:
            raise _Unplannable
        # The root field resolves an event to itself: its arguments (`after`) were for subscribing.
        marker = object()
        if field.resolve(marker, None) is not marker:
            raise _Unplannable
        complete = self.completer(field.type, details)
        return lambda event: {key: complete(event)}

    def completer(self, gql_type: GraphQLOutputType, details: FieldDetailsList) -> Complete:
        if isinstance(gql_type, GraphQLNonNull):
            inner = self.completer(gql_type.of_type, details)

            def complete_non_null(value: Any) -> Any:
                completed = inner(value)
                if completed is None:
                    raise GiveUp
                return completed

            return complete_non_null
        if isinstance(gql_type, GraphQLList):
            item = self.completer(gql_type.of_type, details)

            def complete_list(value: Any) -> Any:
                if value is None:
                    return None
                if not isinstance(value, list | tuple):
                    raise GiveUp
                return [item(each) for each in value]

            return complete_list
        if isinstance(gql_type, GraphQLScalarType | GraphQLEnumType):
            coerce = gql_type.coerce_output_value

            def complete_leaf(value: Any) -> Any:
                if value is None:
                    return None
                if isinstance(value, Exception):
                    raise GiveUp  # graphql-core reports a returned exception as the field's error
                coerced = coerce(value)
                if coerced is None or coerced is Undefined:
                    raise GiveUp
                return coerced

            return complete_leaf
        if isinstance(gql_type, GraphQLObjectType):
            return self.object_completer(gql_type, details)
        raise _Unplannable  # an interface or a union: its runtime type is resolved per value

    def object_completer(self, object_type: GraphQLObjectType, details: FieldDetailsList) -> Complete:
        collected = collect_subfields(
            self.schema, self.fragments, self.variable_values, self.operation, object_type, details
        )
        if collected.new_defer_usages or collected.forbidden_directive_instances:
            raise _Unplannable
        fields = self.fields(object_type, collected.grouped_field_set)
        is_type_of = object_type.is_type_of

        def complete_object(value: Any) -> Any:
            if value is None:
                return None
            if isinstance(value, Exception):
                raise GiveUp
            if is_type_of is not None and is_type_of(value, _NO_INFO) is not True:
                raise GiveUp
            return {key: complete(read(value)) for key, read, complete in fields}

        return complete_object

    def fields(
        self, object_type: GraphQLObjectType, grouped: GroupedFieldSet
    ) -> list[tuple[str, Callable[[Any], Any], Complete]]:
        planned: list[tuple[str, Callable[[Any], Any], Complete]] = []
        for key, details in grouped.items():
            if any(
                detail.fragment_variable_values is not None or detail.node.arguments for detail in details
            ):
                raise _Unplannable
            name = details[0].node.name.value
            if name == "__typename":
                planned.append((key, _constant(object_type.name), _same))
                continue
            field = self.schema.get_field(object_type, name)
            if field is None or field.args or not _reads_only(field.resolve):
                raise _Unplannable
            planned.append((key, _reader(field.resolve), self.completer(field.type, details)))
        return planned


def _constant(value: str) -> Callable[[Any], str]:
    return lambda _source: value


def _same(value: Any) -> Any:
    return value


def _reader(resolve: Any) -> Callable[[Any], Any]:
    return lambda source: resolve(source, _NO_INFO)


_plans: PerOperation[Plan | None] = PerOperation()


def plan_for(executor: Any) -> Plan | None:
    """The plan of a subscription's events, made once per document; None when it has none."""
    return _plans.get(executor.operation, _plan, executor)


def _plan(executor: Any) -> Plan | None:
    operation: OperationDefinitionNode = executor.operation
    fragments: dict[str, FragmentDetails] = executor.fragments
    if operation.operation is not OperationType.SUBSCRIPTION or _has_directives(operation, fragments):
        return None
    try:
        return _Planner(executor.schema, operation, fragments, executor.variable_values).root()
    except _Unplannable:
        return None
