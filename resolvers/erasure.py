"""Erasing a family's data (SPEC §16, UK GDPR's right to erasure): `deleteAccount` after a grace
period, `deleteChild`, `deleteTimelineEntry`.

An account's erasure is a sequence of steps (`STEPS`), each in its own transaction that also
records the step as done in the account's `ErasureRecord`, and each safe to run again: a process
that stops half-way (a crash, a deploy) leaves the record saying where it got to, and the next
sweep, on any process, carries on from there to the same end. What the advocate keeps afterwards:
the threads they took part in, the family's messages in them replaced by "[deleted]", the family
shown as "Deleted account"; their tickets, checklists and notes; the family's reviews, without an
author. Everything else of the family goes, and the account row that remains holds nothing
personal, so the address can sign up again. The record keeps counts, never content.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from models.accounts import AccountToken, ApiToken, RecoveryCode, Role, Session, User
from models.advocates import Advocate
from models.documents import Document
from models.events import StoredEvent
from models.families import Child, Family
from models.notifications import Notification, NotificationKind
from models.rights import DataExport, ErasureRecord, ExportStatus
from models.support import (
    OPEN_STATUSES,
    CloseReason,
    Message,
    RelationshipStatus,
    SupportRelationship,
    SupportRequest,
    Thread,
)
from models.vault import (
    AccessEndReason,
    EhcpCase,
    Evidence,
    TimelineEntry,
    VaultAccessLog,
    VaultGrant,
)
from resolvers import connections, documents, exports, grants, notifications, relationships, support_requests
from resolvers.access import accounts as account_access
from resolvers.access import vault as access
from resolvers.access.core import own_row
from resolvers.credentials import require_password
from resolvers.errors import UserError
from resolvers.events import unit_of_work, user_channel
from resolvers.mail import Mail
from resolvers.services import Services
from resolvers.viewer import Viewer

log = logging.getLogger("senvault.erasure")

DELETED_TEXT = "[deleted]"
DELETED_NAME = "Deleted account"
DELETED_CHILD = "Deleted child"
# The suspension reason of an account being erased (for admins; nothing personal).
ERASING = "Erasure of the account, as its holder asked."
# How long a process may go between two steps of an erasure before another may take it over.
LEASE = timedelta(minutes=10)


# --- asking for it -----------------------------------------------------------------------------------


async def schedule(services: Services, viewer: Viewer | None, password: str) -> User:
    """The family asks for its account to be erased, after `erasure_grace` (cancellable until then)."""
    v = account_access.session_holder(viewer)
    user = await User.get(id=v.user_id)
    await require_password(user, password, services.clock)
    if user.role is not Role.FAMILY:
        raise UserError(
            "NOT_A_FAMILY_ACCOUNT",
            "Advocate and admin accounts are closed by our support team, who hand over open cases first.",
        )
    now = services.clock.now()
    due = now + services.policy.erasure_grace
    async with unit_of_work(services) as outbox:
        await User.filter(id=user.id, erased_at__isnull=True).update(erasure_due_at=due)
        await notifications.notify(
            outbox,
            user.id,
            NotificationKind.ACCOUNT_DELETION_SCHEDULED,
            "Your account is to be erased",
            f"Everything in your account will be erased on {due:%d %B %Y}. Until then you can cancel "
            "from your account settings.",
        )
    services.mail.send_soon(
        Mail(
            to=user.email,
            subject="Your SEN Evidence Vault account is to be erased",
            paragraphs=(
                f"Hello {user.display_name},",
                f"You asked for your SEN Evidence Vault account to be erased. On {due:%d %B %Y} your "
                "children's records, evidence, documents and timeline will be erased for good, your "
                "support relationships will end and your messages will be removed.",
                "Until then you can change your mind: sign in and cancel the deletion. You can also "
                "download a copy of everything first.",
            ),
        )
    )
    return await User.get(id=user.id)


async def cancel(services: Services, viewer: Viewer | None) -> User:
    """Keep the account, while its erasure has not begun (the user's row locked: an erasure that
    starts now waits, then finds it no longer due)."""
    v = account_access.session_holder(viewer)
    async with in_transaction():
        user = await User.filter(id=v.user_id).select_for_update().first()
        assert user is not None
        if user.erasure_due_at is None:
            raise UserError("NOT_SCHEDULED", "Your account is not due to be erased.")
        if await ErasureRecord.exists(user_id=user.id):
            raise UserError("ERASURE_STARTED", "The erasure of your account has begun and cannot be stopped.")
        await User.filter(id=user.id).update(erasure_due_at=None)
    return await User.get(id=user.id)


# --- the steps -------------------------------------------------------------------------------------


@dataclass
class Done:
    """What a step did: rows by kind (for the record), and what to do once it has committed."""

    counts: dict[str, int] = field(default_factory=dict)
    document_objects: list[str] = field(default_factory=list)
    export_objects: list[str] = field(default_factory=list)
    sessions: list[int] = field(default_factory=list)
    api_tokens: list[int] = field(default_factory=list)


Step = Callable[[Services, User, Family], Awaitable[Done]]


def _as_family(user: User, family: Family) -> Viewer:
    """The family, acting on its own rows for the steps that reuse what the family itself could do."""
    return Viewer(user_id=user.id, role=Role.FAMILY, family_id=family.id)


async def lock_account(services: Services, user: User, family: Family) -> Done:
    """Before anything else: no more signing in (the account suspended for its erasure, which
    also stops password resets) and every session and API token ended, so nothing is added to
    what the next steps erase."""
    now = services.clock.now()
    await User.filter(id=user.id).update(suspended_at=now, suspension_reason=ERASING)
    sessions = [
        int(r["id"]) for r in await Session.filter(user_id=user.id, revoked_at__isnull=True).values("id")
    ]
    tokens = [
        int(r["id"]) for r in await ApiToken.filter(user_id=user.id, revoked_at__isnull=True).values("id")
    ]
    await Session.filter(id__in=sessions).update(revoked_at=now)
    await ApiToken.filter(id__in=tokens).update(revoked_at=now)
    return Done({"credentials_ended": len(sessions) + len(tokens)}, sessions=sessions, api_tokens=tokens)


async def end_relationships(services: Services, user: User, family: Family) -> Done:
    """Every open request withdrawn and every active relationship ended, as the family would, so
    advocates are told and grants revoked (`accessRevoked` live). One transaction each."""
    as_family = _as_family(user, family)
    withdrawn = ended = 0
    for request in await SupportRequest.filter(family_id=family.id, status__in=list(OPEN_STATUSES)):
        await support_requests.withdraw(services, as_family, request.id)
        withdrawn += 1
    for relationship in await SupportRelationship.filter(
        family_id=family.id, status=RelationshipStatus.ACTIVE
    ):
        await relationships.end(services, as_family, relationship.id, CloseReason.ACCOUNT_DELETED, "")
        ended += 1
    async with unit_of_work(services) as outbox:
        live = await VaultGrant.filter(family_id=family.id, revoked_at__isnull=True)
        revoked = len(await grants.end_grants(outbox, live, AccessEndReason.REVOKED_BY_FAMILY, user.id))
    return Done({"requests_withdrawn": withdrawn, "relationships_ended": ended, "grants_revoked": revoked})


async def delete_vault(services: Services, user: User, family: Family) -> Done:
    """Documents (their objects after), evidence, timeline, EHCP cases, grants, the access log and
    the children."""
    keys = [
        str(row["object_key"])
        for row in await Document.filter(family_id=family.id, object_key__isnull=False).values("object_key")
    ]
    counts = {
        "documents": await Document.filter(family_id=family.id).delete(),
        "evidence": await Evidence.filter(family_id=family.id).delete(),
        "timeline_entries": await TimelineEntry.filter(family_id=family.id).delete(),
        "ehcp_cases": await EhcpCase.filter(family_id=family.id).delete(),
        "grants": await VaultGrant.filter(family_id=family.id).delete(),
        "access_log": await VaultAccessLog.filter(family_id=family.id).delete(),
    }
    await SupportRequest.filter(family_id=family.id).update(child_display_name=DELETED_CHILD)
    counts["children"] = await Child.filter(family_id=family.id).delete()
    return Done(counts, document_objects=keys)


async def scrub_conversations(services: Services, user: User, family: Family) -> Done:
    """The family's words in what the advocates keep: its messages and request texts become
    "[deleted]", and others' notifications that quoted them too."""
    threads = [int(row["id"]) for row in await Thread.filter(family_id=family.id).values("id")]
    messages = [
        int(row["id"]) for row in await Message.filter(thread_id__in=threads, author_id=user.id).values("id")
    ]
    requests = [int(row["id"]) for row in await SupportRequest.filter(family_id=family.id).values("id")]
    related = [int(row["id"]) for row in await SupportRelationship.filter(family_id=family.id).values("id")]
    subjects = (
        [notifications.subject("Message", i) for i in messages]
        + [notifications.subject("SupportRequest", i) for i in requests]
        + [notifications.subject("SupportRelationship", i) for i in related]
    )
    counts = {
        "messages": await Message.filter(id__in=messages).update(body=DELETED_TEXT),
        "request_texts": await SupportRequest.filter(id__in=requests).update(message=DELETED_TEXT),
        "relationship_notes": await SupportRelationship.filter(id__in=related, closed_by_id=user.id).update(
            close_note=""
        ),
        "others_notifications": await Notification.filter(subject_id__in=subjects)
        .exclude(user_id=user.id)
        .update(body=DELETED_TEXT),
    }
    ended, export_keys = await _end_advocates_exports(services, family)
    counts["advocates_exports"] = ended
    return Done(counts, export_objects=export_keys)


async def _end_advocates_exports(services: Services, family: Family) -> tuple[int, list[str]]:
    """The data exports of the advocates the family dealt with were made with the family's words
    (requests, messages, the child's name): a ready one ends now, as if its 7 days were up (its
    holder may ask for a new one, made without them), and a build under way no longer counts (it
    throws its file away, and the export is built again). Returns how many ended or restarted,
    and the objects to remove once this has committed."""
    advocates: set[int] = set()
    for model in (SupportRequest, Thread, SupportRelationship):
        advocates.update(
            int(row["advocate_id"]) for row in await model.filter(family_id=family.id).values("advocate_id")
        )
    holders = [int(row["user_id"]) for row in await Advocate.filter(id__in=advocates).values("user_id")]
    ready = DataExport.filter(user_id__in=holders, status=ExportStatus.READY)
    keys = [str(row["object_key"]) for row in await ready.values("object_key") if row["object_key"]]
    now = services.clock.now()
    ended = await ready.update(status=ExportStatus.EXPIRED, expires_at=now)
    restarted = await DataExport.filter(
        user_id__in=holders, status=ExportStatus.PENDING, lease_until__isnull=False
    ).update(attempts=F("attempts") + 1, lease_until=None)
    return ended + restarted, keys


async def delete_account_data(services: Services, user: User, family: Family) -> Done:
    """Notifications, the live event log of the account, sessions, API tokens, mailed tokens,
    recovery codes and data exports (their objects after)."""
    sessions = [
        int(row["id"]) for row in await Session.filter(user_id=user.id, revoked_at__isnull=True).values("id")
    ]
    tokens = [
        int(row["id"]) for row in await ApiToken.filter(user_id=user.id, revoked_at__isnull=True).values("id")
    ]
    export_keys = [
        str(row["object_key"])
        for row in await DataExport.filter(user_id=user.id, object_key__isnull=False).values("object_key")
    ]
    counts = {
        "notifications": await Notification.filter(user_id=user.id).delete(),
        "events": await StoredEvent.filter(channel=user_channel(user.id)).delete(),
        "sessions": await Session.filter(user_id=user.id).delete(),
        "api_tokens": await ApiToken.filter(user_id=user.id).delete(),
        "account_tokens": await AccountToken.filter(user_id=user.id).delete(),
        "recovery_codes": await RecoveryCode.filter(user_id=user.id).delete(),
        "data_exports": await DataExport.filter(user_id=user.id).delete(),
    }
    return Done(counts, export_objects=export_keys, sessions=sessions, api_tokens=tokens)


async def anonymise(services: Services, user: User, family: Family) -> Done:
    """What remains of the account: a row with no name, address or password, the address free to
    sign up again."""
    placeholder = f"erased-{user.id}@erased.invalid"
    changed = await User.filter(id=user.id).update(
        email=placeholder,
        email_key=placeholder,
        display_name=DELETED_NAME,
        password_hash="!" + secrets.token_hex(16),
        email_verified_at=None,
        totp_secret=None,
        totp_enabled_at=None,
        totp_last_step=None,
        failed_logins=0,
        login_blocked_until=None,
        suspension_reason="",
        erasure_due_at=None,
        erased_at=services.clock.now(),
    )
    return Done({"accounts": changed})


# (name, step, whether the step runs in the transaction that records it). Ending relationships
# runs what the family itself could do, one transaction per request or relationship (each
# announced when it commits); run again, it finds only what is still open.
STEPS: list[tuple[str, Step, bool]] = [
    ("lock_account", lock_account, True),
    ("end_relationships", end_relationships, False),
    ("delete_vault", delete_vault, True),
    ("scrub_conversations", scrub_conversations, True),
    ("delete_account_data", delete_account_data, True),
    ("anonymise", anonymise, True),
]


# --- running it ----------------------------------------------------------------------------------


async def run_due(services: Services) -> int:
    """Erase every account whose grace period is over (and finish any erasure that stopped
    half-way); returns how many were erased."""
    now = services.clock.now()
    due = await User.filter(erasure_due_at__lte=now, erased_at__isnull=True).values("id")
    unfinished = await ErasureRecord.filter(completed_at__isnull=True).values("user_id")
    ids = sorted({int(r["id"]) for r in due} | {int(r["user_id"]) for r in unfinished})
    for user_id in ids:
        await erase(services, user_id)
    return len(ids)


async def erase(services: Services, user_id: int) -> ErasureRecord | None:
    """Run the account's erasure from the first step not yet done to the end, unless another
    process is running it (its lease, renewed at each step, has not run out); returns its record."""
    user = await User.get(id=user_id)
    family = await Family.get(user_id=user.id)
    record = await _begin(services, user)
    if record is None:
        return None
    holder = uuid.uuid4().hex
    if not await _lease(services, record.id, holder):
        return await ErasureRecord.get(id=record.id)
    await ErasureRecord.filter(id=record.id, started_at__isnull=True).update(started_at=services.clock.now())
    for name, step, atomic in STEPS:
        if not await _lease(services, record.id, holder, renew=True):
            log.warning("erasure %s was taken over by another process", record.id)
            return await ErasureRecord.get(id=record.id)
        record = await ErasureRecord.get(id=record.id)
        if name in record.steps_done:
            continue
        if atomic:
            async with in_transaction():
                done = await step(services, user, family)
                await _record(record.id, name, done)
        else:
            done = await step(services, user, family)
            async with in_transaction():
                await _record(record.id, name, done)
        await _after_commit(services, done)
    await ErasureRecord.filter(id=record.id, completed_at__isnull=True, lease_holder=holder).update(
        completed_at=services.clock.now(), lease_until=None, lease_holder=None
    )
    log.info("erasure %s completed", record.id)
    return await ErasureRecord.get(id=record.id)


async def _begin(services: Services, user: User) -> ErasureRecord | None:
    """The account's erasure record: the one already begun, or a new one if the erasure is due now
    (the user's row locked, so a cancel that commits first wins); None when it is not due."""
    async with in_transaction():
        locked = await User.filter(id=user.id).select_for_update().first()
        existing = await ErasureRecord.get_or_none(user_id=user.id)
        if existing is not None:
            return existing
        if locked is None or locked.erasure_due_at is None or locked.erasure_due_at > services.clock.now():
            return None
        try:
            return await ErasureRecord.create(
                user_id=user.id, role=user.role.value, requested_at=locked.erasure_due_at
            )
        except IntegrityError:
            return await ErasureRecord.get(user_id=user.id)  # another process made it first


async def _lease(services: Services, record_id: int, holder: str, *, renew: bool = False) -> bool:
    """Take (or, holding it, renew) the right to run an unfinished erasure for LEASE: one process
    at a time, named by `holder`; a process that dies lets another carry on once its lease has
    run out, and one that finds its lease taken stops."""
    now = services.clock.now()
    query = ErasureRecord.filter(id=record_id, completed_at__isnull=True)
    if renew:
        query = query.filter(lease_holder=holder)
    else:
        query = query.filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
    return bool(await query.update(lease_until=now + LEASE, lease_holder=holder))


async def _record(record_id: int, name: str, done: Done) -> None:
    """Mark a step done with its counts, in the current transaction (the record locked and re-read)."""
    current = await ErasureRecord.filter(id=record_id).select_for_update().first()
    assert current is not None
    if name in current.steps_done:
        return
    merged = {**current.counts}
    for key, value in done.counts.items():
        merged[key] = merged.get(key, 0) + value
    await ErasureRecord.filter(id=record_id).update(steps_done=[*current.steps_done, name], counts=merged)


async def _after_commit(services: Services, done: Done) -> None:
    """Sockets of ended credentials closed on every process, stored objects removed (what this
    misses, the sweeps remove: no row holds those objects any more)."""
    for session_id in done.sessions:
        await connections.announce_ended(services, session_id=session_id)
    for token_id in done.api_tokens:
        await connections.announce_ended(services, api_token_id=token_id)
    await documents.discard_objects(services, done.document_objects)
    for key in done.export_objects:
        await exports.discard(services, key)


# --- deleting a child or a timeline entry ---------------------------------------------------------


async def delete_child(services: Services, viewer: Viewer | None, child_id: int) -> Child:
    """The family deletes a child's record and everything of it in the Vault. A request still open
    or a relationship still active for the child must be withdrawn or ended first. Grants that
    covered only this child end (their advocates are told); others stop covering it."""
    v = access.writer(viewer)
    child = await own_row(Child, child_id, "Child", "childId", family_id=v.family_id)
    open_case = await SupportRequest.exists(child_id=child.id, status__in=list(OPEN_STATUSES)) or (
        await SupportRelationship.exists(child_id=child.id, status=RelationshipStatus.ACTIVE)
    )
    if open_case:
        raise UserError(
            "CHILD_HAS_OPEN_CASE",
            "Withdraw the open request or end the support relationship for this child first.",
            "childId",
        )
    async with unit_of_work(services) as outbox:
        live = await VaultGrant.filter(family_id=child.family_id, revoked_at__isnull=True)
        only_this = [g for g in live if g.child_ids == [child.id]]
        await grants.end_grants(outbox, only_this, AccessEndReason.REVOKED_BY_FAMILY, v.user_id)
        for grant in await VaultGrant.filter(family_id=child.family_id):
            if child.id in grant.child_ids and grant.child_ids != [child.id]:
                await VaultGrant.filter(id=grant.id).update(
                    child_ids=[c for c in grant.child_ids if c != child.id]
                )
        keys = [
            str(row["object_key"])
            for row in await Document.filter(child_id=child.id, object_key__isnull=False).values("object_key")
        ]
        await Document.filter(child_id=child.id).delete()
        # What was read of the child names its records: it goes with them.
        await VaultAccessLog.filter(family_id=child.family_id, child_id=child.id).delete()
        await SupportRequest.filter(child_id=child.id).update(child_display_name=DELETED_CHILD)
        await Child.filter(id=child.id).delete()
    await documents.discard_objects(services, keys)
    return child


async def delete_timeline_entry(services: Services, viewer: Viewer | None, entry_id: int) -> TimelineEntry:
    v = access.writer(viewer)
    entry = await own_row(TimelineEntry, entry_id, "Timeline entry", "timelineEntryId", family_id=v.family_id)
    await TimelineEntry.filter(id=entry.id).delete()
    return entry
