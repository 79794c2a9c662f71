"""Demo data for trying the product: `python server.py seed-demo`. Never run against real data."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import date

from models.accounts import Role, User
from models.advocates import AdvocateType, Availability, Specialism, Verification
from models.families import Child, EhcpStage
from models.support import DeclineReason, SuggestionKind, SupportRelationship, SupportType
from models.tickets import ChecklistItem
from models.vault import Evidence, EvidenceCategory, VaultScope
from resolvers import accounts, advocates, documents, families, grants, pdf, support_requests, tickets, vault
from resolvers.services import Services
from resolvers.viewer import Viewer

DEMO_PASSWORD = "demo-password-123"
# Every demo account's address ends so.
DEMO_DOMAIN = "@demo.senvault.test"


async def holds_other_accounts() -> bool:
    """Whether the database holds accounts that are not the demo's: someone's real ones, beside
    which an admin with a published password must never be added (`seed-demo` refuses)."""
    return await User.exclude(email_key__endswith=DEMO_DOMAIN).exists()


FAMILY = ("family@demo.senvault.test", "Sam Taylor (demo family)")
# A second family, supported by Priya with part of its Vault shared: her Vault view and `accessRevoked`.
SECOND_FAMILY = ("family2@demo.senvault.test", "Chris Morgan (demo family)")
ADMIN = ("admin@demo.senvault.test", "Demo Admin")
# email, name, type, specialisms, areas, availability, verified
ADVOCATES = [
    (
        "advocate@demo.senvault.test",
        "Priya Shah",
        AdvocateType.INDEPENDENT,
        [Specialism.EHC_NEEDS_ASSESSMENT, Specialism.TRIBUNAL],
        ["Leeds", "Bradford"],
        Availability.ACCEPTING,
        True,
    ),
    (
        "charity@demo.senvault.test",
        "Northern SEND Charity (Tom Reid)",
        AdvocateType.CHARITY,
        [Specialism.ANNUAL_REVIEW, Specialism.DRAFT_PLAN],
        ["Leeds", "Remote"],
        Availability.ACCEPTING,
        True,
    ),
    (
        "sendiass@demo.senvault.test",
        "Leeds SENDIASS (Amina Okafor)",
        AdvocateType.SENDIASS,
        [Specialism.EXCLUSIONS, Specialism.PLACEMENT],
        ["Leeds"],
        Availability.LIMITED,
        True,
    ),
    (
        "solicitor@demo.senvault.test",
        "Hughes & Co (Gareth Hughes)",
        AdvocateType.SOLICITOR,
        [Specialism.TRIBUNAL],
        ["Remote"],
        Availability.ACCEPTING,
        True,
    ),
    (
        "newadvocate@demo.senvault.test",
        "Jordan Lee (awaiting verification)",
        AdvocateType.INDEPENDENT,
        [Specialism.ANNUAL_REVIEW],
        ["York"],
        Availability.ACCEPTING,
        False,
    ),
]


async def _viewer(services: Services, email: str) -> Viewer:
    signed_in = await accounts.log_in(services, email, DEMO_PASSWORD)
    viewer = await accounts.authenticate(services, signed_in.token)
    assert viewer is not None
    return viewer


async def seed(services: Services) -> list[str]:
    """Create the demo accounts and requests unless they exist; returns how to sign in."""
    lines = [f"Demo accounts (password for each: {DEMO_PASSWORD}):"]
    lines += [f"  family    {FAMILY[0]}", f"  family    {SECOND_FAMILY[0]}"]
    lines += [f"  advocate  {a[0]}  ({a[1]})" for a in ADVOCATES]
    lines += [f"  admin     {ADMIN[0]}"]
    if await User.exists(email_key=FAMILY[0]):
        return ["Demo data is already there.", *lines]

    await accounts.create_admin(services, ADMIN[0], DEMO_PASSWORD, ADMIN[1])
    admin = await _viewer(services, ADMIN[0])
    advocate_ids: list[int] = []
    for email, name, kind, specialisms, areas, availability, verified in ADVOCATES:
        await accounts.sign_up(services, email, DEMO_PASSWORD, name, Role.ADVOCATE, verified=True)
        viewer = await _viewer(services, email)
        await advocates.update_profile(
            services,
            viewer,
            bio=f"{name}: SEND advice and advocacy for families.",
            advocate_type=kind,
            specialisms=specialisms,
            areas=areas,
            capacity=5,
        )
        await advocates.request_verification(services, viewer)
        if verified:
            assert viewer.advocate_id is not None
            await advocates.verify(services, admin, viewer.advocate_id, Verification.VERIFIED, "Checked.")
        await advocates.update_profile(services, viewer, availability=availability)
        assert viewer.advocate_id is not None
        advocate_ids.append(viewer.advocate_id)

    family, alex = await _family_with_child(
        services, FAMILY, "Alex", date(2016, 3, 14), EhcpStage.ASSESSMENT_REFUSED, "Leeds"
    )
    jo = await families.add_child(
        services,
        family,
        display_name="Jo",
        date_of_birth=date(2019, 9, 2),
        ehcp_stage=EhcpStage.ANNUAL_REVIEW,
        local_authority="Leeds",
    )
    _, charity, _, solicitor, _ = advocate_ids

    async def send(advocate_id: int, child_id: int, message: str, kinds: list[SupportType]) -> int:
        request = await support_requests.send(
            services, family, advocate_id=advocate_id, child_id=child_id, message=message, support_types=kinds
        )
        return int(request.id)

    # Pending: waiting on the charity. (Priya, the first advocate in the directory, has nothing open
    # with this family, so the first request someone tries, to her, goes through.)
    await send(
        charity,
        alex.id,
        "The council refused to assess Alex. We want to appeal and need help with the evidence.",
        [SupportType.TRIBUNAL_APPEAL, SupportType.EHC_NEEDS_ASSESSMENT],
    )
    # Information requested by the charity.
    asked = await send(charity, jo.id, "Jo's annual review is next month.", [SupportType.ANNUAL_REVIEW])
    await support_requests.request_more_information(
        services, await _viewer(services, ADVOCATES[1][0]), asked, "Which school is Jo at?"
    )
    # Accepted: SENDIASS is supporting Alex.
    amina = await _viewer(services, ADVOCATES[2][0])
    accepted = await _accepted_case(
        services,
        family,
        amina,
        alex.id,
        "Alex has had two exclusions this term.",
        [SupportType.EXCLUSION],
        "Hello, I'm Amina. I've read your request and would like to understand where you are.",
    )
    # Alex's Vault, part of it shared with SENDIASS for the case, the EP report with its PDF.
    ep_report, *_ = await _add_evidence(
        services,
        family,
        alex.id,
        [
            ("Educational psychologist's report", EvidenceCategory.EP_REPORT, date(2025, 11, 3)),
            ("Letter refusing to assess", EvidenceCategory.CORRESPONDENCE, date(2026, 1, 20)),
            ("School report, autumn term", EvidenceCategory.SCHOOL_REPORT, date(2025, 12, 15)),
        ],
    )
    await _attach_pdf(services, family, ep_report.id)
    await vault.add_timeline_entry(
        services,
        family,
        child_id=alex.id,
        on=date(2025, 12, 2),
        title="Requested an EHC needs assessment",
        note="",
    )
    await vault.update_ehcp_case(
        services,
        family,
        child_id=alex.id,
        stage=EhcpStage.ASSESSMENT_REFUSED,
        local_authority="Leeds",
        request_date=date(2025, 12, 2),
    )
    await _share_evidence_and_timeline(services, family, accepted, alex.id)
    # Amina's ticket for the case: a checklist from her template, one step done, a private note.
    template = await tickets.create_template(
        services,
        amina,
        "Exclusion case",
        [
            "Get both exclusion letters from the family",
            "Ask the school for the behaviour log",
            "Check the governors' meeting date",
        ],
    )
    [case] = await tickets.tickets_by_request([accepted])
    assert case is not None
    await tickets.apply_template(services, amina, case.id, template.id)
    first_step = await ChecklistItem.filter(ticket_id=case.id).order_by("position").first()
    assert first_step is not None
    await tickets.set_done(services, amina, first_step.id, True)
    await tickets.add_note(
        services,
        amina,
        case.id,
        "Both exclusions followed a change of teaching assistant. Parent is anxious about a permanent "
        "exclusion; explain the governors' review at our first call.",
    )
    await _second_family(services)
    # Declined by the solicitor, with alternatives.
    declined = await send(solicitor, jo.id, "Do we need a solicitor?", [SupportType.ADVICE])
    await support_requests.decline(
        services,
        await _viewer(services, ADVOCATES[3][0]),
        declined,
        reason=DeclineReason.OUTSIDE_EXPERTISE,
        message="At this stage an advocate will serve you better than a solicitor.",
        suggestions=[
            support_requests.Suggestion(SuggestionKind.ADVOCATE, advocate_id=charity, note="Annual reviews"),
            support_requests.Suggestion(SuggestionKind.IPSEA, note="Free legal advice line"),
        ],
    )
    return lines


async def _second_family(services: Services) -> None:
    """Chris Morgan's Riley, supported by Priya, with Riley's evidence and timeline shared with her."""
    family, riley = await _family_with_child(
        services, SECOND_FAMILY, "Riley", date(2014, 6, 21), EhcpStage.DRAFT_PLAN, "Bradford"
    )
    request_id = await _accepted_case(
        services,
        family,
        await _viewer(services, ADVOCATES[0][0]),
        riley.id,
        "The draft plan leaves out Riley's speech and language therapy.",
        [SupportType.DRAFT_PLAN_REVIEW],
        "Hello, I'm Priya. Please share the draft plan and the therapist's report.",
    )
    await _add_evidence(
        services,
        family,
        riley.id,
        [
            ("Draft EHC plan", EvidenceCategory.EHCP_DOCUMENT, date(2026, 2, 9)),
            ("Speech and language therapy report", EvidenceCategory.MEDICAL, date(2025, 10, 14)),
        ],
    )
    await vault.add_timeline_entry(
        services, family, child_id=riley.id, on=date(2026, 2, 9), title="Draft plan received", note=""
    )
    await _share_evidence_and_timeline(services, family, request_id, riley.id)


async def _accepted_case(
    services: Services,
    family: Viewer,
    advocate: Viewer,
    child_id: int,
    message: str,
    kinds: list[SupportType],
    hello: str,
) -> int:
    """A request from `family` to `advocate`, accepted with `hello`; returns the request's id."""
    assert advocate.advocate_id is not None
    request = await support_requests.send(
        services,
        family,
        advocate_id=advocate.advocate_id,
        child_id=child_id,
        message=message,
        support_types=kinds,
    )
    await support_requests.accept(services, advocate, request.id, hello)
    return int(request.id)


async def _family_with_child(
    services: Services, who: tuple[str, str], child: str, born: date, stage: EhcpStage, authority: str
) -> tuple[Viewer, Child]:
    """A signed-up demo family (email, name) and its first child."""
    await accounts.sign_up(services, who[0], DEMO_PASSWORD, who[1], Role.FAMILY, verified=True)
    family = await _viewer(services, who[0])
    made = await families.add_child(
        services, family, display_name=child, date_of_birth=born, ehcp_stage=stage, local_authority=authority
    )
    return family, made


async def _add_evidence(
    services: Services, family: Viewer, child_id: int, items: list[tuple[str, EvidenceCategory, date]]
) -> list[Evidence]:
    return [
        await vault.add_evidence(
            services, family, child_id=child_id, title=title, category=category, on=on, description=""
        )
        for title, category, on in items
    ]


EP_REPORT_LINES = [
    "Educational Psychology Service - Leeds",
    "Report of an educational psychologist (demo data, not a real child)",
    "",
    "Child: Alex Taylor    Date of birth: 14 March 2016    Seen: 3 November 2025",
    "",
    "Alex finds the noise and movement of the classroom hard to bear, and needs",
    "frequent breaks. Working memory is well below the average for age; verbal",
    "reasoning is a strength. Recommended: a quiet work station, visual timetables,",
    "and adult support at transitions.",
]


async def _attach_pdf(services: Services, family: Viewer, evidence_id: int) -> None:
    """The EP report as a small real PDF, through the same staged upload a client uses."""
    if services.documents is None:
        return
    data = pdf.one_page(EP_REPORT_LINES, title="EP report (demo)")
    document, upload = await documents.create_upload(
        services,
        family,
        evidence_id=evidence_id,
        filename="EP report - Alex Taylor.pdf",
        content_type="application/pdf",
        byte_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )

    async def body() -> AsyncIterator[bytes]:
        yield data

    await documents.receive_upload(services, upload.path.rsplit("/", 1)[1], body())
    await documents.complete_upload(services, family, document.id)


async def _share_evidence_and_timeline(
    services: Services, family: Viewer, accepted_request_id: int, child_id: int
) -> None:
    """A grant of the child's evidence and timeline, without expiry, to the advocate who accepted."""
    relationship = await SupportRelationship.get(request_id=accepted_request_id)
    await grants.grant(
        services,
        family,
        relationship_id=relationship.id,
        scopes=[VaultScope.EVIDENCE, VaultScope.TIMELINE],
        child_ids=[child_id],
        expires_at=None,
    )
