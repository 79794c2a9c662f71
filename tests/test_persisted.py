"""Documents sent by hash: automatic persisted queries (Apollo's protocol) over POST and GET, and
the trusted-documents-only mode (schema/persisted.py)."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

import server
from tests.client import GraphQLClient
from tests.conftest import Live
from tests.factories import PASSWORD, sign_up
from tests.servers import serve

VIEWER = "query Viewer { viewer { id displayName } }"
LOG_IN = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }"


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _persisted(text: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": _hash(text)}}


async def _post(gql: GraphQLClient, body: dict[str, Any], token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = await gql.http.post("/graphql", json=body, headers=headers)
    return answer.status_code, answer.json()


async def test_a_hash_runs_once_its_text_has_been_sent_with_it(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    text = VIEWER + f" # {uuid.uuid4().hex}"  # a text no other test has sent
    status, body = await _post(gql, {"extensions": _persisted(text)}, family.token)
    assert status == 200
    assert body["errors"][0]["message"] == "PersistedQueryNotFound"
    assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    status, body = await _post(gql, {"query": text, "extensions": _persisted(text)}, family.token)
    assert (status, body["data"]["viewer"]["id"]) == (200, family.user_id)
    status, body = await _post(gql, {"extensions": _persisted(text)}, family.token)
    assert (status, body["data"]["viewer"]["id"]) == (200, family.user_id)
    # Over GET too, as Apollo Client sends hashed queries.
    answer = await gql.http.get(
        "/graphql",
        params={"extensions": json.dumps(_persisted(text)), "operationName": "Viewer"},
        headers={"Authorization": f"Bearer {family.token}"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["viewer"]["id"] == family.user_id


async def test_a_text_that_does_not_hash_to_its_hash_is_refused_and_not_kept(gql: GraphQLClient) -> None:
    text = "{ __typename }" + f" # {uuid.uuid4().hex}"
    other = "{ __typename }" + f" # {uuid.uuid4().hex}"
    status, body = await _post(gql, {"query": other, "extensions": _persisted(text)})
    assert status == 400
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "data" not in body
    status, body = await _post(gql, {"extensions": _persisted(text)})
    assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize(
    ("persisted", "code"),
    [
        ({"version": 2, "sha256Hash": "0" * 64}, "PERSISTED_QUERY_NOT_SUPPORTED"),
        ({"version": 1, "sha256Hash": "not-a-hash"}, "BAD_USER_INPUT"),
        ({"version": 1}, "BAD_USER_INPUT"),
        ("v1", "PERSISTED_QUERY_NOT_SUPPORTED"),
    ],
)
async def test_a_malformed_persisted_query_is_a_clear_client_error(
    gql: GraphQLClient, persisted: Any, code: str
) -> None:
    status, body = await _post(gql, {"extensions": {"persistedQuery": persisted}})
    assert status == 400
    assert body["errors"][0]["extensions"]["code"] == code


async def test_only_trusted_documents_run_in_trusted_mode(
    live_server: Live, settings: server.Settings, tmp_path: Path
) -> None:
    manifest = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": _hash(text), "name": name, "type": kind, "body": text}
            for name, kind, text in (("Viewer", "query", VIEWER), ("LogIn", "mutation", LOG_IN))
        ],
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    env = {"DATABASE_URL": settings.database_url, "TRUSTED_DOCUMENTS": str(path)}
    async with serve(env) as served:
        gql = served.client
        # Signing out is not a trusted document here: refused before it is parsed.
        status, body = await _post(gql, {"query": "mutation { logOut { userErrors { code } } }"})
        assert (status, body["errors"][0]["extensions"]["code"]) == (400, "DOCUMENT_NOT_TRUSTED")
        assert "data" not in body
        # A trusted document, by hash or as its exact text.
        for request in ({"extensions": _persisted(VIEWER)}, {"query": VIEWER}):
            status, body = await _post(gql, request)
            assert (status, body["data"]) == (200, {"viewer": None})
        # The same operation with one character more is another document.
        status, body = await _post(gql, {"query": VIEWER + " "})
        assert body["errors"][0]["extensions"]["code"] == "DOCUMENT_NOT_TRUSTED"
        # A hash the manifest lacks; a trusted hash with another text.
        status, body = await _post(gql, {"extensions": _persisted("{ __typename }")})
        assert body["errors"][0]["extensions"]["code"] == "DOCUMENT_NOT_TRUSTED"
        status, body = await _post(gql, {"query": "{ __typename }", "extensions": _persisted(VIEWER)})
        assert body["errors"][0]["extensions"]["code"] == "DOCUMENT_NOT_TRUSTED"
        # A trusted mutation with its variables, by hash: it runs (and finds no such account).
        status, body = await _post(
            gql, {"extensions": _persisted(LOG_IN), "variables": {"e": "nobody@example.test", "p": PASSWORD}}
        )
        assert (status, body["data"]) == (200, {"logIn": {"token": None}})


def test_a_manifest_whose_ids_are_not_their_hashes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"0" * 64: VIEWER}))
    from schema.persisted import load_manifest

    with pytest.raises(ValueError, match="is not the SHA-256 of its document"):
        load_manifest(str(path))
