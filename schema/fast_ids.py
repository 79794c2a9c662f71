"""Every Node's `id` resolved by one small function instead of strawberry's generic path.

Strawberry resolves `id` through `Node._id` with a full `Info`, the extension chain, a typename
lookup, a `GlobalID` dataclass and its encoding: about a tenth of a dashboard page's CPU went
there (py-spy, issue 13). The global ID is the same string (`base64("<Type>:<row id>")`, what
`strawberry.relay.to_base64` makes), written here straight from the row id.
"""

from __future__ import annotations

from base64 import b64encode
from operator import attrgetter
from typing import Any

import strawberry
from graphql import GraphQLObjectType
from strawberry import relay
from strawberry.types.base import StrawberryObjectDefinition


def _resolver(type_name: str, attr: str) -> Any:
    prefix = f"{type_name}:"
    read = attrgetter(attr)

    def resolve_id(root: Any, _info: Any) -> str:
        return b64encode(f"{prefix}{read(root)}".encode()).decode()

    return resolve_id


def install(schema: strawberry.Schema) -> int:
    """Give every Node type that keeps strawberry's own id rules the fast resolver; returns how
    many types took it (a type that overrides `resolve_id` or `resolve_typename` keeps its own)."""
    installed = 0
    for name, gql_type in schema._schema.type_map.items():
        if not isinstance(gql_type, GraphQLObjectType) or "id" not in gql_type.fields:
            continue
        definition = schema.get_type_by_name(name)
        if not isinstance(definition, StrawberryObjectDefinition):
            continue
        origin = definition.origin
        if not (isinstance(origin, type) and issubclass(origin, relay.Node)):
            continue
        if (
            origin.resolve_id.__func__ is not relay.Node.resolve_id.__func__  # type: ignore[attr-defined]
            or origin.resolve_typename.__func__ is not relay.Node.resolve_typename.__func__  # type: ignore[attr-defined]
        ):
            continue
        gql_type.fields["id"].resolve = _resolver(name, origin.resolve_id_attr())
        installed += 1
    return installed
