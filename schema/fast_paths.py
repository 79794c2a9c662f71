"""Resolvers installed on the built schema in place of strawberry's generic per-field path.

strawberry resolves every field that has a resolver through the same chain: an `Info`, the field
extensions (none here), argument conversion, the resolver's parameter mapping, `get_result`. On
a dashboard page of 50 tickets that chain, run ~350 times, and strawberry's `Node._id` for every
`id` were a quarter of the page's CPU (py-spy, issue 13). What is installed here does the same
work directly, for the fields where that is plainly the same:

- every Node's `id`: the same `base64("<Type>:<row id>")` as `strawberry.relay.to_base64`;
- a resolver method with no field extensions (no permission classes) whose arguments are all plain
  scalars (`Int`, `String`, `Boolean`, `Float`, which graphql-core has already coerced): called as
  strawberry calls it, with the row as `self` and an `Info` when it asks for one.

- every enum's output: the value's name from a dict, where strawberry's `CustomGraphQLEnumType`
  compares the value with each of the enum's values in turn (reading `Enum.value`, a descriptor,
  twice each time): 28% of a live event's CPU for a notification's `kind` (`bench/RESULTS.md`).

Anything else keeps strawberry's path. `tests/test_fast_paths.py` checks that every field resolved
here answers what strawberry's own path answers.
"""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from operator import attrgetter
from typing import Any

import strawberry
from graphql import GraphQLField, GraphQLObjectType
from strawberry import relay
from strawberry.schema.schema_converter import CustomGraphQLEnumType, GraphQLCoreConverter
from strawberry.types.base import StrawberryObjectDefinition, StrawberryOptional
from strawberry.types.field import StrawberryField

from schema.event_plans import READS_ONLY

_PLAIN = (int, str, bool, float)


def _name_enum_values_directly(enum_type: CustomGraphQLEnumType) -> None:
    names: dict[Any, str] = {
        enum_type.wrapped_cls(value.value): name for name, value in enum_type.values.items()
    }
    general = enum_type.coerce_output_value

    def coerce_output_value(output_value: Any) -> Any:
        name = names.get(output_value) if isinstance(output_value, enum_type.wrapped_cls) else None
        return name if name is not None else general(output_value)

    enum_type.coerce_output_value = coerce_output_value  # type: ignore[method-assign]


def _id_resolver(type_name: str, attr: str) -> Callable[[Any, Any], str]:
    prefix = f"{type_name}:"
    read = attrgetter(attr)

    def resolve_id(root: Any, _info: Any) -> str:
        return b64encode(f"{prefix}{read(root)}".encode()).decode()

    # A read of the row alone: live events' plans (`schema.event_plans`) may call it directly.
    READS_ONLY.add(resolve_id)
    return resolve_id


def _is_plain(annotation: Any) -> bool:
    if isinstance(annotation, StrawberryOptional):
        annotation = annotation.of_type
    return annotation in _PLAIN


def _method_resolver(schema: strawberry.Schema, field: StrawberryField) -> Callable[..., Any] | None:
    """A direct call of `field`'s resolver, or None when strawberry's path must stay."""
    resolver = field.base_resolver
    if (
        resolver is None
        or field.extensions
        or field.is_subscription
        or resolver.self_parameter is None
        or resolver.root_parameter is not None
        or resolver.parent_parameter is not None
        or not all(_is_plain(argument.type) for argument in field.arguments)
    ):
        return None
    function = resolver.wrapped_func
    if isinstance(function, staticmethod | classmethod) or not callable(function):
        return None
    info_class = schema.config.info_class
    info_name = resolver.info_parameter.name if resolver.info_parameter is not None else None
    # graphql-core passes arguments by their GraphQL names; the resolver takes its Python names.
    names = {
        schema.config.name_converter.get_graphql_name(argument): argument.python_name
        for argument in field.arguments
    }
    renamed = any(graphql_name != python_name for graphql_name, python_name in names.items())

    def resolve(source: Any, info: Any, **kwargs: Any) -> Any:
        if renamed:
            kwargs = {names[name]: value for name, value in kwargs.items()}
        if info_name is not None:
            kwargs[info_name] = info_class(_raw_info=info, _field=field)
        return function(source, **kwargs)

    return resolve


# The fields given a direct resolver, with strawberry's own: `strawberry_path` puts them back.
_REPLACED: dict[int, list[tuple[GraphQLField, Any, Any]]] = {}


def install(schema: strawberry.Schema) -> dict[str, int]:
    """Install the direct resolvers; returns how many fields took each kind."""
    counts = {"ids": 0, "methods": 0, "enums": 0}
    replaced = _REPLACED.setdefault(id(schema), [])
    for gql_type in schema._schema.type_map.values():
        if isinstance(gql_type, CustomGraphQLEnumType):
            _name_enum_values_directly(gql_type)
            counts["enums"] += 1
    for name, gql_type in schema._schema.type_map.items():
        if not isinstance(gql_type, GraphQLObjectType) or name.startswith("__"):
            continue
        definition = schema.get_type_by_name(name)
        if not isinstance(definition, StrawberryObjectDefinition):
            continue
        origin = definition.origin
        is_node = isinstance(origin, type) and issubclass(origin, relay.Node)
        for field_name, gql_field in gql_type.fields.items():
            if field_name == "id" and is_node:
                if _keeps_strawberry_ids(origin):
                    direct_id = _id_resolver(name, origin.resolve_id_attr())
                    replaced.append((gql_field, gql_field.resolve, direct_id))
                    gql_field.resolve = direct_id
                    counts["ids"] += 1
                continue
            field = _definition(gql_field)
            if field is None or name == "Subscription":
                continue
            direct = _method_resolver(schema, field)
            if direct is not None:
                replaced.append((gql_field, gql_field.resolve, direct))
                gql_field.resolve = direct
                counts["methods"] += 1
    return counts


def replaced_fields(schema: strawberry.Schema) -> set[tuple[str, str]]:
    """(type, field) of every field given a direct resolver."""
    found: set[tuple[str, str]] = set()
    replaced = {id(gql_field) for gql_field, _, _ in _REPLACED.get(id(schema), [])}
    for name, gql_type in schema._schema.type_map.items():
        if isinstance(gql_type, GraphQLObjectType):
            found.update((name, f) for f, gql_field in gql_type.fields.items() if id(gql_field) in replaced)
    return found


@contextmanager
def strawberry_path(schema: strawberry.Schema) -> Iterator[None]:
    """Every field on strawberry's own path while the block runs (the reference the direct
    resolvers are tested against); the direct resolvers again after it."""
    replaced = _REPLACED.get(id(schema), [])
    for gql_field, original, _ in replaced:
        gql_field.resolve = original
    try:
        yield
    finally:
        for gql_field, _, direct in replaced:
            gql_field.resolve = direct


def _definition(gql_field: GraphQLField) -> StrawberryField | None:
    field = (gql_field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    return field if isinstance(field, StrawberryField) else None


def _keeps_strawberry_ids(origin: type[relay.Node]) -> bool:
    """The type resolves its id as strawberry's Node does (it overrides neither rule)."""
    return (
        origin.resolve_id.__func__ is relay.Node.resolve_id.__func__  # type: ignore[attr-defined]
        and origin.resolve_typename.__func__ is relay.Node.resolve_typename.__func__  # type: ignore[attr-defined]
    )
