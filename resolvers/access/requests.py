"""Who may see and act on a support request: the family that sent it and the advocate it was sent
to; nobody else, admins included. Their parts of the child's record belong to `access.vault`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tortoise.expressions import Q

from models.accounts import ApiScope, Role
from models.support import OPEN_STATUSES, SupportRequest
from resolvers.access import core
from resolvers.viewer import Viewer


def may_read(viewer: Viewer | None, request: SupportRequest) -> bool:
    """Its family and its advocate (API tokens need REQUESTS_READ)."""
    return core.is_party(viewer, ApiScope.REQUESTS_READ, request.family_id, request.advocate_id)


def is_open(request: SupportRequest, now: datetime) -> bool:
    """Still waiting for an answer: an open status, and not past `expires_at` (the sweep marks it
    EXPIRED within a sweep interval; until then nothing may act on it as if it were open)."""
    return request.status in OPEN_STATUSES and request.expires_at > now


def still_open(now: datetime) -> Q:
    """`is_open` as a filter, for the conditional update that moves a request on."""
    return Q(status__in=OPEN_STATUSES, expires_at__gt=now)


def may_answer(viewer: Viewer | None, request: SupportRequest, now: datetime) -> bool:
    """Accept, decline or ask the family about a request: its advocate (API tokens need
    REQUESTS_WRITE), while the request is open. Accepting also needs room in the advocate's
    capacity (`support_requests.has_room`)."""
    return core.is_advocate(viewer, ApiScope.REQUESTS_WRITE, request.advocate_id) and is_open(request, now)


def may_withdraw(viewer: Viewer | None, request: SupportRequest, now: datetime) -> bool:
    """Withdraw a request: the family that sent it (API tokens need REQUESTS_WRITE), while open."""
    return core.is_family(viewer, ApiScope.REQUESTS_WRITE, request.family_id) and is_open(request, now)


async def requests(viewer: Viewer | None, ids: Sequence[object]) -> list[SupportRequest | None]:
    return await core.fetch(viewer, SupportRequest, ids, may_read)


def listed(viewer: Viewer | None) -> Q:
    """The requests (or relationships) a viewer's list holds: what a family sent, or what an
    advocate received; FORBIDDEN for anyone else or without REQUESTS_READ. `may_read`, as a filter."""
    v = core.require(viewer, roles=[Role.FAMILY, Role.ADVOCATE], scope=ApiScope.REQUESTS_READ)
    return Q(family_id=v.family_id) if v.family_id is not None else Q(advocate_id=v.advocate_id)


def family_writer(viewer: Viewer | None) -> Viewer:
    """A family sending or withdrawing a request, or reviewing a relationship."""
    return core.acting_family(viewer, ApiScope.REQUESTS_WRITE)


def advocate_writer(viewer: Viewer | None) -> Viewer:
    """An advocate answering a request sent to it."""
    return core.acting_advocate(viewer, ApiScope.REQUESTS_WRITE)


def party_writer(viewer: Viewer | None) -> Viewer:
    """Either side acting on a request, relationship or thread (row checks follow)."""
    return core.require(viewer, roles=[Role.FAMILY, Role.ADVOCATE], scope=ApiScope.REQUESTS_WRITE)
