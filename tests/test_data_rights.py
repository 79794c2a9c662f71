"""The family's rights over its data (SPEC §16), through the API against a real database and the
real document store: a rich family's export holds every item and only its holder can fetch it;
its erasure leaves nothing of it in any table, stored object or log line, what the advocate keeps
is as the spec says, and a crash between steps resumes to the same end; deleting a child or a
timeline entry."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from tortoise import Tortoise

from models.accounts import User
from models.rights import DataExport, ErasureRecord
from resolvers import erasure, exports
from resolvers.clock import Clock
from tests.client import GraphQLClient
from tests.conftest import Live
from tests.documents import EP_REPORT, upload
from tests.factories import (
    PASSWORD,
    Account,
    add_child,
    admin,
    advocate,
    db_id,
    erase_now,
    send_request,
    sign_up,
    sweep,
)
from tests.test_support_requests import ACCEPT, SEND_MESSAGE
from tests.test_vault import END, GRANT, REVIEW

ADD_EVIDENCE = """
mutation($i: AddEvidenceInput!) { addEvidence(input: $i) { evidence { id } userErrors { code } } }
"""
ADD_ENTRY = """
mutation($i: AddTimelineEntryInput!) {
  addTimelineEntry(input: $i) { timelineEntry { id } userErrors { code } }
}
"""
UPDATE_CASE = """
mutation($i: UpdateEhcpCaseInput!) { updateEhcpCase(input: $i) { ehcpCase { stage } userErrors { code } } }
"""
READ_VAULT = "query($f: ID!) { vault(familyId: $f) { evidence { edges { node { title } } } } }"
REQUEST_EXPORT = "mutation { requestDataExport { dataExport { id status } userErrors { code } } }"
EXPORT = "query($id: ID!) { node(id: $id) { ... on DataExport { status byteSize downloadUrl expiresAt } } }"
DELETE_ACCOUNT = """
mutation($p: String!) {
  deleteAccount(input: {password: $p}) { viewer { erasureDueAt } userErrors { code field } }
}
"""
CANCEL = "mutation { cancelAccountDeletion { viewer { erasureDueAt } userErrors { code } } }"


class Rich:
    """A family with some of everything, its advocate, and the words that are the family's own."""

    def __init__(self, family: Account, adv: Account, secrets: list[str], ids: dict[str, str]) -> None:
        self.family = family
        self.adv = adv
        self.secrets = secrets
        self.ids = ids


async def _rich_family(gql: GraphQLClient) -> Rich:
    tag = db_id(gql_id := (await sign_up(gql)).user_id)  # a number of this test's own
    family = await sign_up(gql, displayName=f"Morgan Family {tag}", email=f"morgan{tag}@example.test")
    del gql_id
    child_name, sibling_name = f"Ariadne {tag}", f"Bartholomew {tag}"
    child = await add_child(gql, family, displayName=child_name)
    sibling = await add_child(gql, family, displayName=sibling_name, localAuthority=f"Wessex {tag}")
    evidence_title = f"Educational psychology report {tag}"
    made = await gql.data(
        ADD_EVIDENCE,
        {"i": {"childId": child, "title": evidence_title, "category": "EP_REPORT", "date": "2025-05-01",
               "description": f"Assessment notes {tag}"}},
        family.token,
    )  # fmt: skip
    evidence = made["addEvidence"]["evidence"]["id"]
    document = await upload(gql, family, evidence, filename=f"ep-report-{tag}.pdf")
    entry_title = f"Annual review meeting {tag}"
    await gql.data(ADD_ENTRY, {"i": {"childId": child, "date": "2025-03-01", "title": entry_title,
                                     "note": f"School said {tag}"}}, family.token)  # fmt: skip
    await gql.data(UPDATE_CASE, {"i": {"childId": child, "stage": "ASSESSING"}}, family.token)
    adv = await advocate(gql)
    request_text = f"Please help us with the EHC needs assessment {tag}"
    request_id = (await send_request(gql, family, adv.advocate_id, child, message=request_text))[
        "supportRequest"
    ]["id"]
    accepted = await gql.data(ACCEPT, {"input": {"requestId": request_id}}, adv.token)
    relationship = accepted["acceptSupportRequest"]["supportRequest"]["relationship"]["id"]
    family_message = f"Thank you, the school meeting is on Tuesday {tag}"
    await gql.data(
        SEND_MESSAGE, {"input": {"relationshipId": relationship, "body": family_message}}, family.token
    )
    await gql.data(
        SEND_MESSAGE,
        {"input": {"relationshipId": relationship, "body": "I will join the meeting."}},
        adv.token,
    )
    grant = await gql.data(
        GRANT,
        {
            "input": {
                "relationshipId": relationship,
                "scopes": ["EVIDENCE", "TIMELINE"],
                "childIds": [child, sibling],
            }
        },
        family.token,
    )
    assert grant["grantVaultAccess"]["userErrors"] == []
    await gql.data(READ_VAULT, {"f": family.family_id}, adv.token)  # into the access log
    # An earlier advocate, whose case ended, with the family's review.
    earlier = await advocate(gql)
    old_request = (await send_request(gql, family, earlier.advocate_id, sibling))["supportRequest"]["id"]
    old = await gql.data(ACCEPT, {"input": {"requestId": old_request}}, earlier.token)
    old_relationship = old["acceptSupportRequest"]["supportRequest"]["relationship"]["id"]
    await gql.data(END, {"input": {"relationshipId": old_relationship, "reason": "RESOLVED"}}, family.token)
    review_text = f"Brilliant help with the tribunal {tag}"
    reviewed = await gql.data(
        REVIEW,
        {"input": {"relationshipId": old_relationship, "rating": 5, "text": review_text}},
        family.token,
    )
    assert reviewed["leaveReview"]["userErrors"] == []
    return Rich(
        family,
        adv,
        [family.email, f"Morgan Family {tag}", child_name, sibling_name, evidence_title,
         f"Assessment notes {tag}", f"ep-report-{tag}.pdf", entry_title, f"School said {tag}", request_text,
         family_message, f"Wessex {tag}"],
        {"child": child, "sibling": sibling, "evidence": evidence, "document": document["id"],
         "relationship": relationship, "request": request_id, "review": review_text},
    )  # fmt: skip


async def _ready_export(gql: GraphQLClient, live_server: Live, token: str) -> dict[str, Any]:
    made = await gql.data(REQUEST_EXPORT, token=token)
    export_id = made["requestDataExport"]["dataExport"]["id"]
    assert made["requestDataExport"]["dataExport"]["status"] == "PENDING"
    await exports.run_pending(live_server.app.state.services)
    node = (await gql.data(EXPORT, {"id": export_id}, token))["node"]
    assert node["status"] == "READY", node
    return {"id": export_id, **node}


async def test_a_rich_familys_export_holds_every_item(gql: GraphQLClient, live_server: Live) -> None:
    rich = await _rich_family(gql)
    family = rich.family
    export = await _ready_export(gql, live_server, family.token)
    notified = await gql.data("{ notifications(first: 5) { edges { node { kind } } } }", token=family.token)
    assert "DATA_EXPORT_READY" in [e["node"]["kind"] for e in notified["notifications"]["edges"]]
    response = await gql.http.get(export["downloadUrl"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert int(response.headers["content-length"]) == export["byteSize"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = set(archive.namelist())
    areas = {
        "account.json", "children.json", "evidence.json", "timeline.json", "ehcp_cases.json", "requests.json",
        "messages.json", "relationships.json", "grants.json", "access_log.json", "reviews.json",
        "notifications.json", "README.txt",
    }  # fmt: skip
    assert areas <= names, names
    readme = archive.read("README.txt").decode()
    for name in areas - {"README.txt"}:
        assert name in readme
    data = {name: json.loads(archive.read(name)) for name in areas - {"README.txt"}}
    everything = json.dumps(data)
    for secret in rich.secrets:
        assert secret in everything, secret
    assert data["account.json"]["email"] == family.email
    assert len(data["children.json"]) == 2
    [document] = data["evidence.json"][0]["documents"]
    assert archive.read(document["file"]) == EP_REPORT
    assert data["ehcp_cases.json"][0]["stage"] == "ASSESSING"
    assert {m["fromYou"] for m in data["messages.json"]} == {True, False}
    assert len(data["relationships.json"]) == 2
    assert data["grants.json"][0]["scopes"] == ["EVIDENCE", "TIMELINE"]
    assert data["access_log.json"], "the advocate's read is in the access log"
    assert data["reviews.json"][0]["text"] == rich.ids["review"]
    assert data["notifications.json"]
    # A range of the ZIP, as large downloads resume; a range no file could have is ignored.
    part = await gql.http.get(export["downloadUrl"], headers={"Range": "bytes=0-9"})
    assert part.status_code == 206
    assert part.content == response.content[:10]
    absurd = await gql.http.get(export["downloadUrl"], headers={"Range": "bytes=" + "9" * 5000 + "-"})
    assert absurd.status_code == 200


async def test_only_the_holder_reaches_an_export_and_its_link_ends_with_the_session(
    gql: GraphQLClient, live_server: Live
) -> None:
    family = await sign_up(gql)
    await add_child(gql, family)
    export = await _ready_export(gql, live_server, family.token)
    for other in (await sign_up(gql), await advocate(gql), await admin(gql)):
        assert (await gql.data(EXPORT, {"id": export["id"]}, other.token))["node"] is None
        mine = await gql.data("{ viewer { dataExports { totalCount } } }", token=other.token)
        assert mine["viewer"]["dataExports"]["totalCount"] == 0
    scoped = (
        await gql.data(
            'mutation { createApiToken(input: {name: "All", scopes: [VAULT_READ, REQUESTS_READ]})'
            " { secret } }",
            token=family.token,
        )
    )["createApiToken"]["secret"]
    assert (await gql.data(EXPORT, {"id": export["id"]}, scoped))["node"] is None
    refused = await gql(REQUEST_EXPORT, token=scoped)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    tampered = export["downloadUrl"][:-3] + ("aaa" if not export["downloadUrl"].endswith("aaa") else "bbb")
    assert (await gql.http.get(tampered)).status_code == 404
    assert (await gql.http.get(export["downloadUrl"])).status_code == 200
    await gql.data("mutation { logOut { userErrors { code } } }", token=family.token)
    assert (await gql.http.get(export["downloadUrl"])).status_code == 404


async def test_an_export_expires_after_seven_days_and_its_file_goes(
    gql: GraphQLClient, live_server: Live, clock: Clock
) -> None:
    family = await sign_up(gql)
    export = await _ready_export(gql, live_server, family.token)
    services = live_server.app.state.services
    keys = [k async for k in services.documents.storage.keys(exports.PREFIX)]
    assert exports.object_key(db_id(export["id"]), 1) in keys
    clock.advance(timedelta(days=7, minutes=1))
    await sweep(gql)
    node = (await gql.data(EXPORT, {"id": export["id"]}, family.token))["node"]
    assert node["status"] == "EXPIRED"
    assert node["downloadUrl"] is None
    assert (await gql.http.get(export["downloadUrl"])).status_code == 404
    keys = [k async for k in services.documents.storage.keys(exports.PREFIX)]
    assert exports.object_key(db_id(export["id"]), 1) not in keys


async def test_an_export_that_cannot_be_built_fails_and_another_can_be_asked_for(
    gql: GraphQLClient, live_server: Live
) -> None:
    family = await sign_up(gql)
    services = live_server.app.state.services
    # The served app builds exports every 0.1 s: held off until this one has failed every try.
    async with services.exporting:
        made = await gql.data(REQUEST_EXPORT, token=family.token)
        first = made["requestDataExport"]["dataExport"]["id"]
        await DataExport.filter(id=db_id(first)).update(attempts=exports.MAX_ATTEMPTS)  # every try failed
    await exports.run_pending(services)
    assert (await gql.data(EXPORT, {"id": first}, family.token))["node"]["status"] == "FAILED"
    again = await gql.data(REQUEST_EXPORT, token=family.token)
    assert again["requestDataExport"]["dataExport"]["id"] != first
    assert again["requestDataExport"]["dataExport"]["status"] == "PENDING"


# --- erasure ------------------------------------------------------------------------------------


async def _scan(secrets: list[str]) -> list[tuple[str, str]]:
    """Every table of the database, every row and column, as text: where any secret is found."""
    found: list[tuple[str, str]] = []
    for model in Tortoise.apps["models"].values():
        rows = await model.all().values()
        text = json.dumps(rows, default=str, ensure_ascii=False)
        for secret in secrets:
            if secret in text or secret.lower() in text.lower():
                found.append((model._meta.db_table, secret))
    return found


async def _advocates_view(gql: GraphQLClient, rich: Rich) -> None:
    """What the advocate keeps: the thread, the family's words as "[deleted]", the family as
    "Deleted account", the relationship ended for that reason, the ticket, the review without author."""
    node = await gql.data(
        "query($r: ID!) { node(id: $r) { ... on SupportRelationship { status closeReason"
        " family { displayName } messages { edges { node { body fromViewer } } } } } }",
        {"r": rich.ids["relationship"]},
        rich.adv.token,
    )
    relationship = node["node"]
    assert relationship["status"] == "CLOSED"
    assert relationship["closeReason"] == "ACCOUNT_DELETED"
    bodies = [(e["node"]["fromViewer"], e["node"]["body"]) for e in relationship["messages"]["edges"]]
    assert (False, "[deleted]") in bodies
    assert (True, "I will join the meeting.") in bodies
    assert all(body == "[deleted]" for mine, body in bodies if not mine)
    queue = await gql.data(
        "{ ticketQueue(first: 50) { edges { node { familyDisplayName childDisplayName status } } } }",
        token=rich.adv.token,
    )
    [ticket] = [e["node"] for e in queue["ticketQueue"]["edges"]]
    assert ticket["familyDisplayName"] == "Deleted account"
    assert ticket["childDisplayName"] == "Deleted child"
    notified = await gql.data(
        "{ notifications(first: 50) { edges { node { kind } } } }", token=rich.adv.token
    )
    assert "ACCESS_REVOKED" in [e["node"]["kind"] for e in notified["notifications"]["edges"]]
    reviews = await gql.data(
        "{ advocates(first: 100) { edges { node { reviews { edges { node { text } } } } } } }"
    )
    texts = [r["node"]["text"] for a in reviews["advocates"]["edges"] for r in a["node"]["reviews"]["edges"]]
    assert rich.ids["review"] in texts


async def _erased_everywhere(
    gql: GraphQLClient, live_server: Live, rich: Rich, document_keys: list[str]
) -> None:
    assert await _scan(rich.secrets) == []
    services = live_server.app.state.services
    stored = [k async for k in services.documents.storage.keys("documents/")]
    assert not set(document_keys) & set(stored)
    assert [k async for k in services.documents.storage.keys(exports.PREFIX)] == []
    assert (await gql.data("{ viewer { id } }", token=rich.family.token))["viewer"] is None
    await _advocates_view(gql, rich)
    # The address can sign up again.
    again = await gql.data(
        'mutation($e: String!, $p: String!) { signUp(input: {email: $e, password: $p, displayName: "New",'
        " role: FAMILY}) { token userErrors { code } } }",
        {"e": rich.family.email, "p": PASSWORD},
    )
    assert again["signUp"]["userErrors"] == []


async def _document_keys(family: Account) -> list[str]:
    from models.documents import Document

    rows = await Document.filter(family_id=db_id(family.family_id or "")).values("object_key")
    return [str(r["object_key"]) for r in rows if r["object_key"]]


async def test_erasure_leaves_nothing_of_the_family_and_the_advocate_keeps_what_the_spec_says(
    gql: GraphQLClient, live_server: Live, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    rich = await _rich_family(gql)
    await _ready_export(gql, live_server, rich.family.token)  # its object goes too
    keys = await _document_keys(rich.family)
    assert keys
    wrong = await gql.data(DELETE_ACCOUNT, {"p": "not the password"}, rich.family.token)
    assert wrong["deleteAccount"]["userErrors"] == [{"code": "INVALID_CREDENTIALS", "field": "password"}]
    not_scheduled = await gql.data(CANCEL, token=rich.family.token)
    assert [e["code"] for e in not_scheduled["cancelAccountDeletion"]["userErrors"]] == ["NOT_SCHEDULED"]
    refused = await gql.data(DELETE_ACCOUNT, {"p": PASSWORD}, rich.adv.token)
    assert [e["code"] for e in refused["deleteAccount"]["userErrors"]] == ["NOT_A_FAMILY_ACCOUNT"]
    scheduled = await gql.data(DELETE_ACCOUNT, {"p": PASSWORD}, rich.family.token)
    assert scheduled["deleteAccount"]["userErrors"] == []
    assert scheduled["deleteAccount"]["viewer"]["erasureDueAt"]
    cancelled = await gql.data(CANCEL, token=rich.family.token)
    assert cancelled["cancelAccountDeletion"] == {"viewer": {"erasureDueAt": None}, "userErrors": []}
    clock.advance(timedelta(days=15))
    await sweep(gql)
    assert await _scan(rich.secrets[:1]) != []  # cancelled: nothing erased
    await gql.data(DELETE_ACCOUNT, {"p": PASSWORD}, rich.family.token)
    clock.advance(timedelta(days=13))
    await sweep(gql)
    assert (await gql.data("{ viewer { id } }", token=rich.family.token))["viewer"] is not None  # not yet
    clock.advance(timedelta(days=1, minutes=1))
    await sweep(gql)
    await _erased_everywhere(gql, live_server, rich, keys)
    record = await ErasureRecord.get(user_id=db_id(rich.family.user_id))
    assert record.completed_at is not None
    assert [name for name, _, _ in erasure.STEPS] == record.steps_done
    assert record.counts["documents"] == 1
    assert record.counts["relationships_ended"] == 1
    boss = await admin(gql)
    listed = await gql.data(
        "{ erasureRecords(last: 1) { edges { node { role completedAt counts { kind count } } } } }",
        token=boss.token,
    )
    [node] = [e["node"] for e in listed["erasureRecords"]["edges"]]
    assert {"kind": "evidence", "count": 1} in node["counts"]
    assert (await gql(
        "{ erasureRecords { totalCount } }", token=rich.adv.token
    ))["errors"][0]["extensions"]["code"] == "FORBIDDEN"  # fmt: skip
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in rich.secrets:
        assert secret not in logged, secret


def _export_text(response: Any) -> str:
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    return "".join(archive.read(name).decode() for name in archive.namelist() if name.endswith(".json"))


async def test_an_advocates_export_made_with_an_erased_familys_words_ends_with_the_erasure(
    gql: GraphQLClient, live_server: Live
) -> None:
    """The advocate's copy holds the family's request, messages and child's name. The erasure ends
    it as if its 7 days were up (its link answers 404, its file goes); a new one holds "[deleted]"
    where the family's words were."""
    rich = await _rich_family(gql)
    services = live_server.app.state.services
    before = await _ready_export(gql, live_server, rich.adv.token)
    assert [s for s in rich.secrets if s in _export_text(await gql.http.get(before["downloadUrl"]))]
    await erase_now(services, db_id(rich.family.user_id))
    node = (await gql.data(EXPORT, {"id": before["id"]}, rich.adv.token))["node"]
    assert (node["status"], node["downloadUrl"]) == ("EXPIRED", None)
    assert (await gql.http.get(before["downloadUrl"])).status_code == 404
    assert [k async for k in services.documents.storage.keys(exports.PREFIX)] == []
    after = await _ready_export(gql, live_server, rich.adv.token)
    text = _export_text(await gql.http.get(after["downloadUrl"]))
    assert "[deleted]" in text
    assert [s for s in rich.secrets if s in text] == []


async def test_an_advocates_export_being_built_during_an_erasure_is_built_again_without_the_family(
    gql: GraphQLClient, live_server: Live
) -> None:
    """A build claimed before the erasure committed, and finishing after it, may have read the
    family's words: it throws its file away, and the export is built again from what the erasure
    left."""
    rich = await _rich_family(gql)
    services = live_server.app.state.services
    async with services.exporting:  # the served app's builder waits: this test builds it
        made = await gql.data(REQUEST_EXPORT, token=rich.adv.token)
        export_id = made["requestDataExport"]["dataExport"]["id"]
        claimed = await exports._claim(services)
        assert claimed is not None
        assert claimed.id == db_id(export_id)
        await erase_now(services, db_id(rich.family.user_id))
        await exports._build(services, services.documents, claimed)
    node = (await gql.data(EXPORT, {"id": export_id}, rich.adv.token))["node"]
    assert node["status"] == "PENDING"
    assert [k async for k in services.documents.storage.keys(exports.PREFIX)] == []
    await exports.run_pending(services)
    node = (await gql.data(EXPORT, {"id": export_id}, rich.adv.token))["node"]
    assert node["status"] == "READY"
    text = _export_text(await gql.http.get(node["downloadUrl"]))
    assert [s for s in rich.secrets if s in text] == []


async def test_a_crash_between_erasure_steps_resumes_to_the_same_end(
    gql: GraphQLClient, live_server: Live, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    rich = await _rich_family(gql)
    keys = await _document_keys(rich.family)
    services = live_server.app.state.services
    user_id = db_id(rich.family.user_id)

    async def crash(*_: Any) -> erasure.Done:
        raise RuntimeError("the process stopped here")

    steps = list(erasure.STEPS)
    crashing = [n for n, _, _ in steps].index("scrub_conversations")
    name, _, atomic = steps[crashing]
    stopping = [*steps[:crashing], (name, crash, atomic), *steps[crashing + 1 :]]
    # The app's own sweep (every 0.1 s in tests) is held off, so that this test alone runs the
    # erasure: first the process that stops half-way, then the sweep that finds it unfinished.
    async with services.sweeping:
        monkeypatch.setattr(erasure, "STEPS", stopping)
        await User.filter(id=user_id).update(erasure_due_at=services.clock.now())  # as the grace period ends
        with pytest.raises(RuntimeError):
            await erasure.erase(services, user_id)
        record = await ErasureRecord.get(user_id=user_id)
        assert record.steps_done == [n for n, _, _ in steps[:crashing]]
        assert record.completed_at is None
        # Half-erased: the Vault is gone, the family's words are not yet; and while the lease of the
        # process that stopped lasts, no other takes the erasure over. Meanwhile the account can do
        # nothing: its sessions ended at the first step, and it cannot sign in again.
        assert await _scan([rich.secrets[0]]) != []
        assert (await gql.data("{ viewer { id } }", token=rich.family.token))["viewer"] is None
        log_in = (
            "mutation($e: String!, $p: String!) {"
            " logIn(input: {email: $e, password: $p}) { token userErrors { code } } }"
        )
        signing_in = await gql.data(log_in, {"e": rich.family.email, "p": PASSWORD})
        assert signing_in["logIn"] == {"token": None, "userErrors": [{"code": "ACCOUNT_SUSPENDED"}]}
        monkeypatch.setattr(erasure, "STEPS", steps)
        await erasure.run_due(services)
        assert (await ErasureRecord.get(user_id=user_id)).completed_at is None
        clock.advance(erasure.LEASE + timedelta(seconds=1))
        await erasure.run_due(services)  # a sweep after the lease finds the unfinished erasure
        record = await ErasureRecord.get(user_id=user_id)
        assert record.completed_at is not None
    assert record.steps_done == [n for n, _, _ in steps]
    await _erased_everywhere(gql, live_server, rich, keys)
    # Running it again changes nothing.
    again = await erasure.erase(services, user_id)
    assert again is not None
    assert again.counts == record.counts


# --- deleting a child or a timeline entry ---------------------------------------------------------

DELETE_CHILD = """
mutation($c: ID!) { deleteChild(input: {childId: $c}) { child { displayName } userErrors { code field } } }
"""
DELETE_ENTRY = """
mutation($t: ID!) {
  deleteTimelineEntry(input: {timelineEntryId: $t}) { timelineEntry { title } userErrors { code field } }
}
"""
GRANTS = "{ viewer { family { grants { edges { node { status childIds } } } } } }"


async def test_deleting_a_child_takes_its_vault_and_the_grants_only_it_had(
    gql: GraphQLClient, live_server: Live
) -> None:
    family = await sign_up(gql)
    child = await add_child(gql, family, displayName="Zephyrine")
    sibling = await add_child(gql, family, displayName="Quillon")
    adv = await advocate(gql)
    request_id = (await send_request(gql, family, adv.advocate_id, child))["supportRequest"]["id"]
    relationship = (await gql.data(ACCEPT, {"input": {"requestId": request_id}}, adv.token))[
        "acceptSupportRequest"
    ]["supportRequest"]["relationship"]["id"]
    for children in ([child], [child, sibling]):
        body = await gql.data(
            GRANT,
            {"input": {"relationshipId": relationship, "scopes": ["EVIDENCE"], "childIds": children}},
            family.token,
        )
        assert body["grantVaultAccess"]["userErrors"] == []
    made = await gql.data(
        ADD_EVIDENCE,
        {
            "i": {
                "childId": child,
                "title": "Zephyrine's OT report",
                "category": "EP_REPORT",
                "date": "2025-05-01",
            }
        },
        family.token,
    )
    await upload(gql, family, made["addEvidence"]["evidence"]["id"])
    keys = await _document_keys(family)
    open_case = await gql.data(DELETE_CHILD, {"c": child}, family.token)
    assert open_case["deleteChild"]["userErrors"] == [{"code": "CHILD_HAS_OPEN_CASE", "field": "childId"}]
    other = await sign_up(gql)
    theirs = await gql.data(DELETE_CHILD, {"c": child}, other.token)
    assert theirs["deleteChild"]["userErrors"] == [{"code": "NOT_FOUND", "field": "childId"}]
    await gql.data(END, {"input": {"relationshipId": relationship, "reason": "RESOLVED"}}, family.token)
    # A new relationship for the sibling, with a grant covering both, before the child goes.
    request_2 = (await send_request(gql, family, adv.advocate_id, sibling))["supportRequest"]["id"]
    relationship_2 = (await gql.data(ACCEPT, {"input": {"requestId": request_2}}, adv.token))[
        "acceptSupportRequest"
    ]["supportRequest"]["relationship"]["id"]
    await gql.data(
        GRANT,
        {"input": {"relationshipId": relationship_2, "scopes": ["EVIDENCE"], "childIds": [child, sibling]}},
        family.token,
    )
    await gql.data(
        GRANT,
        {"input": {"relationshipId": relationship_2, "scopes": ["TIMELINE"], "childIds": [child]}},
        family.token,
    )
    # The advocate reads the child's evidence: the family's access log names it.
    await gql.data(READ_VAULT, {"f": family.family_id}, adv.token)
    done = await gql.data(DELETE_CHILD, {"c": child}, family.token)
    assert done["deleteChild"] == {"child": {"displayName": "Zephyrine"}, "userErrors": []}
    live = [
        e["node"] for e in (await gql.data(GRANTS, token=family.token))["viewer"]["family"]["grants"]["edges"]
        if e["node"]["status"] == "ACTIVE"
    ]  # fmt: skip
    assert live == [{"status": "ACTIVE", "childIds": [sibling]}]
    children = (await gql.data("{ viewer { family { children { id } } } }", token=family.token))["viewer"][
        "family"
    ]
    assert children["children"] == [{"id": sibling}]
    stored = [k async for k in live_server.app.state.services.documents.storage.keys("documents/")]
    assert not set(keys) & set(stored)
    assert await _scan(["Zephyrine"]) == []
    request = await gql.data(
        "query($r: ID!) { node(id: $r) { ... on SupportRequest { childDisplayName child { id } } } }",
        {"r": request_id},
        family.token,
    )
    assert request["node"] == {"childDisplayName": "Deleted child", "child": None}
    again = await gql.data(DELETE_CHILD, {"c": child}, family.token)
    assert again["deleteChild"]["userErrors"] == [{"code": "NOT_FOUND", "field": "childId"}]


async def test_deleting_a_timeline_entry(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    child = await add_child(gql, family)
    made = await gql.data(
        ADD_ENTRY, {"i": {"childId": child, "date": "2025-03-01", "title": "Phone call"}}, family.token
    )
    entry = made["addTimelineEntry"]["timelineEntry"]["id"]
    other = await sign_up(gql)
    theirs = await gql.data(DELETE_ENTRY, {"t": entry}, other.token)
    assert theirs["deleteTimelineEntry"]["userErrors"] == [{"code": "NOT_FOUND", "field": "timelineEntryId"}]
    read_only = (
        await gql.data(
            'mutation { createApiToken(input: {name: "R", scopes: [VAULT_READ]}) { secret } }',
            token=family.token,
        )
    )["createApiToken"]["secret"]
    assert (await gql(DELETE_ENTRY, {"t": entry}, read_only))["errors"][0]["extensions"][
        "code"
    ] == "FORBIDDEN"
    done = await gql.data(DELETE_ENTRY, {"t": entry}, family.token)
    assert done["deleteTimelineEntry"] == {"timelineEntry": {"title": "Phone call"}, "userErrors": []}
    timeline = await gql.data(
        "query($f: ID!) { vault(familyId: $f) { timeline { totalCount } } }",
        {"f": family.family_id},
        family.token,
    )
    assert timeline["vault"]["timeline"]["totalCount"] == 0
    again = await gql.data(DELETE_ENTRY, {"t": entry}, family.token)
    assert again["deleteTimelineEntry"]["userErrors"] == [{"code": "NOT_FOUND", "field": "timelineEntryId"}]
