"""Advocate profiles, verification by admins, and the directory families search."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from tortoise.expressions import F, Q

from models.accounts import User
from models.advocates import (
    LIST_DELIMITER,
    Advocate,
    AdvocateType,
    Availability,
    Specialism,
    Verification,
    pack,
)
from models.notifications import NotificationKind
from resolvers import notifications, recovery, validation
from resolvers.access import accounts as access
from resolvers.errors import InvalidInput, NotFound, UserError
from resolvers.events import unit_of_work
from resolvers.pagination import Page, Window, paginate
from resolvers.services import Services
from resolvers.viewer import Viewer

MAX_BIO = 5000
MAX_AREAS = 50
MAX_AREA_LENGTH = 100
MAX_CAPACITY = 200
MAX_NOTE = 1000
MAX_SEARCH = 100
# An area that means "works with families anywhere, remotely".
REMOTE = "Remote"


async def create_profile(user_id: int, display_name: str, now: datetime) -> Advocate:
    """The empty profile every advocate account starts with (unverified, so not yet listed)."""
    return await Advocate.create(user_id=user_id, display_name=display_name, created_at=now, updated_at=now)


def _areas(values: list[str]) -> list[str]:
    if len(values) > MAX_AREAS:
        raise InvalidInput("areas", f"List at most {MAX_AREAS} areas.", "TOO_LONG")
    cleaned: list[str] = []
    for value in values:
        area = validation.text("areas", value, max_length=MAX_AREA_LENGTH)
        if LIST_DELIMITER in area:
            raise InvalidInput("areas", f"Area names cannot contain {LIST_DELIMITER!r}.")
        if area.lower() not in {a.lower() for a in cleaned}:
            cleaned.append(area)
    return cleaned


async def update_profile(
    services: Services,
    viewer: Viewer | None,
    *,
    display_name: str | None = None,
    bio: str | None = None,
    advocate_type: AdvocateType | None = None,
    specialisms: list[Specialism] | None = None,
    areas: list[str] | None = None,
    capacity: int | None = None,
    availability: Availability | None = None,
    capacity_expected_on: date | None = None,
    clear_capacity_expected_on: bool = False,
) -> Advocate:
    """Change any part of the viewer's own profile; what is left out stays as it is."""
    v = access.advocate_session(viewer)
    changes: dict[str, object] = {}
    if display_name is not None:
        changes["display_name"] = validation.text("displayName", display_name, max_length=100)
    if bio is not None:
        changes["bio"] = validation.text("bio", bio, max_length=MAX_BIO, required=False, multiline=True)
    if advocate_type is not None:
        changes["advocate_type"] = advocate_type
    if specialisms is not None:
        changes["specialisms"] = pack(sorted({s.value for s in specialisms}))
    if areas is not None:
        changes["areas"] = pack(_areas(areas))
    if capacity is not None:
        if not 0 <= capacity <= MAX_CAPACITY:
            raise InvalidInput("capacity", f"Capacity is between 0 and {MAX_CAPACITY} cases.", "OUT_OF_RANGE")
        changes["capacity"] = capacity
    if availability is not None:
        changes["availability"] = availability
    now = services.clock.now()
    if capacity_expected_on is not None:
        if capacity_expected_on < now.date():
            raise InvalidInput("capacityExpectedOn", "This date has passed.", "DATE_IN_PAST")
        changes["capacity_expected_on"] = capacity_expected_on
    elif clear_capacity_expected_on:
        changes["capacity_expected_on"] = None
    if changes:
        changes["updated_at"] = now
        await Advocate.filter(id=v.advocate_id).update(**changes)
    return await Advocate.get(id=v.advocate_id)


async def request_verification(services: Services, viewer: Viewer | None) -> Advocate:
    """Ask an admin to verify the viewer's profile; it must say what they do and where."""
    v = access.advocate_session(viewer)
    await recovery.require_verified(v)
    advocate = await Advocate.get(id=v.advocate_id)
    if advocate.verification in (Verification.PENDING, Verification.VERIFIED):
        raise UserError(
            "INVALID_TRANSITION",
            f"Verification is already {advocate.verification.value.lower()}.",
        )
    missing = [
        name
        for name, value in (
            ("bio", advocate.bio),
            ("specialisms", advocate.specialisms),
            ("areas", advocate.areas),
        )
        if not value
    ]
    if missing:
        raise UserError(
            "PROFILE_INCOMPLETE",
            "Add a bio, at least one specialism and at least one area before asking for verification.",
            missing[0],
        )
    updated = await Advocate.filter(
        id=advocate.id, verification__in=[Verification.UNVERIFIED, Verification.REJECTED]
    ).update(verification=Verification.PENDING, updated_at=services.clock.now())
    if not updated:
        raise UserError("INVALID_TRANSITION", "Verification was already requested.")
    return await Advocate.get(id=advocate.id)


async def verify(
    services: Services, viewer: Viewer | None, advocate_id: int, decision: Verification, note: str
) -> Advocate:
    """An admin's decision on a pending verification; the advocate is told."""
    access.admin(viewer)
    if decision not in (Verification.VERIFIED, Verification.REJECTED):
        raise InvalidInput("decision", "Decide VERIFIED or REJECTED.")
    clean_note = validation.text("note", note, max_length=MAX_NOTE, required=False, multiline=True)
    advocate = await Advocate.get_or_none(id=advocate_id)
    if advocate is None:
        raise NotFound("Advocate", "advocateId")
    now = services.clock.now()
    async with unit_of_work(services) as outbox:
        updated = await Advocate.filter(id=advocate_id, verification=Verification.PENDING).update(
            verification=decision, verification_note=clean_note, verification_decided_at=now, updated_at=now
        )
        if not updated:
            raise UserError("INVALID_TRANSITION", "This advocate has not asked for verification.")
        await notifications.notify(
            outbox,
            advocate.user_id,
            NotificationKind.VERIFICATION_DECIDED,
            "Your profile is verified"
            if decision is Verification.VERIFIED
            else "Your verification was not approved",
            clean_note,
        )
    return await Advocate.get(id=advocate_id)


@dataclass(frozen=True)
class DirectoryFilter:
    advocate_type: AdvocateType | None = None
    specialism: Specialism | None = None
    area: str | None = None
    accepting_only: bool = False
    text: str | None = None


async def listed(advocate: Advocate) -> bool:
    """Whether the advocate is in the directory (`directory`'s rule for one advocate): verified,
    and the account not suspended."""
    if advocate.verification is not Verification.VERIFIED:
        return False
    return await User.exists(id=advocate.user_id, suspended_at__isnull=True)


async def directory(viewer: Viewer | None, flt: DirectoryFilter, window: Window) -> Page[Advocate]:
    """Verified advocates matching the filter, in a stable order."""
    query = Advocate.filter(verification=Verification.VERIFIED, user__suspended_at__isnull=True)
    if flt.advocate_type is not None:
        query = query.filter(advocate_type=flt.advocate_type)
    if flt.specialism is not None:
        query = query.filter(specialisms__contains=pack([flt.specialism.value]))
    if flt.area is not None:
        area = validation.text("area", flt.area, max_length=MAX_AREA_LENGTH)
        query = query.filter(Q(areas__icontains=pack([area])) | Q(areas__icontains=pack([REMOTE])))
    if flt.accepting_only:
        query = query.filter(
            availability__in=[Availability.ACCEPTING, Availability.LIMITED],
            active_case_count__lt=F("capacity"),
        )
    if flt.text:
        text = validation.text("text", flt.text, max_length=MAX_SEARCH)
        query = query.filter(Q(display_name__icontains=text) | Q(bio__icontains=text))
    return await paginate(query, kind="Advocate", window=window, newest_first=False)


async def verification_queue(viewer: Viewer | None, window: Window) -> Page[Advocate]:
    """Advocates waiting for an admin's decision, oldest first."""
    access.admin(viewer)
    return await paginate(
        Advocate.filter(verification=Verification.PENDING),
        kind="Advocate",
        window=window,
        newest_first=False,
    )
