"""The family's rights over its data (SPEC §16): exports of everything, erasure of the account, a
child or a timeline entry, and the erasure records admins see."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry import relay

from models import rights as m
from models.families import Child as ChildRow
from models.vault import TimelineEntry as TimelineEntryRow
from resolvers import erasure, exports
from resolvers.access import accounts as account_access
from resolvers.access import core
from resolvers.pagination import Page, Window, paginate, window
from schema.accounts import User
from schema.arguments import INPUT, After, Before, First, Last
from schema.connections import TotalCount, decode_id, nodes, to_connection
from schema.context import Info
from schema.errors import UserError, attempt
from schema.families import Child
from schema.permissions import IsAdmin, IsSession
from schema.vault import TimelineEntry

strawberry.enum(m.ExportStatus, description="Where a data export is.")
ExportStatus = m.ExportStatus


@strawberry.type(
    description="A copy of everything the account holds, as one ZIP: a JSON file per area and a README."
)
class DataExport(relay.Node):
    id: relay.NodeID[int]
    status: ExportStatus = strawberry.field(description="PENDING, READY, EXPIRED or FAILED.")
    requested_at: datetime = strawberry.field(description="When it was asked for.")
    ready_at: datetime | None = strawberry.field(description="When it was ready.")
    expires_at: datetime | None = strawberry.field(
        description="When its file goes: seven days after it was ready."
    )
    byte_size: int | None = strawberry.field(description="The ZIP's size, once ready.")
    _row: strawberry.Private[m.DataExport]

    @classmethod
    def from_model(cls, row: m.DataExport) -> DataExport:
        return cls(
            id=row.id,
            status=row.status,
            requested_at=row.requested_at,
            ready_at=row.ready_at,
            expires_at=row.expires_at,
            byte_size=row.byte_size,
            _row=row,
        )

    @strawberry.field(
        description=(
            "A link to download the ZIP, working for a few minutes (ask again for a fresh one); null "
            "unless it is READY and the viewer is the account holder, signed in."
        )
    )
    def download_url(self, info: Info) -> str | None:
        return exports.download_path(info.context.services, info.context.viewer, self._row)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[DataExport | None]:
        return await nodes(info.context.viewer, node_ids, exports.exports, cls.from_model)


@strawberry.type(description="A page of data exports, newest first.")
class DataExportConnection(relay.Connection[DataExport], TotalCount):
    pass


@strawberry.type(description="How many rows of one kind an erasure removed or blanked.")
class ErasureCount:
    kind: str = strawberry.field(description="What was removed or blanked (e.g. `evidence`, `messages`).")
    count: int = strawberry.field(description="How many.")


def _is_admin(viewer: Any, row: m.ErasureRecord) -> bool:
    return account_access.is_admin(viewer)


@strawberry.type(
    description="What an account's erasure did: when, how far, how many rows of each kind. Nothing personal."
)
class ErasureRecord(relay.Node):
    id: relay.NodeID[int]
    role: str = strawberry.field(description="FAMILY, for now: the kind of account erased.")
    requested_at: datetime = strawberry.field(description="When the erasure began to be recorded.")
    started_at: datetime | None = strawberry.field(description="When its first step ran.")
    completed_at: datetime | None = strawberry.field(
        description="When its last step was done; null while under way."
    )
    steps_done: list[str] = strawberry.field(description="The steps done, in order.")
    _row: strawberry.Private[m.ErasureRecord]

    @classmethod
    def from_model(cls, row: m.ErasureRecord) -> ErasureRecord:
        return cls(
            id=row.id,
            role=row.role,
            requested_at=row.requested_at,
            started_at=row.started_at,
            completed_at=row.completed_at,
            steps_done=list(row.steps_done),
            _row=row,
        )

    @strawberry.field(description="Rows removed or blanked, by kind.")
    def counts(self) -> list[ErasureCount]:
        return [ErasureCount(kind=k, count=v) for k, v in sorted(self._row.counts.items())]

    @strawberry.field(description="The erased account, which now holds nothing personal.")
    def user_id(self) -> relay.GlobalID:
        return relay.GlobalID("User", str(self._row.user_id))

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[ErasureRecord | None]:
        async def fetch(viewer: Any, ids: Any) -> list[m.ErasureRecord | None]:
            return await core.fetch(viewer, m.ErasureRecord, ids, _is_admin)

        return await nodes(info.context.viewer, node_ids, fetch, cls.from_model)


@strawberry.type(description="A page of erasure records, newest first.")
class ErasureRecordConnection(relay.Connection[ErasureRecord], TotalCount):
    pass


async def erasure_records(window: Window) -> Page[m.ErasureRecord]:
    return await paginate(m.ErasureRecord.all(), kind="ErasureRecord", window=window)


@strawberry.type
class RightsQuery:
    @strawberry.field(
        description="Every account erasure and what it did, newest first (admins).",
        permission_classes=[IsAdmin],
    )
    async def erasure_records(
        self, info: Info, first: First = 20, after: After = None, last: Last = None, before: Before = None
    ) -> ErasureRecordConnection:
        page = await erasure_records(window(first, after, last, before))
        return to_connection(ErasureRecordConnection, page, ErasureRecord.from_model)  # type: ignore[return-value]


@strawberry.type(description="The result of requestDataExport.")
class DataExportPayload:
    data_export: DataExport | None = strawberry.field(description="The export, PENDING until it is built.")
    user_errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.input(description="Confirm with the password.")
class DeleteAccountInput:
    password: str = strawberry.field(description="The account's password.")


@strawberry.type(description="The result of deleteAccount or cancelAccountDeletion.")
class AccountDeletionPayload:
    viewer: User | None = strawberry.field(
        description="The account; `erasureDueAt` says when it will be erased."
    )
    user_errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.input(description="The child whose record goes.")
class DeleteChildInput:
    child_id: relay.GlobalID = strawberry.field(description="One of the family's children.")


@strawberry.type(description="The result of deleteChild.")
class DeleteChildPayload:
    child: Child | None = strawberry.field(description="The child's record as it was before it went.")
    user_errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.input(description="The timeline entry to delete.")
class DeleteTimelineEntryInput:
    timeline_entry_id: relay.GlobalID = strawberry.field(description="One of the family's timeline entries.")


@strawberry.type(description="The result of deleteTimelineEntry.")
class DeleteTimelineEntryPayload:
    timeline_entry: TimelineEntry | None = strawberry.field(description="The entry as it was before it went.")
    user_errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.type
class RightsMutation:
    @strawberry.mutation(
        description=(
            "Ask for a copy of everything the account holds, built in the background: a DATA_EXPORT_READY "
            "notification says when it can be downloaded (for 7 days)."
        ),
        permission_classes=[IsSession],
    )
    async def request_data_export(self, info: Info) -> DataExportPayload:
        row, errs = await attempt(exports.request(info.context.services, info.context.viewer))
        return DataExportPayload(data_export=DataExport.from_model(row) if row else None, user_errors=errs)

    @strawberry.mutation(
        description=(
            "Erase the family's account after the grace period (ERASURE_GRACE_DAYS, 14 by default): the "
            "Vault, documents, messages and relationships go for good. Cancel until then."
        ),
        permission_classes=[IsSession],
    )
    async def delete_account(
        self, info: Info, input: Annotated[DeleteAccountInput, INPUT]
    ) -> AccountDeletionPayload:
        row, errs = await attempt(
            erasure.schedule(info.context.services, info.context.viewer, input.password)
        )
        return AccountDeletionPayload(viewer=User.from_model(row) if row else None, user_errors=errs)

    @strawberry.mutation(
        description="Keep the account after all: cancel its erasure.", permission_classes=[IsSession]
    )
    async def cancel_account_deletion(self, info: Info) -> AccountDeletionPayload:
        row, errs = await attempt(erasure.cancel(info.context.services, info.context.viewer))
        return AccountDeletionPayload(viewer=User.from_model(row) if row else None, user_errors=errs)

    @strawberry.mutation(
        description=(
            "Delete a child's record and everything of it in the Vault (evidence, documents, timeline, "
            "EHCP case). Grants that covered only this child end; others stop covering it."
        )
    )
    async def delete_child(self, info: Info, input: Annotated[DeleteChildInput, INPUT]) -> DeleteChildPayload:
        async def run() -> ChildRow:
            return await erasure.delete_child(
                info.context.services, info.context.viewer, decode_id(input.child_id, "Child", "childId")
            )

        row, errs = await attempt(run())
        return DeleteChildPayload(child=Child.from_model(row) if row else None, user_errors=errs)

    @strawberry.mutation(description="Delete one of the family's timeline entries.")
    async def delete_timeline_entry(
        self, info: Info, input: Annotated[DeleteTimelineEntryInput, INPUT]
    ) -> DeleteTimelineEntryPayload:
        async def run() -> TimelineEntryRow:
            return await erasure.delete_timeline_entry(
                info.context.services,
                info.context.viewer,
                decode_id(input.timeline_entry_id, "TimelineEntry", "timelineEntryId"),
            )

        row, errs = await attempt(run())
        return DeleteTimelineEntryPayload(
            timeline_entry=TimelineEntry.from_model(row) if row else None, user_errors=errs
        )
