"""Advocate profiles, verification and the directory."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay

from models import advocates as m
from resolvers import advocates
from resolvers.access import accounts as access
from resolvers.pagination import window
from schema.arguments import INPUT, After, Before, First, Last
from schema.connections import TotalCount, decode_id, nodes, to_connection
from schema.context import Info
from schema.enums import AdvocateType, Availability, Specialism, Verification
from schema.errors import UserError, attempt
from schema.permissions import IsAdmin, IsAdvocate, IsSession

if TYPE_CHECKING:
    from schema.vault import Rating, ReviewConnection


@strawberry.type(description="An advocate's public profile.")
class Advocate(relay.Node):
    id: relay.NodeID[int]
    display_name: str = strawberry.field(description="The advocate's name.")
    bio: str = strawberry.field(description="What they do and how they work.")
    advocate_type: AdvocateType = strawberry.field(description="Independent, charity, SENDIASS…")
    specialisms: list[Specialism] = strawberry.field(description="What they are experienced in.")
    areas: list[str] = strawberry.field(
        description='Local authorities served; "Remote" means families anywhere, remotely.'
    )
    verification: Verification = strawberry.field(description="Whether an admin has verified them.")
    availability: Availability = strawberry.field(description="Whether they take new requests.")
    capacity: int = strawberry.field(description="The most active cases they take on.")
    active_case_count: int = strawberry.field(description="Their active cases now.")
    capacity_expected_on: date | None = strawberry.field(
        description="When they expect to have capacity again, if they said."
    )
    _row: strawberry.Private[m.Advocate]

    @classmethod
    def from_model(cls, a: m.Advocate) -> Advocate:
        return cls(
            id=a.id,
            display_name=a.display_name,
            bio=a.bio,
            advocate_type=a.advocate_type,
            specialisms=[m.Specialism(s) for s in m.unpack(a.specialisms)],
            areas=m.unpack(a.areas),
            verification=a.verification,
            availability=a.availability,
            capacity=a.capacity,
            active_case_count=a.active_case_count,
            capacity_expected_on=a.capacity_expected_on,
            _row=a,
        )

    @strawberry.field(description="The admin's note on the last decision; only to the advocate.")
    def verification_note(self, info: Info) -> str | None:
        return self._row.verification_note if access.is_own_profile(info.context.viewer, self.id) else None

    @strawberry.field(description="Hours to answer a new request (the response SLA); only to the advocate.")
    def response_sla_hours(self, info: Info) -> int | None:
        return self._row.response_sla_hours if access.is_own_profile(info.context.viewer, self.id) else None

    @strawberry.field(
        description="Hours to write after accepting (the first-message SLA); only to the advocate."
    )
    def first_message_sla_hours(self, info: Info) -> int | None:
        own = access.is_own_profile(info.context.viewer, self.id)
        return self._row.first_message_sla_hours if own else None

    @strawberry.field(description="When the profile last changed.")
    def updated_at(self) -> datetime:
        return self._row.updated_at

    @strawberry.field(description="The average of the reviews families left, and how many.")
    async def rating(self, info: Info) -> Annotated[Rating, strawberry.lazy("schema.vault")]:
        from schema.vault import Rating as RatingType

        average, count = await info.context.loaders.rating.load(self.id)
        return RatingType(average=average, count=count)

    @strawberry.field(description="Reviews families left, newest first (hidden ones left out).")
    async def reviews(
        self, info: Info, first: First = 20, after: After = None, last: Last = None, before: Before = None
    ) -> Annotated[ReviewConnection, strawberry.lazy("schema.vault")]:
        from resolvers import relationships
        from schema.vault import Review as ReviewType
        from schema.vault import ReviewConnection as Conn

        loaders = info.context.loaders
        key = relationships.reviews_key(self.id, window(first, after, last, before))
        page = await loaders.reviews.load(key)

        async def total() -> int:
            return (await loaders.rating.load(self.id))[1]  # the count of shown reviews

        return to_connection(Conn, page, ReviewType.from_model, total)  # type: ignore[return-value]

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[Advocate | None]:
        return await nodes(info.context.viewer, node_ids, access.advocates, cls.from_model)


@strawberry.type(description="A page of advocates.")
class AdvocateConnection(relay.Connection[Advocate], TotalCount):
    pass


@strawberry.input(description="Narrow the directory; every field is optional.")
class AdvocateFilter:
    advocate_type: AdvocateType | None = strawberry.field(default=None, description="Only this type.")
    specialism: Specialism | None = strawberry.field(default=None, description="Only with this.")
    area: str | None = strawberry.field(
        default=None, description="Serving this local authority (or remotely)."
    )
    accepting_only: bool = strawberry.field(
        default=False, description="Only those taking requests and under capacity."
    )
    text: str | None = strawberry.field(default=None, description="Words in the name or bio.")


@strawberry.input(description="Changes to the signed-in advocate's profile; leave out what stays.")
class UpdateAdvocateProfileInput:
    display_name: str | None = strawberry.field(default=None, description="1–100 characters.")
    bio: str | None = strawberry.field(default=None, description="Up to 5,000 characters.")
    advocate_type: AdvocateType | None = strawberry.field(default=None, description="The type.")
    specialisms: list[Specialism] | None = strawberry.field(default=None, description="Replaces all.")
    areas: list[str] | None = strawberry.field(
        default=None, description='Replaces all; up to 50 local authorities, or "Remote".'
    )
    capacity: int | None = strawberry.field(default=None, description="0–200 active cases.")
    availability: Availability | None = strawberry.field(default=None, description="Taking requests?")
    capacity_expected_on: date | None = strawberry.field(
        default=strawberry.UNSET, description="When capacity returns; null clears it."
    )


@strawberry.type(description="The result of an advocate profile change.")
class AdvocatePayload:
    advocate: Advocate | None = strawberry.field(description="The profile as it is now.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.input(description="An admin's decision on an advocate's verification.")
class VerifyAdvocateInput:
    advocate_id: relay.GlobalID = strawberry.field(description="The advocate waiting for a decision.")
    decision: Verification = strawberry.field(description="VERIFIED or REJECTED.")
    note: str = strawberry.field(default="", description="Shown to the advocate; up to 1,000 characters.")


def _payload(row: m.Advocate | None, errs: list[UserError]) -> AdvocatePayload:
    return AdvocatePayload(advocate=Advocate.from_model(row) if row else None, user_errors=errs)


@strawberry.type
class AdvocateQuery:
    @strawberry.field(description="A verified advocate (or your own profile) by ID.")
    async def advocate(
        self, info: Info, id: Annotated[relay.GlobalID, strawberry.argument(description="The advocate's ID.")]
    ) -> Advocate | None:
        if id.type_name != "Advocate":
            return None
        found = await Advocate.resolve_nodes(info=info, node_ids=[id.node_id])
        return found[0]

    @strawberry.field(description="The directory: verified advocates, filtered, in a stable order.")
    async def advocates(
        self,
        info: Info,
        filter: Annotated[
            AdvocateFilter | None,
            strawberry.argument(description="Narrow the directory; every field is optional."),
        ] = None,
        first: First = 20,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> AdvocateConnection:
        f = filter or AdvocateFilter()
        page = await advocates.directory(
            info.context.viewer,
            advocates.DirectoryFilter(
                advocate_type=f.advocate_type,
                specialism=f.specialism,
                area=f.area,
                accepting_only=f.accepting_only,
                text=f.text,
            ),
            window(first, after, last, before),
        )
        return to_connection(AdvocateConnection, page, Advocate.from_model)  # type: ignore[return-value]

    @strawberry.field(
        description="Advocates waiting for verification, oldest first (admins).",
        permission_classes=[IsAdmin],
    )
    async def verification_queue(
        self, info: Info, first: First = 20, after: After = None, last: Last = None, before: Before = None
    ) -> AdvocateConnection:
        page = await advocates.verification_queue(info.context.viewer, window(first, after, last, before))
        return to_connection(AdvocateConnection, page, Advocate.from_model)  # type: ignore[return-value]


@strawberry.type
class AdvocateMutation:
    @strawberry.mutation(
        description="Change the signed-in advocate's profile.", permission_classes=[IsAdvocate, IsSession]
    )
    async def update_advocate_profile(
        self, info: Info, input: Annotated[UpdateAdvocateProfileInput, INPUT]
    ) -> AdvocatePayload:
        row, errs = await attempt(
            advocates.update_profile(
                info.context.services,
                info.context.viewer,
                display_name=input.display_name,
                bio=input.bio,
                advocate_type=input.advocate_type,
                specialisms=input.specialisms,
                areas=input.areas,
                capacity=input.capacity,
                availability=input.availability,
                capacity_expected_on=input.capacity_expected_on or None,
                clear_capacity_expected_on=input.capacity_expected_on is None,
            )
        )
        return _payload(row, errs)

    @strawberry.mutation(
        description="Ask an admin to verify the signed-in advocate's profile.",
        permission_classes=[IsAdvocate, IsSession],
    )
    async def request_verification(self, info: Info) -> AdvocatePayload:
        row, errs = await attempt(advocates.request_verification(info.context.services, info.context.viewer))
        return _payload(row, errs)

    @strawberry.mutation(
        description="Verify or reject an advocate who asked (admins).", permission_classes=[IsAdmin]
    )
    async def verify_advocate(
        self, info: Info, input: Annotated[VerifyAdvocateInput, INPUT]
    ) -> AdvocatePayload:
        async def run() -> m.Advocate:
            return await advocates.verify(
                info.context.services,
                info.context.viewer,
                decode_id(input.advocate_id, "Advocate", "advocateId"),
                input.decision,
                input.note,
            )

        row, errs = await attempt(run())
        return _payload(row, errs)
