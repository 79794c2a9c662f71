"""The demo data: advocates of several types and requests in different states."""

from __future__ import annotations

from models.advocates import Advocate, AdvocateType, Verification
from models.documents import Document, DocumentStatus
from models.support import RequestStatus, SupportRelationship, SupportRequest
from models.tickets import ChecklistItem, Ticket, TicketNote, TicketStatus
from models.vault import Evidence, VaultGrant
from resolvers.demo import ADVOCATES, DEMO_PASSWORD, FAMILY, SECOND_FAMILY, seed
from resolvers.events import user_channel
from tests.client import GraphQLClient
from tests.conftest import Live
from tests.factories import Account, cursor_now, db_id, send_request


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
        [
            RequestStatus.PENDING,
            RequestStatus.INFO_REQUESTED,
            RequestStatus.ACCEPTED,
            RequestStatus.ACCEPTED,
            RequestStatus.DECLINED,
        ]
    )
    assert await SupportRelationship.all().count() == 2
    assert await Evidence.all().count() == 5
    # Alex's EP report has its PDF, stored encrypted.
    report = await Document.get(status=DocumentStatus.AVAILABLE)
    assert (report.content_type, report.filename) == ("application/pdf", "EP report - Alex Taylor.pdf")
    assert await VaultGrant.filter(revoked_at__isnull=True).count() == 2
    # Every request is a ticket; SENDIASS's case has a checklist under way and a private note.
    assert await Ticket.all().count() == 5
    case = await Ticket.get(status=TicketStatus.ACTIVE, notes__id__isnull=False)
    assert [i.done for i in await ChecklistItem.filter(ticket_id=case.id).order_by("position")] == [
        True,
        False,
        False,
    ]
    assert await TicketNote.filter(ticket_id=case.id).count() == 1
    assert (await seed(live_server.app.state.services))[0] == "Demo data is already there."


LOG_IN = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }"


async def test_the_first_things_a_visitor_tries_on_the_demo_work(
    gql: GraphQLClient, live_server: Live
) -> None:
    """Signed in as the demo family, a request to the first advocate in the directory goes through;
    signed in as that advocate, a shared Vault is there to read, and when its family revokes the
    grant the advocate's `accessRevoked` subscription says so."""
    await seed(live_server.app.state.services)

    async def token(email: str) -> str:
        return str((await gql.data(LOG_IN, {"e": email, "p": DEMO_PASSWORD}))["logIn"]["token"])

    family, priya, chris = [await token(e) for e in (FAMILY[0], ADVOCATES[0][0], SECOND_FAMILY[0])]
    directory = await gql.data("{ advocates(first: 1) { edges { node { id displayName } } } }")
    first = directory["advocates"]["edges"][0]["node"]
    assert first["displayName"] == "Priya Shah"
    children = await gql.data("{ viewer { family { children { id displayName } } } }", token=family)
    for child in children["viewer"]["family"]["children"]:
        sent = await send_request(gql, Account(family, "", ""), first["id"], child["id"])
        assert sent["userErrors"] == [], (child["displayName"], sent)

    shared = await gql.data(
        "{ supportRelationships { edges { node { family { id displayName } vaultGrants { id } } } } }",
        token=priya,
    )
    [relationship] = [e["node"] for e in shared["supportRelationships"]["edges"]]
    assert relationship["family"]["displayName"] == SECOND_FAMILY[1]
    vault = await gql.data(
        "query($f: ID!) { vault(familyId: $f) { evidence { edges { node { title } } } } }",
        {"f": relationship["family"]["id"]},
        priya,
    )
    assert len(vault["vault"]["evidence"]["edges"]) == 2
    [grant] = relationship["vaultGrants"]
    async with gql.socket(priya) as sock:
        await sock.ack()
        after = await cursor_now(
            user_channel(db_id((await gql.data("{ viewer { id } }", token=priya))["viewer"]["id"]))
        )
        op = await sock.subscribe(
            "subscription($a: String) { accessRevoked(after: $a) { reason vaultGrant { id } } }", {"a": after}
        )
        revoked = await gql.data(
            "mutation($g: ID!) { revokeVaultAccess(input: {grantId: $g}) { userErrors { code } } }",
            {"g": grant["id"]},
            chris,
        )
        assert revoked["revokeVaultAccess"]["userErrors"] == []
        event = (await sock.next_event(op))["data"]["accessRevoked"]
    assert event == {"reason": "REVOKED_BY_FAMILY", "vaultGrant": {"id": grant["id"]}}
