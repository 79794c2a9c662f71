"""Batch functions behind the per-request dataloaders: one query for many keys, in key order."""

from __future__ import annotations

from collections.abc import Sequence

from models.accounts import User
from models.advocates import Advocate
from models.families import Child, Family
from models.support import SupportRelationship, SupportRequest, Thread


async def users_by_id(ids: Sequence[int]) -> list[User | None]:
    rows = {u.id: u for u in await User.filter(id__in=list(ids))}
    return [rows.get(i) for i in ids]


async def families_by_id(ids: Sequence[int]) -> list[Family | None]:
    rows = {f.id: f for f in await Family.filter(id__in=list(ids))}
    return [rows.get(i) for i in ids]


async def family_names_by_id(ids: Sequence[int]) -> list[str]:
    """Each family's name as shown to advocates (its account's display name), in one join."""
    rows = await Family.filter(id__in=list(ids)).values_list("id", "user__display_name")
    names = {int(family_id): str(name) for family_id, name in rows}
    return [names.get(i, "") for i in ids]


async def families_by_user_id(user_ids: Sequence[int]) -> list[Family | None]:
    rows = {f.user_id: f for f in await Family.filter(user_id__in=list(user_ids))}
    return [rows.get(i) for i in user_ids]


async def children_by_family_id(family_ids: Sequence[int]) -> list[list[Child]]:
    grouped: dict[int, list[Child]] = {i: [] for i in family_ids}
    for child in await Child.filter(family_id__in=list(family_ids)).order_by("id"):
        grouped[child.family_id].append(child)
    return [grouped[i] for i in family_ids]


async def children_by_id(ids: Sequence[int]) -> list[Child | None]:
    rows = {c.id: c for c in await Child.filter(id__in=list(ids))}
    return [rows.get(i) for i in ids]


async def advocates_by_id(ids: Sequence[int]) -> list[Advocate | None]:
    rows = {a.id: a for a in await Advocate.filter(id__in=list(ids))}
    return [rows.get(i) for i in ids]


async def requests_by_id(ids: Sequence[int]) -> list[SupportRequest | None]:
    rows = {r.id: r for r in await SupportRequest.filter(id__in=list(ids))}
    return [rows.get(i) for i in ids]


async def relationships_by_id(ids: Sequence[int]) -> list[SupportRelationship | None]:
    rows = {r.id: r for r in await SupportRelationship.filter(id__in=list(ids))}
    return [rows.get(i) for i in ids]


async def relationships_by_request_id(request_ids: Sequence[int]) -> list[SupportRelationship | None]:
    rows = {r.request_id: r for r in await SupportRelationship.filter(request_id__in=list(request_ids))}
    return [rows.get(i) for i in request_ids]


async def threads_by_id(ids: Sequence[int]) -> list[Thread | None]:
    rows = {t.id: t for t in await Thread.filter(id__in=list(ids))}
    return [rows.get(i) for i in ids]
