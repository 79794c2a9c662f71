"""Who may read each part of a Vault, and who may change grants and relationships."""

from __future__ import annotations

from typing import Any

from tests.client import GraphQLClient
from tests.factories import add_child, admin, advocate, api_token, send_request, sign_up, user_cursor
from tests.test_support_requests import ACCEPT
from tests.test_vault import END, GRANT, REVOKE, _evidence, _grant

FIELDS = {
    "children": "children { displayName }",
    "evidence": "evidence { edges { node { title } } }",
    "timeline": "timeline { edges { node { title } } }",
    "ehcpCases": "ehcpCases { stage }",
}


def _read(field: str) -> str:
    return f"query($f: ID!) {{ vault(familyId: $f) {{ {FIELDS[field]} }} }}"


def _seen(body: dict[str, Any], field: str) -> str:
    """What a caller got: DATA, NOTHING (an empty list, nothing shared), or REFUSED."""
    if body.get("errors"):
        return "REFUSED:" + str(body["errors"][0]["extensions"]["code"])
    vault = body["data"]["vault"]
    if vault is None:
        return "REFUSED:NULL"
    value = vault[field]
    items = value["edges"] if isinstance(value, dict) else value
    return "DATA" if items else "NOTHING"


async def test_vault_read_matrix(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    alex = await add_child(gql, family)
    jo = await add_child(gql, family, displayName="Jo")
    await _evidence(gql, family, alex)
    await _evidence(gql, family, jo, "Jo's report")
    for child in (alex, jo):
        await gql.data(
            'mutation($c: ID!) { addTimelineEntry(input: {childId: $c, date: "2025-01-01", title: "T"}) {'
            " userErrors { code } } }",
            {"c": child},
            family.token,
        )
        await gql.data(
            "mutation($c: ID!) { updateEhcpCase(input: {childId: $c, stage: ASSESSING})"
            " { userErrors { code } } }",
            {"c": child},
            family.token,
        )

    async def supporting(scopes: list[str], children: list[str]) -> str:
        adv = await advocate(gql)
        request = await send_request(gql, family, adv.advocate_id, children[0])
        rel = (await gql.data(ACCEPT, {"input": {"requestId": request["supportRequest"]["id"]}}, adv.token))[
            "acceptSupportRequest"
        ]["supportRequest"]["relationship"]["id"]
        await _grant(gql, family, rel, children[0], scopes=scopes, childIds=children)
        return adv.token

    full = await supporting(["EVIDENCE", "TIMELINE", "EHCP_CASE"], [alex])
    evidence_only = await supporting(["EVIDENCE"], [jo])
    former_adv = await advocate(gql)
    request = await send_request(gql, family, former_adv.advocate_id, jo)
    rel = (
        await gql.data(ACCEPT, {"input": {"requestId": request["supportRequest"]["id"]}}, former_adv.token)
    )["acceptSupportRequest"]["supportRequest"]["relationship"]["id"]
    await _grant(gql, family, rel, jo, scopes=["EVIDENCE", "TIMELINE", "EHCP_CASE"], childIds=[jo])
    await gql.data(END, {"input": {"relationshipId": rel, "reason": "RESOLVED"}}, family.token)
    callers = {
        "anonymous": None,
        "family": family.token,
        "family_token_read": await api_token(gql, family, ["VAULT_READ"]),
        "family_token_no_read": await api_token(gql, family, ["REQUESTS_READ"]),
        "other_family": (await sign_up(gql)).token,
        "advocate_full_grant_alex": full,
        "advocate_evidence_only_jo": evidence_only,
        "former_advocate": former_adv.token,
        "other_advocate": (await advocate(gql)).token,
        "admin": (await admin(gql)).token,
    }
    expected = {
        "anonymous": dict.fromkeys(FIELDS, "REFUSED:UNAUTHENTICATED"),
        "family": dict.fromkeys(FIELDS, "DATA"),
        "family_token_read": dict.fromkeys(FIELDS, "DATA"),
        "family_token_no_read": dict.fromkeys(FIELDS, "REFUSED:FORBIDDEN"),
        "other_family": dict.fromkeys(FIELDS, "REFUSED:NULL"),
        "advocate_full_grant_alex": dict.fromkeys(FIELDS, "DATA"),
        "advocate_evidence_only_jo": {
            "children": "DATA",
            "evidence": "DATA",
            "timeline": "NOTHING",
            "ehcpCases": "NOTHING",
        },
        "former_advocate": dict.fromkeys(FIELDS, "REFUSED:NULL"),
        "other_advocate": dict.fromkeys(FIELDS, "REFUSED:NULL"),
        "admin": dict.fromkeys(FIELDS, "REFUSED:NULL"),
    }
    seen = {
        caller: {
            field: _seen(await gql(_read(field), {"f": family.family_id}, token), field) for field in FIELDS
        }
        for caller, token in callers.items()
    }
    assert seen == expected
    # What the evidence-only advocate sees is Jo's, never Alex's.
    body = await gql(_read("evidence"), {"f": family.family_id}, evidence_only)
    assert [e["node"]["title"] for e in body["data"]["vault"]["evidence"]["edges"]] == ["Jo's report"]


async def test_grant_revoke_and_end_matrix(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    child = await add_child(gql, family)
    adv = await advocate(gql)
    request = await send_request(gql, family, adv.advocate_id, child)
    rel = (await gql.data(ACCEPT, {"input": {"requestId": request["supportRequest"]["id"]}}, adv.token))[
        "acceptSupportRequest"
    ]["supportRequest"]["relationship"]["id"]
    others = {
        "anonymous": None,
        "other_family": (await sign_up(gql)).token,
        "advocate": adv.token,
        "other_advocate": (await advocate(gql)).token,
        "admin": (await admin(gql)).token,
        "family_token_no_write": await api_token(gql, family, ["VAULT_READ", "REQUESTS_READ"]),
    }
    grant_input = {"relationshipId": rel, "scopes": ["EVIDENCE"], "childIds": [child]}
    expected_grant = {
        "anonymous": "UNAUTHENTICATED",
        "other_family": "NOT_FOUND",
        "advocate": "FORBIDDEN",
        "other_advocate": "FORBIDDEN",
        "admin": "FORBIDDEN",
        "family_token_no_write": "FORBIDDEN",
    }
    for caller, token in others.items():
        body = await gql(GRANT, {"input": grant_input}, token)
        code = (
            body["errors"][0]["extensions"]["code"]
            if body.get("errors")
            else body["data"]["grantVaultAccess"]["userErrors"][0]["code"]
        )
        assert code == expected_grant[caller], caller
    grant_id = (await _grant(gql, family, rel, child))["vaultGrant"]["id"]
    for caller, token in others.items():
        body = await gql(REVOKE, {"input": {"grantId": grant_id}}, token)
        code = (
            body["errors"][0]["extensions"]["code"]
            if body.get("errors")
            else body["data"]["revokeVaultAccess"]["userErrors"][0]["code"]
        )
        assert code == expected_grant[caller], caller
    expected_end = {**expected_grant, "advocate": "OK", "admin": "FORBIDDEN", "other_advocate": "NOT_FOUND"}
    expected_end["family_token_no_write"] = "FORBIDDEN"
    for caller in [
        "anonymous",
        "other_family",
        "other_advocate",
        "admin",
        "family_token_no_write",
        "advocate",
    ]:
        body = await gql(END, {"input": {"relationshipId": rel, "reason": "OTHER"}}, others[caller])
        if body.get("errors"):
            code = body["errors"][0]["extensions"]["code"]
        else:
            errors = body["data"]["endSupportRelationship"]["userErrors"]
            code = errors[0]["code"] if errors else "OK"
        assert code == expected_end[caller], caller


async def test_access_revoked_is_only_for_the_advocate_concerned(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    child = await add_child(gql, family)
    adv = await advocate(gql)
    other = await advocate(gql)
    request = await send_request(gql, family, adv.advocate_id, child)
    rel = (await gql.data(ACCEPT, {"input": {"requestId": request["supportRequest"]["id"]}}, adv.token))[
        "acceptSupportRequest"
    ]["supportRequest"]["relationship"]["id"]
    await _grant(gql, family, rel, child)
    query = "subscription($after: String) { accessRevoked(after: $after) { reason } }"
    async with gql.socket(family.token) as fam, gql.socket(other.token) as oth, gql.socket(adv.token) as mine:
        for sock in (fam, oth, mine):
            await sock.ack()
        fam_op = await fam.subscribe(query)
        assert (await fam.next_event(fam_op))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        await oth.subscribe(query)
        op = await mine.subscribe(query, {"after": await user_cursor(adv)})
        await gql.data(END, {"input": {"relationshipId": rel, "reason": "RESOLVED"}}, family.token)
        assert (await mine.next_event(op))["data"]["accessRevoked"]["reason"] == "RELATIONSHIP_ENDED"
        await oth.expect_silence(0.5)


def _outcome(body: dict[str, Any], field: str) -> str:
    """OK, the first user error's code, or the top-level error's code."""
    if body.get("errors"):
        return str(body["errors"][0]["extensions"]["code"])
    errors = body["data"][field]["userErrors"]
    return str(errors[0]["code"]) if errors else "OK"


ADD_TIMELINE = """
mutation($input: AddTimelineEntryInput!) {
  addTimelineEntry(input: $input) { timelineEntry { id } userErrors { code field } }
}
"""
UPDATE_CASE = """
mutation($input: UpdateEhcpCaseInput!) {
  updateEhcpCase(input: $input) { ehcpCase { stage } userErrors { code field } }
}
"""
DELETE_EVIDENCE = """
mutation($input: DeleteEvidenceInput!) {
  deleteEvidence(input: $input) { evidence { id } userErrors { code field } }
}
"""
ADD_EVIDENCE = """
mutation($input: AddEvidenceInput!) {
  addEvidence(input: $input) { evidence { id } userErrors { code field } }
}
"""
LEAVE_REVIEW = """
mutation($input: LeaveReviewInput!) {
  leaveReview(input: $input) { review { id } userErrors { code field } }
}
"""
HIDE_REVIEW = """
mutation($input: HideReviewInput!) {
  hideReview(input: $input) { review { hidden } userErrors { code field } }
}
"""


async def test_vault_record_mutations_matrix(gql: GraphQLClient) -> None:
    """Only the family (or its token with VAULT_WRITE) changes its records; others are refused."""
    family = await sign_up(gql)
    child = await add_child(gql, family)
    adv = await advocate(gql)
    request = await send_request(gql, family, adv.advocate_id, child)
    rel = (await gql.data(ACCEPT, {"input": {"requestId": request["supportRequest"]["id"]}}, adv.token))[
        "acceptSupportRequest"
    ]["supportRequest"]["relationship"]["id"]
    await _grant(gql, family, rel, child, scopes=["EVIDENCE", "TIMELINE", "EHCP_CASE"])
    callers = {
        "anonymous": None,
        "family": family.token,
        "family_token_write": await api_token(gql, family, ["VAULT_WRITE"]),
        "family_token_read_only": await api_token(gql, family, ["VAULT_READ"]),
        "other_family": (await sign_up(gql)).token,
        "advocate_with_grant": adv.token,
        "other_advocate": (await advocate(gql)).token,
        "admin": (await admin(gql)).token,
    }
    expected = {
        "anonymous": "UNAUTHENTICATED",
        "family": "OK",
        "family_token_write": "OK",
        "family_token_read_only": "FORBIDDEN",
        "other_family": "NOT_FOUND",
        "advocate_with_grant": "FORBIDDEN",
        "other_advocate": "FORBIDDEN",
        "admin": "FORBIDDEN",
    }
    evidence_input = {"childId": child, "title": "Report", "category": "MEDICAL", "date": "2025-01-01"}
    timeline_input = {"childId": child, "date": "2025-01-01", "title": "Meeting"}
    case_input = {"childId": child, "stage": "DRAFT_PLAN"}
    for caller, token in callers.items():
        seen = {
            "addEvidence": _outcome(await gql(ADD_EVIDENCE, {"input": evidence_input}, token), "addEvidence"),
            "addTimelineEntry": _outcome(
                await gql(ADD_TIMELINE, {"input": timeline_input}, token), "addTimelineEntry"
            ),
            "updateEhcpCase": _outcome(
                await gql(UPDATE_CASE, {"input": case_input}, token), "updateEhcpCase"
            ),
            "deleteEvidence": _outcome(
                await gql(
                    DELETE_EVIDENCE, {"input": {"evidenceId": await _evidence(gql, family, child)}}, token
                ),
                "deleteEvidence",
            ),
        }
        assert seen == dict.fromkeys(seen, expected[caller]), caller


async def test_review_matrix(gql: GraphQLClient) -> None:
    """The relationship's family reviews; only a signed-in admin hides; everyone else is refused."""
    family = await sign_up(gql)
    child = await add_child(gql, family)
    adv = await advocate(gql)
    request = await send_request(gql, family, adv.advocate_id, child)
    rel = (await gql.data(ACCEPT, {"input": {"requestId": request["supportRequest"]["id"]}}, adv.token))[
        "acceptSupportRequest"
    ]["supportRequest"]["relationship"]["id"]
    await gql.data(END, {"input": {"relationshipId": rel, "reason": "RESOLVED"}}, family.token)
    boss = await admin(gql)
    callers = {
        "anonymous": None,
        "family_token_read_only": await api_token(gql, family, ["REQUESTS_READ"]),
        "other_family": (await sign_up(gql)).token,
        "advocate": adv.token,
        "other_advocate": (await advocate(gql)).token,
        "admin": boss.token,
        "family_token_write": await api_token(gql, family, ["REQUESTS_WRITE"]),
    }
    expected_review = {
        "anonymous": "UNAUTHENTICATED",
        "family_token_read_only": "FORBIDDEN",
        "other_family": "NOT_FOUND",
        "advocate": "FORBIDDEN",
        "other_advocate": "FORBIDDEN",
        "admin": "FORBIDDEN",
        "family_token_write": "OK",
    }
    review_input = {"relationshipId": rel, "rating": 4, "text": "Helpful"}
    for caller, token in callers.items():
        body = await gql(LEAVE_REVIEW, {"input": review_input}, token)
        assert _outcome(body, "leaveReview") == expected_review[caller], caller
    review_id = (
        await gql.data(
            "query($a: ID!) { advocate(id: $a) { reviews { edges { node { id } } } } }",
            {"a": adv.advocate_id},
        )
    )["advocate"]["reviews"]["edges"][0]["node"]["id"]
    expected_hide = {
        **dict.fromkeys(callers, "FORBIDDEN"),
        "anonymous": "UNAUTHENTICATED",
        "admin": "OK",
    }
    expected_hide["family"] = "FORBIDDEN"
    for caller, token in {**callers, "family": family.token}.items():
        body = await gql(HIDE_REVIEW, {"input": {"reviewId": review_id}}, token)
        assert _outcome(body, "hideReview") == expected_hide[caller], caller


async def test_relationship_and_family_reads_matrix(gql: GraphQLClient) -> None:
    """Relationships, grants and the access log: the two parties see theirs, nobody else anything."""
    family = await sign_up(gql)
    child = await add_child(gql, family)
    adv = await advocate(gql)
    request = await send_request(gql, family, adv.advocate_id, child)
    rel = (await gql.data(ACCEPT, {"input": {"requestId": request["supportRequest"]["id"]}}, adv.token))[
        "acceptSupportRequest"
    ]["supportRequest"]["relationship"]["id"]
    grant_id = (await _grant(gql, family, rel, child))["vaultGrant"]["id"]
    await _evidence(gql, family, child)
    await gql.data(_read("evidence"), {"f": family.family_id}, adv.token)  # one logged read
    callers = {
        "anonymous": None,
        "family": family.token,
        "family_token_read": await api_token(gql, family, ["REQUESTS_READ", "VAULT_READ"]),
        "family_token_no_scope": await api_token(gql, family, ["NOTIFICATIONS_READ"]),
        "other_family": (await sign_up(gql)).token,
        "advocate": adv.token,
        "other_advocate": (await advocate(gql)).token,
        "admin": (await admin(gql)).token,
    }
    relationships_query = "query { supportRelationships { edges { node { id } } } }"
    node_query = """
    query($r: ID!, $g: ID!, $f: ID!) {
      rel: node(id: $r) { id }
      grant: node(id: $g) { id }
      family: node(id: $f) {
        ... on Family { vaultGrants { id } vaultAccessLog { edges { node { what } } } }
      }
    }
    """

    def listed(body: dict[str, Any]) -> str:
        if body.get("errors"):
            return str(body["errors"][0]["extensions"]["code"])
        return "MINE" if body["data"]["supportRelationships"]["edges"] else "NONE"

    def nodes(body: dict[str, Any]) -> str:
        if body.get("errors"):
            return str(body["errors"][0]["extensions"]["code"])
        data = body["data"]
        family_node = data["family"] or {}
        return "/".join(
            [
                "rel" if data["rel"] else "-",
                "grant" if data["grant"] else "-",
                "log" if family_node.get("vaultAccessLog", {}).get("edges") else "-",
            ]
        )

    expected = {
        "anonymous": ("UNAUTHENTICATED", "-/-/-"),
        "family": ("MINE", "rel/grant/log"),
        "family_token_read": ("MINE", "rel/grant/log"),
        "family_token_no_scope": ("FORBIDDEN", "FORBIDDEN"),
        "other_family": ("NONE", "-/-/-"),
        "advocate": ("MINE", "rel/grant/-"),
        "other_advocate": ("NONE", "-/-/-"),
        "admin": ("FORBIDDEN", "-/-/-"),
    }
    variables = {"r": rel, "g": grant_id, "f": family.family_id}
    seen = {
        caller: (
            listed(await gql(relationships_query, token=token)),
            nodes(await gql(node_query, variables, token)),
        )
        for caller, token in callers.items()
    }
    assert seen == expected
    grant_alone = await gql(
        "query($g: ID!) { node(id: $g) { id } }", {"g": grant_id}, callers["family_token_no_scope"]
    )
    assert grant_alone["data"]["node"] is None


async def test_access_revoked_subscription_matrix(gql: GraphQLClient) -> None:
    """Subscribing: the advocate (or its token with EVENTS_SUBSCRIBE) only; anonymous sockets close."""
    family = await sign_up(gql)
    child = await add_child(gql, family)
    adv = await advocate(gql)
    request = await send_request(gql, family, adv.advocate_id, child)
    rel = (await gql.data(ACCEPT, {"input": {"requestId": request["supportRequest"]["id"]}}, adv.token))[
        "acceptSupportRequest"
    ]["supportRequest"]["relationship"]["id"]
    await _grant(gql, family, rel, child)
    query = "subscription($after: String) { accessRevoked(after: $after) { reason } }"
    refused = {
        "family": family.token,
        "family_token": await api_token(gql, family, ["EVENTS_SUBSCRIBE", "VAULT_READ"]),
        "admin": (await admin(gql)).token,
        "advocate_token_without_events": await api_token(gql, adv, ["VAULT_READ", "REQUESTS_READ"]),
    }
    for caller, token in refused.items():
        async with gql.socket(token) as sock:
            await sock.ack()
            op = await sock.subscribe(query)
            assert (await sock.next_event(op))["errors"][0]["extensions"]["code"] == "FORBIDDEN", caller
    async with gql.socket(None) as anonymous:
        assert await anonymous.closed_code() == 4403
    adv_token = await api_token(gql, adv, ["EVENTS_SUBSCRIBE", "VAULT_READ"])
    async with gql.socket(adv_token) as integrator, gql.socket(adv.token) as session:
        await integrator.ack()
        await session.ack()
        after = await user_cursor(adv)
        ops = [
            (integrator, await integrator.subscribe(query, {"after": after})),
            (session, await session.subscribe(query, {"after": after})),
        ]
        await gql.data(END, {"input": {"relationshipId": rel, "reason": "RESOLVED"}}, family.token)
        for sock, op in ops:
            assert (await sock.next_event(op))["data"]["accessRevoked"]["reason"] == "RELATIONSHIP_ENDED"


async def test_grants_listed_under_a_relationship_need_the_vault_read_scope(gql: GraphQLClient) -> None:
    """A token that may read requests but not the Vault sees the relationship, not its grants."""
    family = await sign_up(gql)
    child = await add_child(gql, family)
    adv = await advocate(gql)
    request = await send_request(gql, family, adv.advocate_id, child)
    rel = (await gql.data(ACCEPT, {"input": {"requestId": request["supportRequest"]["id"]}}, adv.token))[
        "acceptSupportRequest"
    ]["supportRequest"]["relationship"]["id"]
    await _grant(gql, family, rel, child)
    query = "query($r: ID!) { node(id: $r) { ... on SupportRelationship { id vaultGrants { id } } } }"
    seen = {
        caller: (await gql.data(query, {"r": rel}, token))["node"]
        for caller, token in {
            "family": family.token,
            "advocate": adv.token,
            "family_requests_only": await api_token(gql, family, ["REQUESTS_READ"]),
            "advocate_requests_only": await api_token(gql, adv, ["REQUESTS_READ"]),
            "family_requests_and_vault": await api_token(gql, family, ["REQUESTS_READ", "VAULT_READ"]),
        }.items()
    }
    assert {caller: len(node["vaultGrants"]) for caller, node in seen.items()} == {
        "family": 1,
        "advocate": 1,
        "family_requests_only": 0,
        "advocate_requests_only": 0,
        "family_requests_and_vault": 1,
    }
