"""The Vault: the family keeps evidence, a timeline and the EHCP case per child; advocates read
what a live grant shares, checked at the moment of every read and written to the access log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import TypeVar

from tortoise.transactions import in_transaction

from models.documents import Document
from models.families import Child, EhcpStage
from models.vault import (
    EhcpCase,
    Evidence,
    EvidenceCategory,
    TimelineEntry,
    VaultAccessLog,
    VaultScope,
)
from resolvers import validation
from resolvers.access import vault as access
from resolvers.access.core import own_row
from resolvers.errors import NotFound
from resolvers.pagination import Page, Window, paginate
from resolvers.services import Services
from resolvers.viewer import Viewer

R = TypeVar("R", Evidence, TimelineEntry)

MAX_TITLE = 200
MAX_DESCRIPTION = 20_000
MAX_NOTE = 5000
DECISION_DUE = timedelta(weeks=6)
FINAL_PLAN_DUE = timedelta(weeks=20)


# --- reading, as `access.access` allows -----------------------------------------------------


@asynccontextmanager
async def reading(services: Services, viewer: Viewer | None, family_id: int) -> AsyncIterator[access.Access]:
    """One read of a family's Vault: access is checked, the data read and the read logged in one
    transaction, so a read racing a revocation either finishes before it commits or fails."""
    async with in_transaction():
        acc = await access.access(services, viewer, family_id)
        if acc is None:
            raise NotFound("Vault", "familyId")
        yield acc


async def log_reads(
    services: Services, acc: access.Access, scope: VaultScope, reads: list[tuple[int | None, str]]
) -> None:
    """Write an advocate's reads to the family's access log (the family's own reads are not)."""
    if acc.owner or not reads:
        return
    by_child = acc.grants.get(scope, {})
    any_grant = next(iter(by_child.values()), None)
    now = services.clock.now()
    await VaultAccessLog.bulk_create(
        [
            VaultAccessLog(
                family_id=acc.family_id,
                actor_id=acc.viewer.user_id,
                grant_id=by_child.get(child_id, any_grant) if child_id is not None else any_grant,
                scope=scope,
                child_id=child_id,
                what=what[:200],
                at=now,
            )
            for child_id, what in reads
        ]
    )


def _children_filter(acc: access.Access, scope: VaultScope, child_id: int | None) -> list[int] | None:
    allowed = acc.child_ids(scope)
    if child_id is not None:
        if allowed is not None and child_id not in allowed:
            return []
        return [child_id]
    return None if allowed is None else sorted(allowed)


async def read_children(services: Services, viewer: Viewer | None, family_id: int) -> list[Child]:
    """The children the viewer may see anything of."""
    async with reading(services, viewer, family_id) as acc:
        if acc.owner:
            return await Child.filter(family_id=family_id).order_by("id")
        ids = sorted({c for by_child in acc.grants.values() for c in by_child})
        children = await Child.filter(family_id=family_id, id__in=ids).order_by("id")
        # Each child's read is logged under the first part of the Vault shared about them.
        reads: dict[VaultScope, list[tuple[int | None, str]]] = {}
        for child in children:
            scope = next(s for s in VaultScope if child.id in acc.grants.get(s, {}))
            reads.setdefault(scope, []).append((child.id, f"child {child.display_name}"))
        for scope, items in reads.items():
            await log_reads(services, acc, scope, items)
        return children


async def _read_records(
    services: Services,
    viewer: Viewer | None,
    family_id: int,
    scope: VaultScope,
    model: type[R],
    child_id: int | None,
    window: Window,
) -> Page[R]:
    """One page of a per-child record type, newest first, limited to what the viewer may read."""
    async with reading(services, viewer, family_id) as acc:
        ids = _children_filter(acc, scope, child_id)
        query = model.filter(family_id=family_id)
        if ids is not None:
            query = query.filter(child_id__in=ids)
        page = await paginate(query, kind=model.__name__, window=window)
        label = scope.value.lower()
        await log_reads(services, acc, scope, [(r.child_id, f"{label}: {r.title}") for r in page.items])
        return page


async def read_evidence(
    services: Services,
    viewer: Viewer | None,
    family_id: int,
    child_id: int | None,
    window: Window,
) -> Page[Evidence]:
    """Evidence, newest first: all of it for the family, what a grant shares for an advocate."""
    return await _read_records(services, viewer, family_id, VaultScope.EVIDENCE, Evidence, child_id, window)


async def read_timeline(
    services: Services,
    viewer: Viewer | None,
    family_id: int,
    child_id: int | None,
    window: Window,
) -> Page[TimelineEntry]:
    """Timeline entries, newest first, as `read_evidence`."""
    return await _read_records(
        services, viewer, family_id, VaultScope.TIMELINE, TimelineEntry, child_id, window
    )


async def read_ehcp_cases(
    services: Services, viewer: Viewer | None, family_id: int, child_id: int | None
) -> list[EhcpCase]:
    """EHCP cases per child, as `read_evidence`."""
    async with reading(services, viewer, family_id) as acc:
        ids = _children_filter(acc, VaultScope.EHCP_CASE, child_id)
        query = EhcpCase.filter(family_id=family_id)
        if ids is not None:
            query = query.filter(child_id__in=ids)
        cases = await query.order_by("child_id")
        await log_reads(services, acc, VaultScope.EHCP_CASE, [(c.child_id, "EHCP case") for c in cases])
        return cases


def statutory_dates(case: EhcpCase) -> tuple[date | None, date | None]:
    """When the decision whether to assess (6 weeks) and the final plan (20 weeks) are due."""
    if case.request_date is None:
        return None, None
    return case.request_date + DECISION_DUE, case.request_date + FINAL_PLAN_DUE


async def access_log(viewer: Viewer | None, family_id: int, window: Window) -> Page[VaultAccessLog]:
    """Who read what of the family's Vault, newest first; only the family sees it."""
    access.access_log_reader(viewer, family_id)
    return await paginate(VaultAccessLog.filter(family_id=family_id), kind="VaultAccessLog", window=window)


# --- the family's own changes ---------------------------------------------------------------


async def _own_child(viewer: Viewer | None, child_id: int) -> tuple[Viewer, Child]:
    v = access.writer(viewer)
    child = await own_row(Child, child_id, "Child", "childId", family_id=v.family_id)
    return v, child


async def add_evidence(
    services: Services,
    viewer: Viewer | None,
    *,
    child_id: int,
    title: str,
    category: EvidenceCategory,
    on: date,
    description: str,
) -> Evidence:
    """A piece of evidence about one child."""
    v, child = await _own_child(viewer, child_id)
    now = services.clock.now()
    return await Evidence.create(
        family_id=child.family_id,
        child_id=child.id,
        title=validation.text("title", title, max_length=MAX_TITLE),
        category=category,
        date=validation.past_date("date", on, now.date()),
        description=validation.text(
            "description", description, max_length=MAX_DESCRIPTION, required=False, multiline=True
        ),
        created_at=now,
        updated_at=now,
    )


async def delete_evidence(services: Services, viewer: Viewer | None, evidence_id: int) -> Evidence:
    """Delete evidence and its documents (their rows and data keys with it; their objects after)."""
    # Imported here: resolvers.documents logs its reads through this module.
    from resolvers import documents

    v = access.writer(viewer)
    item = await own_row(Evidence, evidence_id, "Evidence", "evidenceId", family_id=v.family_id)
    async with in_transaction():
        keys = await Document.filter(evidence_id=item.id, object_key__isnull=False).values_list(
            "object_key", flat=True
        )
        await Document.filter(evidence_id=item.id).delete()
        await Evidence.filter(id=item.id).delete()
    await documents.discard_objects(services, [str(k) for k in keys])
    return item


async def add_timeline_entry(
    services: Services, viewer: Viewer | None, *, child_id: int, on: date, title: str, note: str
) -> TimelineEntry:
    """A dated entry in one child's timeline."""
    v, child = await _own_child(viewer, child_id)
    now = services.clock.now()
    return await TimelineEntry.create(
        family_id=child.family_id,
        child_id=child.id,
        date=validation.past_date("date", on, now.date() + timedelta(days=366)),
        title=validation.text("title", title, max_length=MAX_TITLE),
        note=validation.text("note", note, max_length=MAX_NOTE, required=False, multiline=True),
        created_at=now,
    )


async def update_ehcp_case(
    services: Services,
    viewer: Viewer | None,
    *,
    child_id: int,
    stage: EhcpStage | None,
    local_authority: str | None,
    request_date: date | None,
) -> EhcpCase:
    """Set a child's EHCP case details; the statutory dates follow from the request date."""
    v, child = await _own_child(viewer, child_id)
    now = services.clock.now()
    changes: dict[str, object] = {"updated_at": now}
    if stage is not None:
        changes["stage"] = stage
    if local_authority is not None:
        changes["local_authority"] = validation.text(
            "localAuthority", local_authority, max_length=100, required=False
        )
    if request_date is not None:
        changes["request_date"] = validation.past_date("requestDate", request_date, now.date(), max_years=25)
    # The case and the child's stage change together, or not at all.
    async with in_transaction():
        case, _ = await EhcpCase.get_or_create(
            child_id=child.id,
            defaults={
                "family_id": child.family_id,
                "stage": child.ehcp_stage,
                "local_authority": child.local_authority,
                "updated_at": now,
            },
        )
        await EhcpCase.filter(id=case.id).update(**changes)
        if stage is not None:
            await Child.filter(id=child.id).update(ehcp_stage=stage, updated_at=now)
        return await EhcpCase.get(id=case.id)
