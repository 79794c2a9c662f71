"""Accounts people can recover and trust (SPEC §15), driven through the API with mail read from a
real SMTP server (aiosmtpd) the served app sends to: verification, password reset and change,
change of email and its notice, the sessions list, common passwords, per-account throttling and
suspension. Two-factor sign-in is in tests/test_two_factor.py."""

from __future__ import annotations

import asyncio
import email
import re
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

import server
from models.accounts import AccountToken, User
from resolvers.clock import Clock
from resolvers.logs import log_config
from resolvers.mail import ConsoleMailer, Outgoing, SmtpMailer
from tests.client import GraphQLClient, eventually
from tests.conftest import Live, require_service
from tests.factories import PASSWORD, SEND_REQUEST, SIGN_UP, add_child, admin, advocate, sign_up_via_api
from tests.servers import free_port, serve

LOG_IN = """
mutation($e: String!, $p: String!, $otp: String) {
  logIn(input: {email: $e, password: $p, otp: $otp}) { token userErrors { code field } }
}
"""
RESET_REQUEST = "mutation($e: String!) { requestPasswordReset(input: {email: $e}) { userErrors { code } } }"
RESET = """
mutation($t: String!, $p: String!) {
  resetPassword(input: {token: $t, newPassword: $p}) { userErrors { code field } }
}
"""
CHANGE_PASSWORD = """
mutation($c: String!, $p: String!) {
  changePassword(input: {currentPassword: $c, newPassword: $p}) { viewer { id } userErrors { code field } }
}
"""
VERIFY = "mutation($t: String!) { verifyEmail(input: {token: $t}) { user { id } userErrors { code field } } }"
RESEND = "mutation { resendVerificationEmail { userErrors { code } } }"
CHANGE_EMAIL = """
mutation($p: String!, $e: String!) {
  changeEmail(input: {password: $p, newEmail: $e}) { viewer { email } userErrors { code field } }
}
"""
ME = "{ viewer { id email emailVerified } }"
SESSIONS = "{ viewer { sessions { totalCount edges { node { id current userAgent lastUsedAt } } } } }"
REVOKE_SESSION = """
mutation($s: ID!) { revokeSession(input: {sessionId: $s}) { session { id } userErrors { code field } } }
"""
NEW_PASSWORD = "a brand new passphrase"


@dataclass
class Inbox:
    """What a real SMTP server received, by recipient."""

    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]

    async def next_to(self, address: str, seen: int = 0) -> Message:
        """The mail to `address` after the first `seen` of them, once it arrives."""

        async def arrived() -> bool:
            return len(self.to(address)) > seen

        await eventually(arrived, f"mail number {seen + 1} to {address}")
        return self.to(address)[seen]


def text_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no plain-text part")


def html_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no HTML part")


def token_in(message: Message) -> str:
    found = re.search(r"token=(svm_[A-Za-z0-9_-]+)", text_of(message))
    assert found, text_of(message)
    return found.group(1)


@dataclass
class Hesitant(Inbox):
    """An SMTP server that answers the first `refusals` mails with `answer` instead of taking them."""

    refusals: int = 1
    answer: str = "451 4.3.0 Try again later"
    tries: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.tries += 1
        if self.refusals:
            self.refusals -= 1
            return self.answer
        return await super().handle_DATA(server, session, envelope)


@contextmanager
def smtp_server(handler: Inbox | None = None) -> Iterator[tuple[Inbox, int]]:
    inbox = handler or Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
async def inbox(gql: GraphQLClient) -> AsyncIterator[Inbox]:
    """The served app's mail, sent through SMTP to a real server for this test."""
    services = gql.app.state.services
    kept = services.mail
    with smtp_server() as (received, port):
        services.mail = Outgoing(SmtpMailer("127.0.0.1", port, None, None, tls=False))
        try:
            yield received
        finally:
            await services.mail.drain()
            services.mail = kept


async def _verified_sign_up(gql: GraphQLClient, inbox: Inbox, role: str = "FAMILY") -> Any:
    account = await sign_up_via_api(gql, role)
    mail = await inbox.next_to(account.email)
    assert mail["Subject"] == "Confirm your email address for SEN Evidence Vault"
    verified = await gql.data(VERIFY, {"t": token_in(mail)})
    assert verified["verifyEmail"]["userErrors"] == []
    return account


# --- verification ------------------------------------------------------------------------------


async def test_sign_up_mails_a_verification_link_that_unlocks_what_it_gates(
    gql: GraphQLClient, inbox: Inbox
) -> None:
    family = await sign_up_via_api(gql)
    mail = await inbox.next_to(family.email)
    assert "verify-email?token=svm_" in text_of(mail)
    assert 'href="http' in html_of(mail)
    assert (await gql.data(ME, token=family.token))["viewer"]["emailVerified"] is False
    child = await add_child(gql, family)  # the Vault itself works from the start
    # Refused before anything else is looked at: the advocate need not even exist.
    request = {
        "advocateId": "QWR2b2NhdGU6MQ==",
        "childId": child,
        "message": "Please help.",
        "supportTypes": ["EHC_NEEDS_ASSESSMENT"],
    }
    blocked = await gql.data(SEND_REQUEST, {"input": request}, family.token)
    assert [e["code"] for e in blocked["sendSupportRequest"]["userErrors"]] == ["EMAIL_NOT_VERIFIED"]
    adv = await sign_up_via_api(gql, "ADVOCATE")
    refused = await gql.data("mutation { requestVerification { userErrors { code } } }", token=adv.token)
    assert [e["code"] for e in refused["requestVerification"]["userErrors"]] == ["EMAIL_NOT_VERIFIED"]

    assert (await gql.data(VERIFY, {"t": token_in(mail)}))["verifyEmail"]["userErrors"] == []
    assert (await gql.data(ME, token=family.token))["viewer"]["emailVerified"] is True
    again = await gql.data(VERIFY, {"t": token_in(mail)})
    assert [e["code"] for e in again["verifyEmail"]["userErrors"]] == ["INVALID_TOKEN"]
    already = await gql.data(RESEND, token=family.token)
    assert [e["code"] for e in already["resendVerificationEmail"]["userErrors"]] == ["ALREADY_VERIFIED"]


async def test_resending_verification_is_at_most_once_a_minute(
    gql: GraphQLClient, inbox: Inbox, clock: Clock
) -> None:
    family = await sign_up_via_api(gql)
    await inbox.next_to(family.email)
    too_soon = await gql.data(RESEND, token=family.token)
    assert [e["code"] for e in too_soon["resendVerificationEmail"]["userErrors"]] == ["TOO_SOON"]
    clock.advance(timedelta(seconds=61))
    assert (await gql.data(RESEND, token=family.token))["resendVerificationEmail"]["userErrors"] == []
    second = await inbox.next_to(family.email, seen=1)
    assert (await gql.data(VERIFY, {"t": token_in(second)}))["verifyEmail"]["userErrors"] == []


@pytest.mark.parametrize("token", ["", "svm_nope", "not-a-token", "svm_" + "x" * 300])
async def test_a_bad_verification_token_is_invalid_and_changes_nothing(
    gql: GraphQLClient, token: str
) -> None:
    body = await gql.data(VERIFY, {"t": token})
    assert body["verifyEmail"] == {"user": None, "userErrors": [{"code": "INVALID_TOKEN", "field": "token"}]}


async def test_an_expired_verification_link_is_refused(
    gql: GraphQLClient, inbox: Inbox, clock: Clock
) -> None:
    family = await sign_up_via_api(gql)
    mail = await inbox.next_to(family.email)
    clock.advance(timedelta(days=2, minutes=1))
    body = await gql.data(VERIFY, {"t": token_in(mail)})
    assert [e["code"] for e in body["verifyEmail"]["userErrors"]] == ["INVALID_TOKEN"]
    assert (await gql.data(ME, token=family.token))["viewer"]["emailVerified"] is False


# --- password reset ----------------------------------------------------------------------------


async def test_password_reset_by_mail_ends_every_session_and_works_once(
    gql: GraphQLClient, inbox: Inbox
) -> None:
    family = await _verified_sign_up(gql, inbox)
    other = (await gql.data(LOG_IN, {"e": family.email, "p": PASSWORD}))["logIn"]["token"]
    async with gql.socket(other) as sock:
        await sock.ack()
        assert (await gql.data(RESET_REQUEST, {"e": family.email.upper()}))["requestPasswordReset"] == {
            "userErrors": []
        }
        mail = await inbox.next_to(family.email, seen=1)
        assert mail["Subject"] == "Reset your SEN Evidence Vault password"
        token = token_in(mail)
        weak = await gql.data(RESET, {"t": token, "p": "password123"})
        assert weak["resetPassword"]["userErrors"] == [
            {"code": "PASSWORD_TOO_COMMON", "field": "newPassword"}
        ]
        done = await gql.data(RESET, {"t": token, "p": NEW_PASSWORD})
        assert done["resetPassword"]["userErrors"] == []
        assert await sock.closed_code() == 4403
    for ended in (family.token, other):
        assert (await gql.data(ME, token=ended))["viewer"] is None
    old = await gql.data(LOG_IN, {"e": family.email, "p": PASSWORD})
    assert [e["code"] for e in old["logIn"]["userErrors"]] == ["INVALID_CREDENTIALS"]
    assert (await gql.data(LOG_IN, {"e": family.email, "p": NEW_PASSWORD}))["logIn"]["token"]
    reused = await gql.data(RESET, {"t": token, "p": "yet another passphrase"})
    assert reused["resetPassword"]["userErrors"] == [{"code": "INVALID_TOKEN", "field": "token"}]
    notice = await inbox.next_to(family.email, seen=2)
    assert notice["Subject"] == "Your SEN Evidence Vault password was changed"


async def test_a_reset_request_answers_the_same_for_an_unknown_address_and_mails_nobody(
    gql: GraphQLClient, inbox: Inbox
) -> None:
    for address in ("nobody-here@example.test", "not an address", ""):
        body = await gql(RESET_REQUEST, {"e": address})
        assert "errors" not in body
        assert body["data"] == {"requestPasswordReset": {"userErrors": []}}
    await gql.app.state.services.mail.drain()
    assert inbox.messages == []


async def test_two_resets_with_one_token_at_once_one_wins(gql: GraphQLClient, inbox: Inbox) -> None:
    family = await _verified_sign_up(gql, inbox)
    await gql.data(RESET_REQUEST, {"e": family.email})
    token = token_in(await inbox.next_to(family.email, seen=1))
    first, second = await asyncio.gather(
        gql.data(RESET, {"t": token, "p": "first new passphrase"}),
        gql.data(RESET, {"t": token, "p": "second new passphrase"}),
    )
    outcomes = sorted(
        (body["resetPassword"]["userErrors"] == [], password)
        for body, password in ((first, "first new passphrase"), (second, "second new passphrase"))
    )
    assert [won for won, _ in outcomes] == [False, True]
    winner = outcomes[1][1]
    assert (await gql.data(LOG_IN, {"e": family.email, "p": winner}))["logIn"]["token"]


async def test_a_new_password_ends_every_link_mailed_before_it(gql: GraphQLClient, inbox: Inbox) -> None:
    """Someone with the old password asked to move the account to their address; the family
    notices and resets its password: that change of email can no longer be confirmed."""
    family = await _verified_sign_up(gql, inbox)
    elsewhere = f"intruder-{family.email}"
    await gql.data(CHANGE_EMAIL, {"p": PASSWORD, "e": elsewhere}, family.token)
    hijack = token_in(await inbox.next_to(elsewhere))
    await gql.data(RESET_REQUEST, {"e": family.email})
    reset = token_in(await inbox.next_to(family.email, seen=2))  # after the verification and the notice
    assert (await gql.data(RESET, {"t": reset, "p": NEW_PASSWORD}))["resetPassword"]["userErrors"] == []
    late = await gql.data(VERIFY, {"t": hijack})
    assert late["verifyEmail"]["userErrors"] == [{"code": "INVALID_TOKEN", "field": "token"}]
    assert (await gql.data(LOG_IN, {"e": family.email, "p": NEW_PASSWORD}))["logIn"]["token"]


async def test_a_reset_link_expires_after_an_hour(gql: GraphQLClient, inbox: Inbox, clock: Clock) -> None:
    family = await _verified_sign_up(gql, inbox)
    await gql.data(RESET_REQUEST, {"e": family.email})
    token = token_in(await inbox.next_to(family.email, seen=1))
    clock.advance(timedelta(hours=1, seconds=1))
    late = await gql.data(RESET, {"t": token, "p": NEW_PASSWORD})
    assert late["resetPassword"]["userErrors"] == [{"code": "INVALID_TOKEN", "field": "token"}]
    assert (await gql.data(LOG_IN, {"e": family.email, "p": PASSWORD}))["logIn"]["token"]


async def test_the_console_mailer_keeps_tokens_out_of_the_log(
    gql: GraphQLClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    services = gql.app.state.services
    kept = services.mail
    services.mail = Outgoing(ConsoleMailer(tmp_path / "mail"))
    try:
        family = await sign_up_via_api(gql)
        with caplog.at_level("INFO"):
            await gql.data(RESET_REQUEST, {"e": family.email})
            await services.mail.drain()
    finally:
        services.mail = kept
    written = sorted((tmp_path / "mail").glob("*.eml"))
    reset = [email.message_from_bytes(p.read_bytes()) for p in written]
    token = token_in(next(m for m in reset if m["Subject"].startswith("Reset")))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "written to" in logged
    assert token not in logged
    assert family.email not in logged


# --- change of password and email ----------------------------------------------------------------


async def test_change_password_needs_the_current_one_and_ends_the_other_sessions(
    gql: GraphQLClient, inbox: Inbox
) -> None:
    family = await _verified_sign_up(gql, inbox)
    other = (await gql.data(LOG_IN, {"e": family.email, "p": PASSWORD}))["logIn"]["token"]
    wrong = await gql.data(CHANGE_PASSWORD, {"c": "not my password", "p": NEW_PASSWORD}, family.token)
    assert wrong["changePassword"]["userErrors"] == [
        {"code": "INVALID_CREDENTIALS", "field": "currentPassword"}
    ]
    for bad, code in (("short", "PASSWORD_TOO_SHORT"), ("qwertyuiop", "PASSWORD_TOO_COMMON")):
        body = await gql.data(CHANGE_PASSWORD, {"c": PASSWORD, "p": bad}, family.token)
        assert body["changePassword"]["userErrors"] == [{"code": code, "field": "newPassword"}]
    assert (await gql.data(ME, token=other))["viewer"] is not None  # nothing changed yet
    done = await gql.data(CHANGE_PASSWORD, {"c": PASSWORD, "p": NEW_PASSWORD}, family.token)
    assert done["changePassword"]["userErrors"] == []
    assert (await gql.data(ME, token=family.token))["viewer"] is not None
    assert (await gql.data(ME, token=other))["viewer"] is None
    assert (await gql.data(LOG_IN, {"e": family.email, "p": NEW_PASSWORD}))["logIn"]["token"]


async def test_change_email_confirms_the_new_address_and_tells_the_old(
    gql: GraphQLClient, inbox: Inbox
) -> None:
    family = await _verified_sign_up(gql, inbox)
    taken = await sign_up_via_api(gql)
    new_address = f"new-{family.email}"
    for password, address, code, field_name in (
        ("not my password", new_address, "INVALID_CREDENTIALS", "password"),
        (PASSWORD, taken.email.upper(), "EMAIL_TAKEN", "newEmail"),
        (PASSWORD, "not an address", "INVALID", "newEmail"),
        (PASSWORD, family.email, "UNCHANGED", "newEmail"),
    ):
        body = await gql.data(CHANGE_EMAIL, {"p": password, "e": address}, family.token)
        assert body["changeEmail"]["userErrors"] == [{"code": code, "field": field_name}], address
    asked = await gql.data(CHANGE_EMAIL, {"p": PASSWORD, "e": new_address}, family.token)
    assert asked["changeEmail"] == {"viewer": {"email": family.email}, "userErrors": []}
    confirm = await inbox.next_to(new_address)
    notice = await inbox.next_to(family.email, seen=1)
    assert notice["Subject"] == "A change of email address was asked for"
    assert "svm_" not in text_of(notice)
    # Until the new address is confirmed, nothing changes.
    assert (await gql.data(LOG_IN, {"e": family.email, "p": PASSWORD}))["logIn"]["token"]
    assert (await gql.data(VERIFY, {"t": token_in(confirm)}))["verifyEmail"]["userErrors"] == []
    me = (await gql.data(ME, token=family.token))["viewer"]
    assert me["email"] == new_address
    assert me["emailVerified"] is True
    assert (await gql.data(LOG_IN, {"e": new_address, "p": PASSWORD}))["logIn"]["token"]
    old = await gql.data(LOG_IN, {"e": family.email, "p": PASSWORD})
    assert [e["code"] for e in old["logIn"]["userErrors"]] == ["INVALID_CREDENTIALS"]


async def test_a_confirmation_for_an_address_taken_meanwhile_is_refused(
    gql: GraphQLClient, inbox: Inbox
) -> None:
    family = await _verified_sign_up(gql, inbox)
    wanted = f"wanted-{family.email}"
    await gql.data(CHANGE_EMAIL, {"p": PASSWORD, "e": wanted}, family.token)
    confirm = await inbox.next_to(wanted)
    await gql.data(
        SIGN_UP, {"input": {"email": wanted, "password": PASSWORD, "displayName": "Quick", "role": "FAMILY"}}
    )
    body = await gql.data(VERIFY, {"t": token_in(confirm)})
    assert [e["code"] for e in body["verifyEmail"]["userErrors"]] == ["EMAIL_TAKEN"]
    assert (await gql.data(ME, token=family.token))["viewer"]["email"] == family.email
    assert await AccountToken.filter(email=wanted, used_at__isnull=True).count() >= 1  # not spent


# --- sessions ------------------------------------------------------------------------------------


async def test_sessions_are_listed_to_their_holder_and_one_can_be_signed_out(gql: GraphQLClient) -> None:
    family = await sign_up_via_api(gql)
    response = await gql.http.post(
        "/graphql",
        json={"query": LOG_IN, "variables": {"e": family.email, "p": PASSWORD}},
        headers={"User-Agent": "Tablet Browser/1.0 " + "x" * 400},
    )
    tablet = response.json()["data"]["logIn"]["token"]
    listed = (await gql.data(SESSIONS, token=family.token))["viewer"]["sessions"]
    assert listed["totalCount"] == 2
    nodes = [e["node"] for e in listed["edges"]]
    assert [n["current"] for n in nodes] == [False, True]  # newest first: the tablet, then this one
    assert nodes[0]["userAgent"] == ("Tablet Browser/1.0 " + "x" * 400)[:300]
    assert all(n["lastUsedAt"] for n in nodes)
    stranger = await sign_up_via_api(gql)
    theirs = await gql.data(REVOKE_SESSION, {"s": nodes[0]["id"]}, stranger.token)
    assert theirs["revokeSession"]["userErrors"] == [{"code": "NOT_FOUND", "field": "sessionId"}]
    assert (await gql.data(SESSIONS, token=stranger.token))["viewer"]["sessions"]["totalCount"] == 1
    async with gql.socket(tablet) as sock:
        await sock.ack()
        done = await gql.data(REVOKE_SESSION, {"s": nodes[0]["id"]}, family.token)
        assert done["revokeSession"]["userErrors"] == []
        assert await sock.closed_code() == 4403
    assert (await gql.data(ME, token=tablet))["viewer"] is None
    assert (await gql.data(SESSIONS, token=family.token))["viewer"]["sessions"]["totalCount"] == 1
    token = await gql.data(
        'mutation { createApiToken(input: {name: "CRM", scopes: [REQUESTS_READ]}) { secret } }',
        token=family.token,
    )
    secret = token["createApiToken"]["secret"]
    assert (await gql.data(SESSIONS, token=secret))["viewer"]["sessions"] == {"totalCount": 0, "edges": []}
    forbidden = await gql(REVOKE_SESSION, {"s": nodes[1]["id"]}, secret)
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"


# --- passwords and sign-in ------------------------------------------------------------------------


async def test_a_common_password_is_refused_at_sign_up(gql: GraphQLClient) -> None:
    body = await gql.data(
        SIGN_UP,
        {
            "input": {
                "email": "common@example.test",
                "password": "Password123",
                "displayName": "C",
                "role": "FAMILY",
            }
        },
    )
    assert body["signUp"]["userErrors"] == [
        {
            "code": "PASSWORD_TOO_COMMON",
            "message": body["signUp"]["userErrors"][0]["message"],
            "field": "password",
        }
    ]
    assert not await User.exists(email_key="common@example.test")


async def test_failed_sign_ins_to_one_account_wait_longer_each_time(gql: GraphQLClient, clock: Clock) -> None:
    """Five failures are free; then each blocks the next attempt for 1 s, 2 s, 4 s… The test moves
    the service clock past each wait, and checks the block only once it is 16 s long, so that no
    real time passing between requests can end it early."""
    family = await sign_up_via_api(gql)
    for _ in range(5):
        wrong = await gql.data(LOG_IN, {"e": family.email, "p": "not the password"})
        assert [e["code"] for e in wrong["logIn"]["userErrors"]] == ["INVALID_CREDENTIALS"]
    for wait in (1, 2, 4, 8):
        clock.advance(timedelta(seconds=wait))
        again = await gql.data(LOG_IN, {"e": family.email, "p": "still not it"})
        assert [e["code"] for e in again["logIn"]["userErrors"]] == ["INVALID_CREDENTIALS"]
    row = await User.get(email_key=family.email)
    assert row.failed_logins == 9
    blocked = await gql.data(LOG_IN, {"e": family.email, "p": PASSWORD})
    assert [e["code"] for e in blocked["logIn"]["userErrors"]] == ["TOO_MANY_ATTEMPTS"]
    assert (await User.get(email_key=family.email)).failed_logins == 9  # a blocked attempt is not counted
    clock.advance(timedelta(seconds=16))
    assert (await gql.data(LOG_IN, {"e": family.email, "p": PASSWORD}))["logIn"]["token"]
    row = await User.get(email_key=family.email)
    assert (row.failed_logins, row.login_blocked_until) == (0, None)
    # Another account is not held back by this one's failures.
    other = await sign_up_via_api(gql)
    assert (await gql.data(LOG_IN, {"e": other.email, "p": PASSWORD}))["logIn"]["token"]


async def test_sign_ins_sent_at_once_are_checked_one_at_a_time(gql: GraphQLClient) -> None:
    """Thirty sign-ins sent together while the account is one failure from a 32 s wait are checked
    one at a time: the first checked starts the wait, and the other twenty-nine are refused
    without being checked, the right password among them. Thirty right ones sent together all
    sign in."""
    family = await sign_up_via_api(gql)
    await User.filter(email_key=family.email).update(failed_logins=9)
    guesses = [*(f"guess number {n}" for n in range(29)), PASSWORD]
    answers = await asyncio.gather(*(gql.data(LOG_IN, {"e": family.email, "p": p}) for p in guesses))
    codes = [
        a["logIn"]["userErrors"][0]["code"] if a["logIn"]["userErrors"] else "SIGNED_IN" for a in answers
    ]
    assert codes.count("TOO_MANY_ATTEMPTS") == 29, codes
    assert len([c for c in codes if c in ("INVALID_CREDENTIALS", "SIGNED_IN")]) == 1, codes
    row = await User.get(email_key=family.email)
    if "SIGNED_IN" in codes:  # the right password was the one checked: the count starts again
        assert (row.failed_logins, row.login_blocked_until) == (0, None)
    else:
        assert row.failed_logins == 10
    other = await sign_up_via_api(gql)
    signed_in = await asyncio.gather(
        *(gql.data(LOG_IN, {"e": other.email, "p": PASSWORD}) for _ in range(30))
    )
    assert all(answer["logIn"]["token"] for answer in signed_in)


async def test_the_password_asked_again_while_signed_in_is_counted_like_a_sign_in(
    gql: GraphQLClient, clock: Clock
) -> None:
    """A session (a shared computer, a copied token) cannot guess the password through
    changePassword faster than signing in could: wrong current passwords count, block signing in
    too, and the right one clears the count."""
    family = await sign_up_via_api(gql)
    for n in range(5):
        wrong = await gql.data(
            CHANGE_PASSWORD, {"c": f"guess number {n}", "p": "a brand new passphrase"}, family.token
        )
        assert wrong["changePassword"]["userErrors"] == [
            {"code": "INVALID_CREDENTIALS", "field": "currentPassword"}
        ]
    for blocked in (
        await gql.data(CHANGE_PASSWORD, {"c": PASSWORD, "p": "a brand new passphrase"}, family.token),
        await gql.data(LOG_IN, {"e": family.email, "p": PASSWORD}),
    ):
        (answer,) = blocked.values()
        assert [e["code"] for e in answer["userErrors"]] == ["TOO_MANY_ATTEMPTS"]
    clock.advance(timedelta(seconds=2))
    done = await gql.data(CHANGE_PASSWORD, {"c": PASSWORD, "p": "a brand new passphrase"}, family.token)
    assert done["changePassword"]["userErrors"] == []
    row = await User.get(email_key=family.email)
    assert (row.failed_logins, row.login_blocked_until) == (0, None)


def test_the_database_drivers_never_log_statements_with_their_values() -> None:
    config = log_config()
    for name in ("tortoise.db_client", "aiosqlite"):
        assert config["loggers"][name]["level"] == "INFO"


# --- suspension -----------------------------------------------------------------------------------

SUSPEND = """
mutation($u: ID!, $r: String!) { suspendUser(input: {userId: $u, reason: $r}) {
  user { id suspendedAt suspensionReason } userErrors { code field } } }
"""
UNSUSPEND = (
    "mutation($u: ID!) { unsuspendUser(input: {userId: $u}) { user { suspendedAt } userErrors { code } } }"
)
DIRECTORY = "{ advocates(first: 100) { edges { node { id } } } }"


async def test_a_suspended_account_is_signed_out_everywhere_and_leaves_the_directory(
    gql: GraphQLClient,
) -> None:
    boss = await admin(gql)
    adv = await advocate(gql, verified=True)
    listed = [e["node"]["id"] for e in (await gql.data(DIRECTORY))["advocates"]["edges"]]
    assert adv.advocate_id in listed
    secret = (
        await gql.data(
            'mutation { createApiToken(input: {name: "CRM", scopes: [REQUESTS_READ]}) { secret } }',
            token=adv.token,
        )
    )["createApiToken"]["secret"]
    family = await sign_up_via_api(gql)
    refused = await gql(SUSPEND, {"u": adv.user_id, "r": "Complaints under review"}, family.token)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    for bad, code in (("", "REQUIRED"), ("x" * 501, "TOO_LONG")):
        body = await gql.data(SUSPEND, {"u": adv.user_id, "r": bad}, boss.token)
        assert [e["code"] for e in body["suspendUser"]["userErrors"]] == [code]
    unknown = await gql.data(SUSPEND, {"u": "VXNlcjo5OTk5OTk5", "r": "x"}, boss.token)
    assert unknown["suspendUser"]["userErrors"] == [{"code": "NOT_FOUND", "field": "userId"}]
    other_admin = await admin(gql)
    not_admins = await gql.data(SUSPEND, {"u": other_admin.user_id, "r": "x"}, boss.token)
    assert [e["code"] for e in not_admins["suspendUser"]["userErrors"]] == ["CANNOT_SUSPEND_ADMIN"]
    async with gql.socket(adv.token) as sock:
        await sock.ack()
        done = await gql.data(SUSPEND, {"u": adv.user_id, "r": "Complaints under review"}, boss.token)
        assert done["suspendUser"]["userErrors"] == []
        assert done["suspendUser"]["user"]["suspensionReason"] == "Complaints under review"
        assert await sock.closed_code() == 4403
    for ended in (adv.token, secret):
        assert (await gql.data(ME, token=ended))["viewer"] is None
    assert adv.advocate_id not in [e["node"]["id"] for e in (await gql.data(DIRECTORY))["advocates"]["edges"]]
    locked = await gql.data(LOG_IN, {"e": adv.email, "p": PASSWORD})
    assert [e["code"] for e in locked["logIn"]["userErrors"]] == ["ACCOUNT_SUSPENDED"]
    hidden = await gql.data(
        "query($u: ID!) { node(id: $u) { ... on User { suspendedAt } } }", {"u": adv.user_id}, family.token
    )
    assert hidden["node"] is None or hidden["node"]["suspendedAt"] is None
    lifted = await gql.data(UNSUSPEND, {"u": adv.user_id}, boss.token)
    assert lifted["unsuspendUser"] == {"user": {"suspendedAt": None}, "userErrors": []}
    assert (await gql.data(LOG_IN, {"e": adv.email, "p": PASSWORD}))["logIn"]["token"]
    assert adv.advocate_id in [e["node"]["id"] for e in (await gql.data(DIRECTORY))["advocates"]["edges"]]


# --- the README's walk-through ---------------------------------------------------------------------


def _readme_block(after_heading: str) -> str:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme[readme.index(after_heading) :]
    start = section.index("```sh\n") + len("```sh\n")
    return section[start : section.index("```", start)]


async def test_the_readme_walks_a_new_account_through_confirmation_and_a_reset_with_console_mail(
    live_server: Live, settings: server.Settings, tmp_path: Path
) -> None:
    """The README's shell commands, as written, against a served process whose console mail goes
    to `senvault-mail/` in the folder they run in."""
    for tool in ("bash", "curl"):
        if shutil.which(tool) is None:
            require_service(tool, "the README's commands use it")
    script = _readme_block("### A new account, its email confirmed, and a forgotten password")
    env = {
        "DATABASE_URL": settings.database_url,
        "BROADCAST_NAMESPACE": f"readme-{uuid.uuid4().hex[:8]}",
        "MAIL_URL": f"console://{tmp_path / 'senvault-mail'}",
    }
    async with serve(env) as served:
        base = str(served.client.http.base_url).rstrip("/")
        address = f"sam-{uuid.uuid4().hex[:8]}@example.test"
        ran = await asyncio.to_thread(
            subprocess.run,
            [
                "bash",
                "-euo",
                "pipefail",
                "-c",
                script.replace("http://127.0.0.1:8000", base).replace("sam@example.test", address),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert ran.returncode == 0, ran.stderr
    lines = [line for line in ran.stdout.splitlines() if line.strip()]
    assert len(lines) == 5, ran.stdout
    assert '"userErrors":[]' in lines[1]  # verifyEmail
    assert '"userErrors":[]' in lines[3]  # resetPassword
    assert '"token":"svs_' in lines[4]  # signed in with the new password


# --- who may call what -----------------------------------------------------------------------------

SESSION_ONLY = [
    'mutation { changePassword(input: {currentPassword: "x", newPassword: "y"}) { userErrors { code } } }',
    'mutation { changeEmail(input: {password: "x", newEmail: "a@b.test"}) { userErrors { code } } }',
    "mutation { resendVerificationEmail { userErrors { code } } }",
    'mutation { revokeSession(input: {sessionId: "U2Vzc2lvbjox"}) { userErrors { code } } }',
    "mutation { enableTwoFactor { userErrors { code } } }",
    'mutation { confirmTwoFactor(input: {code: "123456"}) { userErrors { code } } }',
    'mutation { disableTwoFactor(input: {password: "x", code: "123456"}) { userErrors { code } } }',
]
ADMIN_ONLY = [
    'mutation { suspendUser(input: {userId: "VXNlcjox", reason: "x"}) { userErrors { code } } }',
    'mutation { unsuspendUser(input: {userId: "VXNlcjox"}) { userErrors { code } } }',
]


async def test_account_mutations_refuse_who_may_not_call_them_and_change_nothing(gql: GraphQLClient) -> None:
    family = await sign_up_via_api(gql)
    adv = await sign_up_via_api(gql, "ADVOCATE")
    every_scope = (
        "[REQUESTS_READ, REQUESTS_WRITE, VAULT_READ, VAULT_WRITE, EVENTS_SUBSCRIBE, NOTIFICATIONS_READ]"
    )
    made = await gql.data(
        f'mutation {{ createApiToken(input: {{name: "All", scopes: {every_scope}}}) {{ secret }} }}',
        token=family.token,
    )
    secret = made["createApiToken"]["secret"]
    before = await User.get(email_key=family.email)
    for document in SESSION_ONLY:
        assert (await gql(document))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", document
        assert (await gql(document, token=secret))["errors"][0]["extensions"]["code"] == "FORBIDDEN", document
    for document in ADMIN_ONLY:
        assert (await gql(document))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", document
        for token in (family.token, adv.token, secret):
            assert (await gql(document, token=token))["errors"][0]["extensions"]["code"] == "FORBIDDEN", (
                document
            )
    after = await User.get(email_key=family.email)
    assert (after.password_hash, after.email, after.totp_secret, after.suspended_at) == (
        before.password_hash,
        before.email,
        before.totp_secret,
        before.suspended_at,
    )


@pytest.mark.parametrize(
    ("answer", "arrives"),
    [("451 4.3.0 Try again later", True), ("550 5.7.1 Refused for good", False)],
)
async def test_a_mail_the_server_cannot_take_now_is_tried_again(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture, answer: str, arrives: bool
) -> None:
    """A "try again later" (4xx) from the mail server: the reset mail is sent again a moment later
    and arrives; a refusal for good (5xx) is not tried again. Either way the log names the mail's
    subject, never its text or its link."""
    family = await sign_up_via_api(gql)
    services = gql.app.state.services
    kept = services.mail
    with smtp_server(Hesitant(refusals=2, answer=answer)) as (server_side, port):
        assert isinstance(server_side, Hesitant)
        services.mail = Outgoing(
            SmtpMailer("127.0.0.1", port, None, None, tls=False), retry_delays=(0.05, 0.05)
        )
        try:
            assert (await gql.data(RESET_REQUEST, {"e": family.email}))["requestPasswordReset"] == {
                "userErrors": []
            }
            if arrives:
                message = await server_side.next_to(family.email)
                assert "reset" in text_of(message).lower()
                assert server_side.tries == 3
            await services.mail.drain()
        finally:
            services.mail = kept
    if not arrives:
        assert server_side.to(family.email) == []
        assert server_side.tries == 1
    logged = [r for r in caplog.records if r.name == "senvault.mail"]
    assert [r.levelname for r in logged if "could not send" in r.getMessage()] == (
        ["WARNING", "WARNING"] if arrives else ["ERROR"]
    )
    assert not any("token=" in r.getMessage() for r in logged)
