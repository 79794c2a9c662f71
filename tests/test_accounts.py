"""Accounts over HTTP: sign-up, log-in, log-out, tokens, and bad input changing nothing."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from tortoise import Tortoise
from tortoise.connection import get_connection

from models.accounts import Session, User
from models.families import Family
from models.notifications import Notification, NotificationKind
from resolvers.clock import Clock
from tests.client import GraphQLClient
from tests.factories import PASSWORD, SIGN_UP, sign_up_via_api

LOG_IN = """
mutation($input: LogInInput!) {
  logIn(input: $input) { token viewer { id email role } userErrors { code message field } }
}
"""
VIEWER = "{ viewer { id displayName email role family { id } } }"
LOG_OUT = "mutation { logOut { userErrors { code } } }"


async def test_sign_up_as_family_signs_in_and_makes_a_family(gql: GraphQLClient) -> None:
    account = await sign_up_via_api(gql, "FAMILY", email="Parent@Example.test")
    data = await gql.data(VIEWER, token=account.token)
    assert data["viewer"]["id"] == account.user_id
    assert data["viewer"]["email"] == "Parent@Example.test"
    assert data["viewer"]["role"] == "FAMILY"
    assert data["viewer"]["family"]["id"] == account.family_id
    assert await Family.all().count() == 1


async def test_sign_up_as_advocate_has_no_family(gql: GraphQLClient) -> None:
    account = await sign_up_via_api(gql, "ADVOCATE")
    data = await gql.data(VIEWER, token=account.token)
    assert data["viewer"]["role"] == "ADVOCATE"
    assert data["viewer"]["family"] is None
    assert await Family.all().count() == 0


async def test_viewer_is_null_when_anonymous_or_token_unknown(gql: GraphQLClient) -> None:
    assert (await gql.data(VIEWER))["viewer"] is None
    assert (await gql.data(VIEWER, token="svs_not-a-real-token"))["viewer"] is None
    assert (await gql.data(VIEWER, token="garbage"))["viewer"] is None


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"email": "not-an-email"}, "INVALID", "email"),
        ({"email": "   "}, "REQUIRED", "email"),
        ({"email": "a@b.c" + "x" * 300}, "TOO_LONG", "email"),
        ({"password": "short"}, "PASSWORD_TOO_SHORT", "password"),
        ({"password": "x" * 2000}, "TOO_LONG", "password"),
        ({"displayName": ""}, "REQUIRED", "displayName"),
        ({"displayName": "   "}, "REQUIRED", "displayName"),
        ({"displayName": "x" * 10_000}, "TOO_LONG", "displayName"),
        ({"displayName": "bad\x07name"}, "INVALID", "displayName"),
        ({"role": "ADMIN"}, "ROLE_NOT_ALLOWED", "role"),
    ],
)
async def test_sign_up_bad_input_is_a_user_error_and_changes_nothing(
    gql: GraphQLClient, overrides: dict[str, str], code: str, field: str
) -> None:
    payload = {
        "email": "new@example.test",
        "password": PASSWORD,
        "displayName": "New Person",
        "role": "FAMILY",
        **overrides,
    }
    result = (await gql.data(SIGN_UP, {"input": payload}))["signUp"]
    assert result["token"] is None
    assert result["viewer"] is None
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [(code, field)]
    assert result["userErrors"][0]["message"]
    assert await User.all().count() == 0
    assert await Session.all().count() == 0


@pytest.mark.parametrize("bad", [{"role": "BOSS"}, {"role": None}, {"email": 42}])
async def test_sign_up_wrong_types_are_refused_before_anything_runs(
    gql: GraphQLClient, bad: dict[str, object]
) -> None:
    payload = {
        "email": "x@example.test",
        "password": PASSWORD,
        "displayName": "X",
        "role": "FAMILY",
    }
    body = await gql(SIGN_UP, {"input": {**payload, **bad}})
    assert body.get("data") is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await User.all().count() == 0


async def test_sign_up_missing_field_is_refused(gql: GraphQLClient) -> None:
    body = await gql(SIGN_UP, {"input": {"email": "x@example.test", "password": PASSWORD}})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await User.all().count() == 0


async def test_duplicate_email_in_any_letter_case_is_refused(gql: GraphQLClient) -> None:
    await sign_up_via_api(gql, email="Dup@Example.test")
    for email in ("dup@example.test", "DUP@EXAMPLE.TEST", " Dup@Example.test "):
        payload = {"email": email, "password": PASSWORD, "displayName": "Two", "role": "ADVOCATE"}
        result = (await gql.data(SIGN_UP, {"input": payload}))["signUp"]
        assert [(e["code"], e["field"]) for e in result["userErrors"]] == [("EMAIL_TAKEN", "email")]
    assert await User.all().count() == 1


async def test_log_in_is_case_insensitive_and_notifies_the_user(gql: GraphQLClient) -> None:
    account = await sign_up_via_api(gql, email="Carer@Example.test")
    result = (await gql.data(LOG_IN, {"input": {"email": "CARER@example.TEST", "password": PASSWORD}}))[
        "logIn"
    ]
    assert result["userErrors"] == []
    assert result["token"].startswith("svs_")
    assert result["token"] != account.token
    assert result["viewer"] == {
        "id": account.user_id,
        "email": "Carer@Example.test",
        "role": "FAMILY",
    }
    kinds = [n.kind for n in await Notification.all()]
    assert kinds == [NotificationKind.NEW_SIGN_IN]


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("carer@example.test", "wrong password!"),
        ("nobody@example.test", PASSWORD),
        ("", ""),
        ("carer@example.test", ""),
    ],
)
async def test_log_in_failure_says_the_same_thing_for_any_cause(
    gql: GraphQLClient, email: str, password: str
) -> None:
    await sign_up_via_api(gql, email="carer@example.test")
    sessions_before = await Session.all().count()
    result = (await gql.data(LOG_IN, {"input": {"email": email, "password": password}}))["logIn"]
    assert result["token"] is None
    assert [e["code"] for e in result["userErrors"]] == ["INVALID_CREDENTIALS"]
    assert await Session.all().count() == sessions_before


async def test_log_out_revokes_the_token_at_once(gql: GraphQLClient) -> None:
    account = await sign_up_via_api(gql)
    other = (await gql.data(LOG_IN, {"input": {"email": account.email, "password": PASSWORD}}))["logIn"][
        "token"
    ]
    assert (await gql.data(LOG_OUT, token=account.token))["logOut"]["userErrors"] == []
    assert (await gql.data(VIEWER, token=account.token))["viewer"] is None
    # Only that session ends; the person's other device stays signed in.
    assert (await gql.data(VIEWER, token=other))["viewer"]["id"] == account.user_id


async def test_log_out_needs_a_session(gql: GraphQLClient) -> None:
    body = await gql(LOG_OUT)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_session_token_expires_after_its_lifetime(gql: GraphQLClient, clock: Clock) -> None:
    account = await sign_up_via_api(gql)
    clock.advance(timedelta(days=29, hours=23))
    assert (await gql.data(VIEWER, token=account.token))["viewer"] is not None
    clock.advance(timedelta(hours=2))
    assert (await gql.data(VIEWER, token=account.token))["viewer"] is None


async def test_passwords_and_tokens_are_never_stored_or_logged_in_clear(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    account = await sign_up_via_api(gql, email="secret@example.test")
    login = (await gql.data(LOG_IN, {"input": {"email": account.email, "password": PASSWORD}}))["logIn"]
    created = await gql.data(
        'mutation { createApiToken(input: {name: "CRM", scopes: [REQUESTS_READ]}) { secret } }',
        token=account.token,
    )
    secrets = [PASSWORD, account.token, login["token"], created["createApiToken"]["secret"]]

    conn = get_connection("default")
    dump: list[str] = []
    for models in (Tortoise.apps or {}).values():
        for model in models.values():
            _, rows = await conn.execute_query(f"SELECT * FROM {model._meta.db_table}")
            dump.extend(str(value) for row in rows for value in dict(row).values())
    everything = "\n".join(dump)
    assert "secret@example.test" in everything  # the dump really holds the data
    for secret in secrets:
        assert secret not in everything
        assert secret not in caplog.text
    user = await User.get(email_key="secret@example.test")
    assert user.password_hash.startswith("$argon2id$")
