"""Two-factor sign-in (TOTP, RFC 6238), with codes computed here independently of the server's
implementation: the RFC's own test vectors check the algorithm, and a ten-line HOTP of this file
(RFC 4226, from `hmac`) drives enabling, signing in, replay, recovery codes and disabling."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import struct
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from models.accounts import User
from resolvers import two_factor
from resolvers.clock import Clock
from resolvers.encryption import MasterKeys
from tests.client import GraphQLClient
from tests.factories import PASSWORD, sign_up_via_api

# RFC 6238, appendix B: the SHA-1 seed "12345678901234567890", 8 digits, 30-second steps.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]

LOG_IN = """
mutation($e: String!, $p: String!, $otp: String) {
  logIn(input: {email: $e, password: $p, otp: $otp}) { token userErrors { code field } }
}
"""
ENABLE = "mutation { enableTwoFactor { secret otpauthUri userErrors { code } } }"
CONFIRM = """
mutation($c: String!) { confirmTwoFactor(input: {code: $c}) { recoveryCodes userErrors { code field } } }
"""
DISABLE = """
mutation($p: String!, $c: String!) {
  disableTwoFactor(input: {password: $p, code: $c}) { viewer { twoFactorEnabled } userErrors { code field } }
}
"""
STATE = "{ viewer { twoFactorEnabled } }"


def totp(secret: str, unix_time: int, digits: int = 6) -> str:
    """RFC 6238 over RFC 4226, written here from the RFCs, not from the server's code."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", unix_time // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


@pytest.mark.parametrize(("unix_time", "expected"), RFC_VECTORS)
def test_the_server_computes_rfc_6238_test_vectors(unix_time: int, expected: str) -> None:
    assert two_factor.code_at(RFC_SECRET, unix_time, digits=8) == expected
    assert totp(RFC_SECRET, unix_time, digits=8) == expected  # and so does this file's HOTP


def _now(clock: Clock) -> int:
    """Now on the service clock, moved on first when fewer than ten seconds of the 30-second step
    are left: a code computed from it is still the current one when the server checks it."""
    now = int(clock.now().timestamp())
    if now % 30 >= 20:
        clock.advance(timedelta(seconds=35 - now % 30))
        now = int(clock.now().timestamp())
    return now


async def _log_in(gql: GraphQLClient, email: str, otp: str | None = None, password: str = PASSWORD) -> Any:
    return (await gql.data(LOG_IN, {"e": email, "p": password, "otp": otp}))["logIn"]


async def test_two_factor_sign_in_from_enabling_to_disabling(gql: GraphQLClient, clock: Clock) -> None:
    family = await sign_up_via_api(gql)
    assert (await gql.data(STATE, token=family.token))["viewer"]["twoFactorEnabled"] is False
    enabled = (await gql.data(ENABLE, token=family.token))["enableTwoFactor"]
    secret = enabled["secret"]
    uri = urlsplit(enabled["otpauthUri"])
    assert uri.scheme == "otpauth"
    assert uri.netloc == "totp"
    assert parse_qs(uri.query)["secret"] == [secret]
    assert parse_qs(uri.query)["issuer"] == ["SEN Evidence Vault"]
    # Not in force until confirmed: signing in needs no code yet.
    assert (await _log_in(gql, family.email))["token"]
    wrong = await gql.data(
        CONFIRM, {"c": "000000" if totp(secret, _now(clock)) != "000000" else "111111"}, family.token
    )
    assert wrong["confirmTwoFactor"] == {
        "recoveryCodes": None,
        "userErrors": [{"code": "INVALID_OTP", "field": "code"}],
    }
    confirmed = (await gql.data(CONFIRM, {"c": totp(secret, _now(clock))}, family.token))["confirmTwoFactor"]
    codes = confirmed["recoveryCodes"]
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert (await gql.data(STATE, token=family.token))["viewer"]["twoFactorEnabled"] is True
    again = (await gql.data(ENABLE, token=family.token))["enableTwoFactor"]
    assert again["userErrors"] == [{"code": "TWO_FACTOR_ENABLED"}]

    missing = await _log_in(gql, family.email)
    assert missing == {"token": None, "userErrors": [{"code": "TWO_FACTOR_REQUIRED", "field": "otp"}]}
    for bad_code in ("123", "١٢٣٤٥٦", "x" * 100):  # short, digits of another script, long
        bad = await _log_in(gql, family.email, bad_code)
        assert bad["userErrors"] == [{"code": "INVALID_OTP", "field": "otp"}]
    wrong_password = await _log_in(gql, family.email, totp(secret, _now(clock)), password="not the password")
    assert [e["code"] for e in wrong_password["userErrors"]] == ["INVALID_CREDENTIALS"]
    # The step confirmTwoFactor used is spent: the next step's code signs in, once.
    clock.advance(timedelta(seconds=30))
    code = totp(secret, _now(clock))
    assert (await _log_in(gql, family.email, code))["token"]
    replayed = await _log_in(gql, family.email, code)
    assert replayed["userErrors"] == [{"code": "INVALID_OTP", "field": "otp"}]
    # A code of the step before still works (clock drift), if that step is later than the last used.
    clock.advance(timedelta(seconds=60))
    assert (await _log_in(gql, family.email, totp(secret, _now(clock) - 30)))["token"]
    # A recovery code, in any letter case and spacing, works once.
    recovery = codes[3]
    assert (await _log_in(gql, family.email, f"  {recovery.upper().replace('-', ' ')} "))["token"]
    assert (await _log_in(gql, family.email, recovery))["userErrors"] == [
        {"code": "INVALID_OTP", "field": "otp"}
    ]

    clock.advance(timedelta(seconds=30))
    refused = await gql.data(DISABLE, {"p": "not the password", "c": totp(secret, _now(clock))}, family.token)
    assert refused["disableTwoFactor"]["userErrors"] == [{"code": "INVALID_CREDENTIALS", "field": "password"}]
    no_code = await gql.data(DISABLE, {"p": PASSWORD, "c": "999999"}, family.token)
    assert no_code["disableTwoFactor"]["userErrors"] == [{"code": "INVALID_OTP", "field": "code"}]
    off = await gql.data(DISABLE, {"p": PASSWORD, "c": totp(secret, _now(clock))}, family.token)
    assert off["disableTwoFactor"] == {"viewer": {"twoFactorEnabled": False}, "userErrors": []}
    assert (await _log_in(gql, family.email))["token"]
    # The old recovery codes went with it.
    assert (await gql.data(DISABLE, {"p": PASSWORD, "c": codes[0]}, family.token))["disableTwoFactor"][
        "userErrors"
    ] == [{"code": "TWO_FACTOR_NOT_ENABLED", "field": None}]


async def test_two_sign_ins_racing_with_one_code_cannot_both_pass(gql: GraphQLClient, clock: Clock) -> None:
    family = await sign_up_via_api(gql)
    secret = (await gql.data(ENABLE, token=family.token))["enableTwoFactor"]["secret"]
    await gql.data(CONFIRM, {"c": totp(secret, _now(clock))}, family.token)
    clock.advance(timedelta(seconds=30))
    code = totp(secret, _now(clock))
    first, second = await asyncio.gather(_log_in(gql, family.email, code), _log_in(gql, family.email, code))
    assert sorted(bool(r["token"]) for r in (first, second)) == [False, True]


async def test_codes_guessed_while_turning_two_factor_off_are_counted(
    gql: GraphQLClient, clock: Clock
) -> None:
    """Someone with a session and the password cannot guess the code through disableTwoFactor
    faster than through signing in: each try is one counted attempt (the right password does not
    clear the count while the code is wrong), and after five the account waits."""
    family = await sign_up_via_api(gql)
    secret = (await gql.data(ENABLE, token=family.token))["enableTwoFactor"]["secret"]
    await gql.data(CONFIRM, {"c": totp(secret, _now(clock))}, family.token)
    clock.advance(timedelta(seconds=30))
    right = totp(secret, _now(clock))
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(5):
        guessed = await gql.data(DISABLE, {"p": PASSWORD, "c": wrong}, family.token)
        assert guessed["disableTwoFactor"]["userErrors"] == [{"code": "INVALID_OTP", "field": "code"}]
    held = await gql.data(DISABLE, {"p": PASSWORD, "c": right}, family.token)
    assert held["disableTwoFactor"]["userErrors"] == [{"code": "TOO_MANY_ATTEMPTS", "field": None}]
    assert (await gql.data(STATE, token=family.token))["viewer"]["twoFactorEnabled"] is True
    clock.advance(timedelta(seconds=2))
    off = await gql.data(DISABLE, {"p": PASSWORD, "c": right}, family.token)
    assert off["disableTwoFactor"] == {"viewer": {"twoFactorEnabled": False}, "userErrors": []}


async def test_two_factor_is_for_people_signed_in_and_needs_starting(gql: GraphQLClient) -> None:
    family = await sign_up_via_api(gql)
    not_started = await gql.data(CONFIRM, {"c": "123456"}, family.token)
    assert not_started["confirmTwoFactor"]["userErrors"] == [
        {"code": "TWO_FACTOR_NOT_STARTED", "field": None}
    ]
    secret = (
        await gql.data(
            'mutation { createApiToken(input: {name: "CRM", scopes: [REQUESTS_READ]}) { secret } }',
            token=family.token,
        )
    )["createApiToken"]["secret"]
    for document in (
        ENABLE,
        'mutation { confirmTwoFactor(input: {code: "123456"}) { userErrors { code } } }',
    ):
        assert (await gql(document, token=secret))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert (await gql(document))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await gql.data(STATE, token=secret))["viewer"]["twoFactorEnabled"] is None


async def test_the_secret_is_kept_sealed_and_survives_a_key_rotation(
    gql: GraphQLClient, clock: Clock
) -> None:
    """The database holds the secret sealed under the master key, never as the app shows it; a
    secret stored before sealing still works and is sealed by the rotation; after a rotation
    (the new key current, the old one still accepted, then re-sealed) codes still sign in with
    the new key alone."""
    services = gql.app.state.services
    original = services.documents
    family, legacy = await sign_up_via_api(gql), await sign_up_via_api(gql)
    secrets: dict[str, str] = {}
    for account in (family, legacy):
        secret = (await gql.data(ENABLE, token=account.token))["enableTwoFactor"]["secret"]
        await gql.data(CONFIRM, {"c": totp(secret, _now(clock))}, account.token)
        secrets[account.email] = secret
    stored = await User.get(email_key=family.email.lower())
    assert stored.totp_secret is not None
    assert secrets[family.email] not in stored.totp_secret
    assert stored.totp_secret.startswith("s1:")
    # As every secret was stored before this release: the base32 text itself.
    await User.filter(email_key=legacy.email.lower()).update(totp_secret=secrets[legacy.email])

    async def signs_in(account: Any) -> bool:
        clock.advance(timedelta(seconds=30))
        return bool((await _log_in(gql, account.email, totp(secrets[account.email], _now(clock))))["token"])

    new_key = bytes(range(100, 132))
    try:
        services.documents = replace(original, keys=MasterKeys(new_key, (original.keys.current,)))
        assert await signs_in(family)
        assert await signs_in(legacy)
        assert await two_factor.reseal_secrets(services) == 2
        assert await two_factor.reseal_secrets(services) == 0
        services.documents = replace(original, keys=MasterKeys(new_key))
        assert await signs_in(family)
        assert await signs_in(legacy)
        resealed = await User.get(email_key=legacy.email.lower())
        assert resealed.totp_secret is not None
        assert resealed.totp_secret.startswith("s1:")
    finally:
        services.documents = original
