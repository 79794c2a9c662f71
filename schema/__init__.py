"""The GraphQL face of the service: root types from per-domain mixins, limits and error policy."""

from __future__ import annotations

from datetime import date, datetime

import strawberry
from graphql import GraphQLError
from strawberry import relay
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from schema import enum_values, fast_paths
from schema.accounts import AccountMutation, AccountQuery
from schema.advocates import AdvocateMutation, AdvocateQuery
from schema.families import FamilyMutation
from schema.hygiene import DATE, DATETIME
from schema.limits import RateLimitQuery
from schema.notifications import NotificationMutation, NotificationQuery, NotificationSubscription
from schema.policy import OperationPolicy
from schema.rights import RightsMutation, RightsQuery
from schema.security import SecurityMutation
from schema.streams import SharedEventExecutor
from schema.support import SupportMutation, SupportQuery, SupportSubscription
from schema.tickets import TicketMutation, TicketQuery, TicketSubscription
from schema.vault import VaultMutation, VaultQuery, VaultSubscription
from schema.vault_documents import DocumentMutation


@strawberry.type(description="Everything that can be read.")
class Query(
    AccountQuery,
    RightsQuery,
    AdvocateQuery,
    SupportQuery,
    VaultQuery,
    NotificationQuery,
    TicketQuery,
    RateLimitQuery,
):
    node: relay.Node | None = relay.node(
        description="Any object by its global ID; null when it does not exist or is not yours."
    )


@strawberry.type(description="Everything that can be changed.")
class Mutation(
    AccountMutation,
    SecurityMutation,
    RightsMutation,
    FamilyMutation,
    AdvocateMutation,
    SupportMutation,
    VaultMutation,
    DocumentMutation,
    NotificationMutation,
    TicketMutation,
):
    pass


@strawberry.type(description="Live events over websockets (graphql-transport-ws or graphql-ws).")
class Subscription(SupportSubscription, VaultSubscription, NotificationSubscription, TicketSubscription):
    pass


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Expected errors are answered, not logged; ErrorPolicy logs the unexpected ones once,
        # with the request id the client was shown.
        return None


# Every enum value's description (the domain's enums carry none of their own).
enum_values.describe()

schema = Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    config=StrawberryConfig(auto_camel_case=True, scalar_map={datetime: DATETIME, date: DATE}),
    # A live event's selection executed once for every subscriber that asked it alike.
    execution_context_class=SharedEventExecutor,
    extensions=[
        # Limits, text hygiene and the document cache, stepped as one extension (schema/policy.py):
        # depth, aliases, expanded size, cost and rate limits in one linear pass (schema/limits.py),
        # instead of strawberry's QueryDepthLimiter and MaxAliasesLimiter, which re-walk every
        # fragment spread (exponential on a fragment bomb).
        # and every error shown with a code, or masked with a reference the logs can find.
        OperationPolicy,
    ],
)

# Every Node's `id` and plain resolver methods without strawberry's per-field chain.
fast_paths.install(schema)


def print_schema() -> str:
    from strawberry.printer import print_schema as _print

    return _print(schema) + "\n"
