"""The demo data: advocates of several types and requests in different states."""

from __future__ import annotations

from models.advocates import Advocate, AdvocateType, Verification
from models.support import RequestStatus, SupportRelationship, SupportRequest
from models.tickets import ChecklistItem, Ticket, TicketNote, TicketStatus
from models.vault import Evidence, VaultGrant
from resolvers.demo import seed
from tests.conftest import Live


async def test_demo_data_shows_the_whole_workflow(live_server: Live) -> None:
    lines = await seed(live_server.app.state.services)
    assert any("family@demo.senvault.test" in line for line in lines)
    types = {a.advocate_type for a in await Advocate.filter(verification=Verification.VERIFIED)}
    assert types == {
        AdvocateType.INDEPENDENT,
        AdvocateType.CHARITY,
        AdvocateType.SENDIASS,
        AdvocateType.SOLICITOR,
    }
    assert await Advocate.filter(verification=Verification.PENDING).count() == 1
    statuses = sorted(r.status.value for r in await SupportRequest.all())
    assert statuses == sorted(
        [RequestStatus.PENDING, RequestStatus.INFO_REQUESTED, RequestStatus.ACCEPTED, RequestStatus.DECLINED]
    )
    assert await SupportRelationship.all().count() == 1
    assert await Evidence.all().count() == 3
    assert await VaultGrant.filter(revoked_at__isnull=True).count() == 1
    # Every request is a ticket; the accepted case has a checklist under way and a private note.
    assert await Ticket.all().count() == 4
    case = await Ticket.get(status=TicketStatus.ACTIVE)
    assert [i.done for i in await ChecklistItem.filter(ticket_id=case.id).order_by("position")] == [
        True,
        False,
        False,
    ]
    assert await TicketNote.filter(ticket_id=case.id).count() == 1
    assert (await seed(live_server.app.state.services))[0] == "Demo data is already there."
