"""Text hygiene (SPEC §12): single-line text refuses control characters (C0 and C1), bidi controls and
values made only of invisible characters, and is stored NFC-normalised; multi-line text keeps only
newlines and tabs of the controls. One function does it for every text input."""

from __future__ import annotations

import pytest

from models.families import Child
from models.support import Message
from models.vault import Evidence
from tests.client import GraphQLClient
from tests.factories import ADD_CHILD, add_child, sign_up
from tests.test_support_requests import SEND_MESSAGE
from tests.test_vault import ADD_EVIDENCE, _supported

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE
REFUSED_IN_NAMES = [
    ("Ale" + RLO + "xa", "INVALID"),
    ("Alex\u2066a\u2069", "INVALID"),  # bidi isolates
    ("Al\x85ex", "INVALID"),  # C1: NEXT LINE (at either end it is trimmed, as whitespace)
    ("Al\x9bex", "INVALID"),  # C1: CONTROL SEQUENCE INTRODUCER
    ("Al\x1bex", "INVALID"),  # C0: ESCAPE
    ("Al\x7fex", "INVALID"),  # DEL
    ("Al\nex", "INVALID"),  # a name is one line
    ("Al\u2028ex", "INVALID"),  # LINE SEPARATOR
    ("\u200b\u200b", "REQUIRED"),  # zero-width spaces only
    ("\u200d\ufeff \u2060", "REQUIRED"),  # joiner, BOM, space, word joiner
]


@pytest.mark.parametrize(("name", "code"), REFUSED_IN_NAMES)
async def test_a_name_with_controls_bidi_overrides_or_nothing_visible_is_refused(
    gql: GraphQLClient, name: str, code: str
) -> None:
    family = await sign_up(gql)
    data = await gql.data(
        ADD_CHILD, {"input": {"displayName": name, "dateOfBirth": "2016-03-14"}}, family.token
    )
    assert data["addChild"]["child"] is None
    assert [(e["code"], e["field"]) for e in data["addChild"]["userErrors"]] == [(code, "displayName")]
    assert await Child.all().count() == 0


async def test_names_and_titles_are_stored_nfc_normalised(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    decomposed = "Ame\u0301lie"  # e + COMBINING ACUTE ACCENT
    child = await add_child(gql, family, displayName=decomposed, localAuthority="Lie\u0300ge")
    stored = await Child.get()
    assert (stored.display_name, stored.local_authority) == ("Am\u00e9lie", "Li\u00e8ge")
    data = await gql.data(
        ADD_EVIDENCE,
        {
            "input": {
                "childId": child,
                "title": "  Cafe\u0301 report ",
                "category": "EP_REPORT",
                "date": "2025-05-01",
                "description": "Line one\r\nLine\ttwo\rthree",
            }
        },
        family.token,
    )
    assert data["addEvidence"]["evidence"]["title"] == "Caf\u00e9 report"
    evidence = await Evidence.get()
    assert (evidence.title, evidence.description) == ("Caf\u00e9 report", "Line one\nLine\ttwo\nthree")


async def test_a_name_may_hold_joiners_inside_visible_text(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    # An emoji family is joined by ZERO WIDTH JOINERs: visible, and not a control.
    name = "Sam \U0001f468\u200d\U0001f469\u200d\U0001f467"
    await add_child(gql, family, displayName=name)
    assert (await Child.get()).display_name == name


@pytest.mark.parametrize("body", ["Hello " + RLO + "olleh", "Hello\x85there", "Hi\x07", "\u200b"])
async def test_multi_line_text_keeps_newlines_and_tabs_only(gql: GraphQLClient, body: str) -> None:
    _, _, adv, _, relationship = await _supported(gql)
    before = await Message.all().count()
    refused = await gql.data(
        SEND_MESSAGE, {"input": {"relationshipId": relationship, "body": body}}, adv.token
    )
    assert refused["sendMessage"]["message"] is None
    assert [e["field"] for e in refused["sendMessage"]["userErrors"]] == ["body"]
    kept = await gql.data(
        SEND_MESSAGE,
        {"input": {"relationshipId": relationship, "body": "Dear family,\r\n\n\tSee you on Monday.\n"}},
        adv.token,
    )
    assert kept["sendMessage"]["userErrors"] == []
    assert kept["sendMessage"]["message"]["body"] == "Dear family,\n\n\tSee you on Monday."
    assert await Message.all().count() == before + 1
