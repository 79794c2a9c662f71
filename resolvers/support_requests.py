"""Support requests: a family asks one advocate for help; the advocate accepts, asks, or declines.

Every state change is one conditional write on the current status, so two people acting at once
cannot both win, and capacity is taken by a conditional increment on the advocate's row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from models.advocates import Advocate, Availability, Verification
from models.families import Child
from models.notifications import NotificationKind
from models.support import (
    OPEN_STATUSES,
    DeclineReason,
    RelationshipStatus,
    RequestStatus,
    SuggestionKind,
    SupportRelationship,
    SupportRequest,
    SupportType,
    Thread,
)
from resolvers import advocates, notifications, recovery, threads, tickets, validation
from resolvers.access import requests as access
from resolvers.access.core import own_row
from resolvers.errors import InvalidInput, NotFound, UserError
from resolvers.events import Outbox, unit_of_work, user_channel
from resolvers.pagination import Page, Window, paginate
from resolvers.services import Services
from resolvers.viewer import Viewer

MAX_MESSAGE = 5000
MAX_SUGGESTIONS = 5
MAX_SUGGESTION_NAME = 200
MAX_SUGGESTION_NOTE = 500

CREATED = "support_request.created"
UPDATED = "support_request.updated"


def open_key(family_id: int, child_id: int, advocate_id: int) -> str:
    return f"{family_id}:{child_id}:{advocate_id}"


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


async def _parties(request: SupportRequest) -> tuple[int, int]:
    """The user ids of the family and of the advocate."""
    await request.fetch_related("family", "advocate")
    return request.family.user_id, request.advocate.user_id


async def announce_update(outbox: Outbox, request: SupportRequest, kind: str = UPDATED) -> None:
    """Tell both sides (or, for a new request, the advocate) that a request changed."""
    family_user, advocate_user = await _parties(request)
    payload = {"requestId": request.id}
    # The advocate's ticket follows every change to the request, its relationship and its thread.
    await tickets.request_changed(outbox, request.id)
    if kind == CREATED:
        await outbox.emit(user_channel(advocate_user), CREATED, payload)
        return
    await outbox.emit(user_channel(family_user), UPDATED, payload)
    await outbox.emit(user_channel(advocate_user), UPDATED, payload)


async def send(
    services: Services,
    viewer: Viewer | None,
    *,
    advocate_id: int,
    child_id: int,
    message: str,
    support_types: list[SupportType],
) -> SupportRequest:
    """A family's request for support with one child, to one advocate."""
    v = access.family_writer(viewer)
    assert v.family_id is not None
    await recovery.require_verified(v)
    body = validation.text("message", message, max_length=MAX_MESSAGE, multiline=True)
    if not support_types:
        raise InvalidInput("supportTypes", "Choose at least one kind of support.", "REQUIRED")
    child = await own_row(Child, child_id, "Child", "childId", family_id=v.family_id)
    advocate = await Advocate.get_or_none(id=advocate_id)
    if advocate is None or not await advocates.listed(advocate):
        raise NotFound("Advocate", "advocateId")
    if advocate.availability is Availability.NOT_ACCEPTING:
        raise UserError(
            "ADVOCATE_NOT_ACCEPTING",
            "This advocate is not taking new requests at the moment.",
            "advocateId",
        )
    key = open_key(v.family_id, child.id, advocate.id)
    if await SupportRelationship.exists(active_key=key):
        raise UserError(
            "ALREADY_SUPPORTED",
            "This advocate is already supporting you with this child.",
            "advocateId",
        )
    now = services.clock.now()
    try:
        async with unit_of_work(services) as outbox:
            thread = await Thread.create(family_id=v.family_id, advocate_id=advocate.id, created_at=now)
            request = await SupportRequest.create(
                family_id=v.family_id,
                child_id=child.id,
                advocate_id=advocate.id,
                thread=thread,
                message=body,
                support_types=sorted({t.value for t in support_types}),
                child_display_name=child.display_name,
                child_age_years=age_on(child.date_of_birth, now.date()),
                ehcp_stage=child.ehcp_stage,
                created_at=now,
                respond_by=now + timedelta(hours=advocate.response_sla_hours),
                expires_at=now + services.policy.request_expiry,
                open_key=key,
            )
            await threads.post(outbox, thread.id, v.user_id, body)
            await notifications.notify(
                outbox,
                advocate.user_id,
                NotificationKind.NEW_SUPPORT_REQUEST,
                f"New support request about a {request.child_age_years}-year-old",
                body[:200],
                notifications.subject("SupportRequest", request.id),
            )
            await announce_update(outbox, request, CREATED)
    except IntegrityError as exc:
        raise UserError(
            "DUPLICATE_REQUEST",
            "You already have an open request to this advocate about this child.",
            "advocateId",
        ) from exc
    return request


async def _advocate_request(viewer: Viewer | None, request_id: int) -> tuple[Viewer, SupportRequest]:
    v = access.advocate_writer(viewer)
    request = await own_row(
        SupportRequest, request_id, "Support request", "requestId", advocate_id=v.advocate_id
    )
    return v, request


def has_room(advocate: Advocate) -> bool:
    """Whether the advocate can take another case (what `accept` checks as it takes one)."""
    return advocate.active_case_count < advocate.capacity


def _not_open(request: SupportRequest) -> UserError:
    # Still of an open status here means past its expiry, before the sweep has marked it.
    state = "expired" if request.status in OPEN_STATUSES else request.status.value.lower().replace("_", " ")
    return UserError("INVALID_TRANSITION", f"This request is {state} and can no longer change.", "requestId")


async def request_more_information(
    services: Services, viewer: Viewer | None, request_id: int, message: str
) -> SupportRequest:
    """Ask the family a question before deciding; no commitment."""
    v, request = await _advocate_request(viewer, request_id)
    body = validation.text("message", message, max_length=MAX_MESSAGE, multiline=True)
    now = services.clock.now()
    if not access.may_answer(v, request, now):
        raise _not_open(request)
    async with unit_of_work(services) as outbox:
        moved = await SupportRequest.filter(access.still_open(now), id=request.id).update(
            status=RequestStatus.INFO_REQUESTED
        )
        if not moved:
            raise _not_open(await SupportRequest.get(id=request.id))
        await SupportRequest.filter(id=request.id, responded_at__isnull=True).update(responded_at=now)
        await threads.post(outbox, request.thread_id, v.user_id, body)
        family_user, _ = await _parties(request)
        await notifications.notify(
            outbox,
            family_user,
            NotificationKind.INFORMATION_REQUESTED,
            "Your advocate has a question",
            body[:200],
            notifications.subject("SupportRequest", request.id),
        )
        await announce_update(outbox, request)
    return await SupportRequest.get(id=request.id)


async def accept(
    services: Services, viewer: Viewer | None, request_id: int, message: str | None
) -> SupportRequest:
    """Take the case: the relationship opens with the request's thread, within capacity."""
    v, request = await _advocate_request(viewer, request_id)
    body = (
        validation.text("message", message, max_length=MAX_MESSAGE, multiline=True)
        if message is not None and message.strip()
        else None
    )
    now = services.clock.now()
    if not access.may_answer(v, request, now):
        raise _not_open(request)
    try:
        async with unit_of_work(services) as outbox:
            moved = await SupportRequest.filter(access.still_open(now), id=request.id).update(
                status=RequestStatus.ACCEPTED, open_key=None, decided_at=now
            )
            if not moved:
                raise _not_open(await SupportRequest.get(id=request.id))
            await SupportRequest.filter(id=request.id, responded_at__isnull=True).update(responded_at=now)
            slot = await Advocate.filter(
                id=request.advocate_id,
                active_case_count__lt=F("capacity"),
            ).update(active_case_count=F("active_case_count") + 1)
            if not slot:
                raise UserError(
                    "AT_CAPACITY",
                    "You are at your capacity. Raise it or end a relationship before accepting.",
                    "requestId",
                )
            if request.child_id is None:
                raise UserError(
                    "INVALID_TRANSITION",
                    "The family has removed this child's record; the request can't be accepted.",
                    "requestId",
                )
            await SupportRelationship.create(
                family_id=request.family_id,
                advocate_id=request.advocate_id,
                child_id=request.child_id,
                request_id=request.id,
                thread_id=request.thread_id,
                status=RelationshipStatus.ACTIVE,
                opened_at=now,
                first_advocate_message_at=now if body else None,
                active_key=open_key(request.family_id, request.child_id, request.advocate_id),
            )
            if body:
                await threads.post(outbox, request.thread_id, v.user_id, body)
            family_user, _ = await _parties(request)
            await notifications.notify(
                outbox,
                family_user,
                NotificationKind.SUPPORT_REQUEST_ACCEPTED,
                "Your support request was accepted",
                body[:200] if body else "",
                notifications.subject("SupportRequest", request.id),
            )
            await announce_update(outbox, request)
    except IntegrityError as exc:
        raise UserError(
            "ALREADY_SUPPORTED",
            "You are already supporting this family with this child.",
            "requestId",
        ) from exc
    return await SupportRequest.get(id=request.id)


@dataclass(frozen=True)
class Suggestion:
    kind: SuggestionKind
    advocate_id: int | None = None
    name: str | None = None
    note: str | None = None


async def _clean_suggestions(v: Viewer, suggestions: list[Suggestion]) -> list[dict[str, str]]:
    field = "suggestedAlternatives"
    if len(suggestions) > MAX_SUGGESTIONS:
        raise InvalidInput(field, f"Suggest at most {MAX_SUGGESTIONS} alternatives.", "TOO_LONG")
    cleaned: list[dict[str, str]] = []
    for s in suggestions:
        note = validation.text(field, s.note or "", max_length=MAX_SUGGESTION_NOTE, required=False)
        entry = {"kind": s.kind.value, "note": note, "name": "", "advocateId": ""}
        if s.kind is SuggestionKind.ADVOCATE:
            if s.advocate_id is None or s.advocate_id == v.advocate_id:
                raise NotFound("Advocate", field)
            other = await Advocate.get_or_none(id=s.advocate_id, verification=Verification.VERIFIED)
            if other is None:
                raise NotFound("Advocate", field)
            entry["advocateId"] = str(other.id)
            entry["name"] = other.display_name
        elif s.kind is SuggestionKind.OTHER_ORGANISATION:
            entry["name"] = validation.text(field, s.name or "", max_length=MAX_SUGGESTION_NAME)
        else:
            entry["name"] = validation.text(field, s.name or s.kind.value, max_length=MAX_SUGGESTION_NAME)
        cleaned.append(entry)
    return cleaned


async def decline(
    services: Services,
    viewer: Viewer | None,
    request_id: int,
    *,
    reason: DeclineReason,
    message: str | None,
    suggestions: list[Suggestion],
) -> SupportRequest:
    """Say no, with a reason and, where possible, somewhere else to turn."""
    v, request = await _advocate_request(viewer, request_id)
    body = validation.text("message", message or "", max_length=MAX_MESSAGE, required=False, multiline=True)
    alternatives = await _clean_suggestions(v, suggestions)
    now = services.clock.now()
    if not access.may_answer(v, request, now):
        raise _not_open(request)
    async with unit_of_work(services) as outbox:
        moved = await SupportRequest.filter(access.still_open(now), id=request.id).update(
            status=RequestStatus.DECLINED,
            open_key=None,
            decided_at=now,
            decline_reason=reason,
            decline_message=body,
            suggested_alternatives=alternatives,
        )
        if not moved:
            raise _not_open(await SupportRequest.get(id=request.id))
        await SupportRequest.filter(id=request.id, responded_at__isnull=True).update(responded_at=now)
        if body:
            await threads.post(outbox, request.thread_id, v.user_id, body)
        await threads.close(outbox, request.thread_id)
        family_user, _ = await _parties(request)
        await notifications.notify(
            outbox,
            family_user,
            NotificationKind.SUPPORT_REQUEST_DECLINED,
            "Your support request was declined",
            body[:200],
            notifications.subject("SupportRequest", request.id),
        )
        await announce_update(outbox, request)
    return await SupportRequest.get(id=request.id)


async def withdraw(services: Services, viewer: Viewer | None, request_id: int) -> SupportRequest:
    """The family takes back a request that has not been decided."""
    v = access.family_writer(viewer)
    request = await own_row(SupportRequest, request_id, "Support request", "requestId", family_id=v.family_id)
    now = services.clock.now()
    if not access.may_withdraw(v, request, now):
        raise _not_open(request)
    async with unit_of_work(services) as outbox:
        moved = await SupportRequest.filter(access.still_open(now), id=request.id).update(
            status=RequestStatus.WITHDRAWN, open_key=None, decided_at=now
        )
        if not moved:
            raise _not_open(await SupportRequest.get(id=request.id))
        await threads.close(outbox, request.thread_id)
        _, advocate_user = await _parties(request)
        await notifications.notify(
            outbox,
            advocate_user,
            NotificationKind.SUPPORT_REQUEST_WITHDRAWN,
            "A family withdrew its support request",
            "",
            notifications.subject("SupportRequest", request.id),
        )
        await announce_update(outbox, request)
    return await SupportRequest.get(id=request.id)


async def expire_due(services: Services, batch: int = 200) -> int:
    """Expire open requests left unanswered past their expiry; returns how many expired."""
    now = services.clock.now()
    due = await SupportRequest.filter(status__in=OPEN_STATUSES, expires_at__lte=now).limit(batch)
    expired = 0
    for request in due:
        async with unit_of_work(services) as outbox:
            moved = await SupportRequest.filter(
                id=request.id, status__in=OPEN_STATUSES, expires_at__lte=now
            ).update(status=RequestStatus.EXPIRED, open_key=None, decided_at=now)
            if not moved:
                continue
            await threads.close(outbox, request.thread_id)
            family_user, advocate_user = await _parties(request)
            for user_id, title in (
                (family_user, "Your support request expired without an answer"),
                (advocate_user, "A support request expired without an answer"),
            ):
                await notifications.notify(
                    outbox,
                    user_id,
                    NotificationKind.SUPPORT_REQUEST_EXPIRED,
                    title,
                    "",
                    notifications.subject("SupportRequest", request.id),
                )
            await announce_update(outbox, request)
            expired += 1
    return expired


async def list_for(
    viewer: Viewer | None, status: list[RequestStatus] | None, window: Window
) -> Page[SupportRequest]:
    """What a family sent, or what an advocate received, newest first."""
    query = SupportRequest.filter(access.listed(viewer))
    if status:
        query = query.filter(status__in=status)
    return await paginate(query, kind="SupportRequest", window=window)


async def relationship_of(request: SupportRequest) -> SupportRelationship | None:
    return await SupportRelationship.get_or_none(request_id=request.id)
