"""The family and its children."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay

from models import families as m
from resolvers import families
from resolvers.access import vault as access
from resolvers.pagination import window
from schema.arguments import INPUT, After, Before, First, Last
from schema.connections import decode_id, nodes, to_connection
from schema.context import Info
from schema.enums import EhcpStage
from schema.errors import UserError, attempt
from schema.permissions import IsFamily

if TYPE_CHECKING:
    from schema.vault import VaultAccessLogConnection, VaultGrant, VaultGrantConnection


@strawberry.type(description="A child whose evidence the family keeps in its Vault.")
class Child(relay.Node):
    id: relay.NodeID[int]
    display_name: str = strawberry.field(description="The name the family uses for the child.")
    date_of_birth: date = strawberry.field(description="The child's date of birth.")
    ehcp_stage: EhcpStage = strawberry.field(description="Where the child's EHCP case has reached.")
    local_authority: str = strawberry.field(description="The local authority responsible.")
    created_at: datetime = strawberry.field(description="When the child was added.")
    updated_at: datetime = strawberry.field(description="When the child's details last changed.")

    @classmethod
    def from_model(cls, child: m.Child) -> Child:
        return cls(
            id=child.id,
            display_name=child.display_name,
            date_of_birth=child.date_of_birth,
            ehcp_stage=child.ehcp_stage,
            local_authority=child.local_authority,
            created_at=child.created_at,
            updated_at=child.updated_at,
        )

    @strawberry.field(description="The child's age in whole years today.")
    def age_years(self, info: Info) -> int:
        today = info.context.services.clock.now().date()
        born = self.date_of_birth
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[Child | None]:
        return await nodes(info.context.viewer, node_ids, access.children, cls.from_model)


@strawberry.type(description="A family: the owner of a Vault.")
class Family(relay.Node):
    id: relay.NodeID[int]
    user_id: strawberry.Private[int]
    created_at: datetime = strawberry.field(description="When the family joined.")

    @classmethod
    def from_model(cls, family: m.Family) -> Family:
        return cls(id=family.id, user_id=family.user_id, created_at=family.created_at)

    @strawberry.field(description="The family's name as shown to advocates.")
    async def display_name(self, info: Info) -> str:
        return await info.context.loaders.family_name.load(self.id)

    @strawberry.field(
        description="The family's children. Only the family itself sees them here (API tokens: VAULT_READ)."
    )
    async def children(self, info: Info) -> list[Child]:
        if not access.owns(info.context.viewer, self.id):
            return []
        return [Child.from_model(c) for c in await info.context.loaders.children.load(self.id)]

    @strawberry.field(description="Who read what of the Vault, newest first; only the family sees it.")
    async def vault_access_log(
        self, info: Info, first: First = 20, after: After = None, last: Last = None, before: Before = None
    ) -> Annotated[VaultAccessLogConnection, strawberry.lazy("schema.vault")]:
        from schema.vault import access_log_connection

        return await access_log_connection(info, self.id, window(first, after, last, before))

    @strawberry.field(
        description="Every grant the family has made, newest first, with its status; only to the family."
    )
    async def grants(
        self, info: Info, first: First = 20, after: After = None, last: Last = None, before: Before = None
    ) -> Annotated[VaultGrantConnection, strawberry.lazy("schema.vault")]:
        from resolvers import grants
        from schema.vault import VaultGrant as GrantType
        from schema.vault import VaultGrantConnection as Conn

        page = await grants.family_page(info.context.viewer, self.id, window(first, after, last, before))
        return to_connection(Conn, page, GrantType.from_model)  # type: ignore[return-value]

    @strawberry.field(
        description="Every grant the family has made, with its status; only to the family.",
        deprecation_reason="Use `grants`, a connection: this list grows with every grant ever made.",
    )
    async def vault_grants(self, info: Info) -> list[Annotated[VaultGrant, strawberry.lazy("schema.vault")]]:
        from resolvers import grants
        from schema.vault import VaultGrant as GrantType

        return [GrantType.from_model(g) for g in await grants.for_family(info.context.viewer, self.id)]

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[Family | None]:
        return await nodes(info.context.viewer, node_ids, access.families, cls.from_model)


@strawberry.input(description="A child to add to the family's Vault.")
class AddChildInput:
    display_name: str = strawberry.field(description="1–100 characters.")
    date_of_birth: date = strawberry.field(description="Not in the future; at most 25 years ago.")
    ehcp_stage: EhcpStage = strawberry.field(
        default=m.EhcpStage.NOT_REQUESTED, description="Where the EHCP case has reached."
    )
    local_authority: str = strawberry.field(default="", description="Up to 100 characters.")


@strawberry.type(description="The result of addChild.")
class AddChildPayload:
    child: Child | None = strawberry.field(description="The child added.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.input(description="Changes to a child's details; leave out what stays the same.")
class UpdateChildInput:
    child_id: relay.GlobalID = strawberry.field(description="The child to change.")
    display_name: str | None = strawberry.field(default=None, description="1–100 characters.")
    date_of_birth: date | None = strawberry.field(default=None, description="Not in the future.")
    ehcp_stage: EhcpStage | None = strawberry.field(default=None, description="The EHCP stage.")
    local_authority: str | None = strawberry.field(default=None, description="Up to 100 characters.")


@strawberry.type(description="The result of updateChild.")
class UpdateChildPayload:
    child: Child | None = strawberry.field(description="The child as it is now.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.type
class FamilyMutation:
    @strawberry.mutation(
        description="Add a child to the signed-in family's Vault.",
        permission_classes=[IsFamily],
    )
    async def add_child(self, info: Info, input: Annotated[AddChildInput, INPUT]) -> AddChildPayload:
        child, errs = await attempt(
            families.add_child(
                info.context.services,
                info.context.viewer,
                display_name=input.display_name,
                date_of_birth=input.date_of_birth,
                ehcp_stage=input.ehcp_stage,
                local_authority=input.local_authority,
            )
        )
        return AddChildPayload(child=Child.from_model(child) if child else None, user_errors=errs)

    @strawberry.mutation(description="Change a child's details.", permission_classes=[IsFamily])
    async def update_child(self, info: Info, input: Annotated[UpdateChildInput, INPUT]) -> UpdateChildPayload:
        async def run() -> m.Child:
            return await families.update_child(
                info.context.services,
                info.context.viewer,
                decode_id(input.child_id, "Child", "childId"),
                display_name=input.display_name,
                date_of_birth=input.date_of_birth,
                ehcp_stage=input.ehcp_stage,
                local_authority=input.local_authority,
            )

        child, errs = await attempt(run())
        return UpdateChildPayload(child=Child.from_model(child) if child else None, user_errors=errs)
