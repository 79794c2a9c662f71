"""Support relationships: ending them (and every grant under them), and the family's review."""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.expressions import F
from tortoise.functions import Count, Sum

from models.advocates import Advocate
from models.notifications import NotificationKind
from models.support import CloseReason, RelationshipStatus, SupportRelationship, SupportRequest
from models.vault import AccessEndReason, Review, VaultGrant
from resolvers import grants, notifications, support_requests, threads, validation
from resolvers.access import accounts as account_access
from resolvers.access import relationships as access
from resolvers.access import requests as request_access
from resolvers.access.core import own_row
from resolvers.errors import InvalidInput, NotFound, UserError
from resolvers.events import unit_of_work
from resolvers.pagination import Page, PageKey, Window, page_key, pages_by_parent, paginate
from resolvers.services import Services
from resolvers.viewer import Viewer

MAX_CLOSE_NOTE = 1000
MAX_REVIEW = 2000
THREAD_CLOSED = threads.THREAD_CLOSED


async def list_for(
    viewer: Viewer | None, status: list[RelationshipStatus] | None, window: Window
) -> Page[SupportRelationship]:
    query = SupportRelationship.filter(request_access.listed(viewer))
    if status:
        query = query.filter(status__in=status)
    return await paginate(query, kind="SupportRelationship", window=window)


async def end(
    services: Services, viewer: Viewer | None, relationship_id: int, reason: CloseReason, note: str
) -> SupportRelationship:
    """Close the relationship and revoke every grant under it, in one transaction; then tell the
    advocate. The Vault and the message history stay as they are."""
    v = request_access.party_writer(viewer)
    [relationship] = await access.relationships(v, [relationship_id])
    if relationship is None:
        raise NotFound("Support relationship", "relationshipId")
    clean_note = validation.text("note", note, max_length=MAX_CLOSE_NOTE, required=False, multiline=True)
    if not access.may_end(v, relationship):
        raise UserError("INVALID_TRANSITION", "This relationship has already ended.", "relationshipId")
    async with unit_of_work(services) as outbox:
        closed = await SupportRelationship.filter(
            id=relationship.id, status=RelationshipStatus.ACTIVE
        ).update(
            status=RelationshipStatus.CLOSED,
            closed_at=outbox.now,
            closed_by_id=v.user_id,
            close_reason=reason,
            close_note=clean_note,
            active_key=None,
        )
        if not closed:
            raise UserError("INVALID_TRANSITION", "This relationship has already ended.", "relationshipId")
        await Advocate.filter(id=relationship.advocate_id, active_case_count__gt=0).update(
            active_case_count=F("active_case_count") - 1
        )
        # Live readers of the thread (messageAdded) are ended: nothing more will be said there.
        await threads.close(outbox, relationship.thread_id)
        live = await VaultGrant.filter(relationship_id=relationship.id, revoked_at__isnull=True)
        await grants.end_grants(outbox, live, AccessEndReason.RELATIONSHIP_ENDED, v.user_id)
        await relationship.fetch_related("family", "advocate")
        other = relationship.advocate.user_id if v.family_id is not None else relationship.family.user_id
        await notifications.notify(
            outbox,
            other,
            NotificationKind.RELATIONSHIP_ENDED,
            "A support relationship ended",
            clean_note,
            notifications.subject("SupportRelationship", relationship.id),
        )
        request = await SupportRequest.get(id=relationship.request_id)
        await support_requests.announce_update(outbox, request)
    return await SupportRelationship.get(id=relationship.id)


async def leave_review(
    services: Services, viewer: Viewer | None, relationship_id: int, rating: int, text: str
) -> Review:
    """The family's one review of a closed relationship, shown on the advocate's profile."""
    v = request_access.family_writer(viewer)
    relationship = await own_row(
        SupportRelationship, relationship_id, "Support relationship", "relationshipId", family_id=v.family_id
    )
    if not 1 <= rating <= 5:
        raise InvalidInput("rating", "Rate from 1 to 5.", "OUT_OF_RANGE")
    body = validation.text("text", text, max_length=MAX_REVIEW, required=False, multiline=True)
    if not access.may_review(v, relationship, reviewed=False):
        raise UserError(
            "RELATIONSHIP_ACTIVE", "You can review once the relationship has ended.", "relationshipId"
        )
    from tortoise.exceptions import IntegrityError

    try:
        return await Review.create(
            relationship_id=relationship.id,
            family_id=relationship.family_id,
            advocate_id=relationship.advocate_id,
            rating=rating,
            text=body,
            created_at=services.clock.now(),
        )
    except IntegrityError as exc:
        raise UserError(
            "ALREADY_REVIEWED", "You have already reviewed this relationship.", "relationshipId"
        ) from exc


async def hide_review(services: Services, viewer: Viewer | None, review_id: int) -> Review:
    """An admin hides a review from the advocate's profile."""
    account_access.admin(viewer)
    review = await Review.get_or_none(id=review_id)
    if review is None:
        raise NotFound("Review", "reviewId")
    await Review.filter(id=review.id, hidden_at__isnull=True).update(hidden_at=services.clock.now())
    return await Review.get(id=review.id)


async def ratings(advocate_ids: Sequence[int]) -> list[tuple[float | None, int]]:
    """Each advocate's average rating (two places) and count of shown reviews, in one query."""
    rows = (
        await Review.filter(advocate_id__in=list(advocate_ids), hidden_at__isnull=True)
        .annotate(count=Count("id"), total=Sum("rating"))
        .group_by("advocate_id")
        .values_list("advocate_id", "count", "total")
    )
    found = {int(a): (int(c), int(t)) for a, c, t in rows}
    result: list[tuple[float | None, int]] = []
    for advocate_id in advocate_ids:
        count, total = found.get(advocate_id, (0, 0))
        result.append(((round(total / count, 2) if count else None), count))
    return result


async def review_pages(keys: Sequence[PageKey]) -> list[Page[Review]]:
    """Newest-first pages of many advocates' shown reviews (a directory page asking for each
    advocate's latest reviews), in one windowed query per distinct page."""
    return await pages_by_parent(
        Review, "advocate_id", "Review", keys, newest_first=True, only='"hidden_at" IS NULL'
    )


def reviews_key(advocate_id: int, window: Window) -> PageKey:
    """The loader key for a window on an advocate's shown reviews; a bad cursor is INVALID."""
    return page_key("Review", advocate_id, window)


async def review_of(relationship: SupportRelationship) -> Review | None:
    return await Review.get_or_none(relationship_id=relationship.id)
