"""Documents in the Vault (SPEC §14) on the embedded store: the staged upload, checks of size, hash
and type, signed downloads re-authorised when fetched, Range, encryption at rest and the sweep."""

from __future__ import annotations

import base64
import io
import logging
import zipfile
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from models.documents import Document as DocumentRow
from resolvers.clock import Clock
from resolvers.documents import rewrap_keys
from resolvers.encryption import CHUNK, MasterKeys
from resolvers.storage import StorageError
from tests.client import GraphQLClient
from tests.documents import (
    CREATE,
    DELETE,
    EP_REPORT,
    NODE,
    VAULT_DOCUMENTS,
    advocate_download_url,
    complete,
    download_url,
    put,
    sha256,
    start,
    upload,
)
from tests.factories import Account, add_child, api_token, db_id, sign_up, sweep
from tests.statements import statements
from tests.test_vault import END, REVOKE, _evidence, _grant, _supported

# A PNG signature and then enough bytes to span several encrypted chunks.
BIG_PNG = b"\x89PNG\r\n\x1a\n" + bytes((i * 7 + i // 251) % 256 for i in range(3 * CHUNK + 1234))


def _zip(*entries: tuple[str, str]) -> bytes:
    # Fixed dates: the bytes are the same in every worker process (their tests must be too).
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, text in entries:
            z.writestr(zipfile.ZipInfo(name, date_time=(2025, 5, 1, 0, 0, 0)), text)
    return out.getvalue()


def _docx() -> bytes:
    return _zip(("[Content_Types].xml", "<Types/>"), ("word/document.xml", "<w:document/>"))


def _odt() -> bytes:
    return _zip(("mimetype", "application/vnd.oasis.opendocument.text"), ("content.xml", "<office:content/>"))


async def test_a_family_uploads_a_pdf_and_downloads_the_same_bytes(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    child = await _supported_child(gql, family)
    evidence = await _evidence(gql, family, child)

    started = await start(gql, family, evidence, EP_REPORT)
    assert started.document["status"] == "PENDING_UPLOAD"
    assert started.document["downloadUrl"] is None
    assert started.upload["method"] == "PUT"
    sent = await put(gql, started, EP_REPORT)
    assert sent.status_code == 200
    assert sent.json() == {"byteSize": len(EP_REPORT), "sha256": sha256(EP_REPORT)}
    done = await complete(gql, family, started.id)

    assert done["userErrors"] == []
    assert done["document"]["status"] == "AVAILABLE"
    assert done["document"]["rejectionReason"] is None
    assert done["document"]["uploadedAt"] is not None
    url = done["document"]["downloadUrl"]
    fetched = await gql.http.get(url)
    assert fetched.status_code == 200
    assert fetched.content == EP_REPORT
    assert fetched.headers["content-type"] == "application/pdf"
    assert fetched.headers["x-content-type-options"] == "nosniff"
    assert fetched.headers["content-disposition"].startswith('attachment; filename="ep-report.pdf"')
    assert fetched.headers["cache-control"] == "private, no-store"
    assert fetched.headers["accept-ranges"] == "bytes"
    listed = await gql.data(VAULT_DOCUMENTS, {"f": family.family_id}, family.token)
    documents = listed["vault"]["evidence"]["edges"][0]["node"]["documents"]
    assert documents["totalCount"] == 1
    assert documents["edges"][0]["node"]["id"] == started.id


async def _supported_child(gql: GraphQLClient, family: Account) -> str:
    return await add_child(gql, family)


@pytest.mark.parametrize(
    ("data", "content_type", "filename"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64, "image/jpeg", "photo.jpg"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, "image/heic", "IMG_0001.HEIC"),
        (_docx(), "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "letter.docx"),
        (_odt(), "application/vnd.oasis.opendocument.text", "notes.odt"),
        (b"Notes from the annual review: 12 March.\n", "text/plain", "notes.txt"),
    ],
    ids=["jpeg", "heic", "docx", "odt", "text"],
)
async def test_each_kept_type_is_recognised_from_its_bytes(
    gql: GraphQLClient, data: bytes, content_type: str, filename: str
) -> None:
    family = await sign_up(gql)
    evidence = await _evidence(gql, family, await _supported_child(gql, family))
    document = await upload(gql, family, evidence, data, filename=filename, content_type=content_type)
    assert document["status"] == "AVAILABLE"
    fetched = await gql.http.get(document["downloadUrl"])
    assert fetched.content == data
    assert fetched.headers["content-type"].startswith(content_type)


async def test_ranges_are_answered_from_the_chunks_that_cover_them(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    evidence = await _evidence(gql, family, await _supported_child(gql, family))
    document = await upload(gql, family, evidence, BIG_PNG, filename="scan.png", content_type="image/png")
    url = document["downloadUrl"]
    size = len(BIG_PNG)
    for header, lo, hi in [
        ("bytes=0-9", 0, 9),
        (f"bytes={CHUNK - 5}-{CHUNK + 5}", CHUNK - 5, CHUNK + 5),
        (f"bytes={2 * CHUNK}-", 2 * CHUNK, size - 1),
        ("bytes=-100", size - 100, size - 1),
        (f"bytes={size - 1}-{size + 50}", size - 1, size - 1),
    ]:
        part = await gql.http.get(url, headers={"Range": header})
        assert part.status_code == 206, header
        assert part.content == BIG_PNG[lo : hi + 1], header
        assert part.headers["content-range"] == f"bytes {lo}-{hi}/{size}"
    whole = await gql.http.get(url)
    assert whole.content == BIG_PNG
    outside = await gql.http.get(url, headers={"Range": f"bytes={size}-"})
    assert outside.status_code == 416
    assert outside.headers["content-range"] == f"bytes */{size}"
    # A size that is a multiple of the chunk size ends with an empty last chunk.
    exact = BIG_PNG[: 2 * CHUNK]
    whole_chunks = await upload(gql, family, evidence, exact, filename="exact.png", content_type="image/png")
    assert (await gql.http.get(whole_chunks["downloadUrl"])).content == exact
    head = await gql.http.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(size)
    assert head.content == b""


async def test_an_advocate_with_an_evidence_grant_downloads_and_the_family_sees_it_logged(
    gql: GraphQLClient,
) -> None:
    family, child, adv, _, relationship = await _supported(gql)
    evidence = await _evidence(gql, family, child)
    await upload(gql, family, evidence)
    assert await advocate_download_url(gql, adv.token, family.family_id or "") is None
    await _grant(gql, family, relationship, child, scopes=["TIMELINE"])
    assert await advocate_download_url(gql, adv.token, family.family_id or "") is None

    await _grant(gql, family, relationship, child, scopes=["EVIDENCE"])
    url = await advocate_download_url(gql, adv.token, family.family_id or "")
    assert url is not None
    fetched = await gql.http.get(url)
    assert fetched.status_code == 200
    assert fetched.content == EP_REPORT
    log = await gql.data(
        "{ viewer { family { vaultAccessLog { edges { node { what scope actor { id } } } } } } }",
        token=family.token,
    )
    whats = [e["node"]["what"] for e in log["viewer"]["family"]["vaultAccessLog"]["edges"]]
    assert "download link: ep-report.pdf" in whats


async def test_a_url_issued_before_a_revocation_stops_working_at_once(gql: GraphQLClient) -> None:
    family, child, adv, _, relationship = await _supported(gql)
    evidence = await _evidence(gql, family, child)
    await upload(gql, family, evidence)
    grant = (await _grant(gql, family, relationship, child))["vaultGrant"]["id"]
    url = await advocate_download_url(gql, adv.token, family.family_id or "")
    assert url is not None
    assert (await gql.http.get(url)).status_code == 200

    revoked = await gql.data(REVOKE, {"input": {"grantId": grant}}, family.token)
    assert revoked["revokeVaultAccess"]["userErrors"] == []

    refused = await gql.http.get(url)
    assert refused.status_code == 404
    assert refused.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert EP_REPORT not in refused.content


async def test_a_url_stops_working_when_the_relationship_ends_or_the_session_does(gql: GraphQLClient) -> None:
    family, child, adv, _, relationship = await _supported(gql)
    evidence = await _evidence(gql, family, child)
    document = await upload(gql, family, evidence)
    await _grant(gql, family, relationship, child)
    url = await advocate_download_url(gql, adv.token, family.family_id or "")
    assert url is not None
    await gql.data(END, {"input": {"relationshipId": relationship, "reason": "RESOLVED"}}, family.token)
    assert (await gql.http.get(url)).status_code == 404

    own = await download_url(gql, family.token, document["id"])
    assert own is not None
    await gql.data("mutation { logOut { userErrors { code } } }", token=family.token)
    assert (await gql.http.get(own)).status_code == 404


async def test_tampered_and_expired_urls_are_refused(gql: GraphQLClient, clock: Clock) -> None:
    family = await sign_up(gql)
    evidence = await _evidence(gql, family, await _supported_child(gql, family))
    document = await upload(gql, family, evidence)
    url = document["downloadUrl"]
    base, token = url.rsplit("/", 1)
    payload, mac = token.split(".")
    # The document named in the link changed, the signature kept; then each character changed in turn.
    fields = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode().split(".")
    fields[1] = str(int(fields[1]) + 1)
    other = base64.urlsafe_b64encode(".".join(fields).encode()).decode().rstrip("=")
    changed = [f"{base}/{other}.{mac}", f"{base}/{payload}.{mac[:-2]}", f"{base}/{payload}", f"{base}/x"]
    for i, c in enumerate(token):
        changed.append(f"{base}/{token[:i]}{'B' if c == 'A' else 'A'}{token[i + 1 :]}")
    for bad in changed:
        refused = await gql.http.get(bad)
        assert refused.status_code == 404, bad
    upload_url_as_download = (await start(gql, family, evidence, EP_REPORT)).upload["url"]
    swapped = base + "/" + upload_url_as_download.rsplit("/", 1)[1]
    assert (await gql.http.get(swapped)).status_code == 404

    clock.offset += timedelta(seconds=301)
    expired = await gql.http.get(url)
    assert expired.status_code == 410
    assert expired.json()["errors"][0]["extensions"]["code"] == "URL_EXPIRED"


async def test_wrong_hash_wrong_size_and_disguised_files_are_rejected(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    evidence = await _evidence(gql, family, await _supported_child(gql, family))
    html = b"<!DOCTYPE html><html><script>fetch('/graphql')</script></html>"
    exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200
    elf = b"\x7fELF\x02\x01\x01" + b"\x00" * 200
    cases: list[tuple[bytes, dict[str, Any], str]] = [
        (EP_REPORT, {"sha256": sha256(b"something else")}, "HASH_MISMATCH"),
        (EP_REPORT[:-10], {"byteSize": len(EP_REPORT)}, "SIZE_MISMATCH"),
        (html, {}, "TYPE_MISMATCH"),
        (exe, {}, "TYPE_MISMATCH"),
        (elf, {}, "TYPE_MISMATCH"),
        (html, {"contentType": "text/plain", "filename": "page.txt"}, "TYPE_MISMATCH"),
        (EP_REPORT, {"contentType": "image/png", "filename": "x.png"}, "TYPE_MISMATCH"),
    ]
    for data, declared, reason in cases:
        started = await start(gql, family, evidence, data, **declared)
        assert (await put(gql, started, data)).status_code == 200
        done = await complete(gql, family, started.id)
        assert done["userErrors"] == [], done
        assert (done["document"]["status"], done["document"]["rejectionReason"]) == ("REJECTED", reason)
        assert done["document"]["downloadUrl"] is None
        again = await complete(gql, family, started.id)
        assert [e["code"] for e in again["userErrors"]] == ["ALREADY_COMPLETED"]


async def test_more_bytes_than_declared_are_refused_while_they_stream(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    evidence = await _evidence(gql, family, await _supported_child(gql, family))
    started = await start(gql, family, evidence, EP_REPORT, byteSize=100)

    async def chunked() -> AsyncIterator[bytes]:
        # No Content-Length: the limit is found as the bytes arrive.
        for i in range(0, len(EP_REPORT), 64):
            yield EP_REPORT[i : i + 64]

    for body in (EP_REPORT, chunked()):
        sent = await gql.http.put(started.upload["url"], content=body)
        assert sent.status_code == 413
        assert sent.json()["errors"][0]["extensions"]["code"] == "TOO_LARGE"
    done = await complete(gql, family, started.id)
    assert [e["code"] for e in done["userErrors"]] == ["UPLOAD_MISSING"]


async def test_bad_declarations_are_user_errors_and_create_nothing(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    evidence = await _evidence(gql, family, await _supported_child(gql, family))
    other = await sign_up(gql)
    others_evidence = await _evidence(gql, other, await _supported_child(gql, other))
    good = {
        "evidenceId": evidence,
        "filename": "report.pdf",
        "contentType": "application/pdf",
        "byteSize": 1000,
        "sha256": "a" * 64,
    }
    changes: list[tuple[dict[str, Any], str, str]] = [
        ({"byteSize": 1024 * 1024 + 1}, "TOO_LARGE", "byteSize"),
        ({"byteSize": 0}, "INVALID", "byteSize"),
        ({"byteSize": -5}, "INVALID", "byteSize"),
        ({"sha256": "xyz"}, "INVALID", "sha256"),
        ({"sha256": "a" * 63}, "INVALID", "sha256"),
        ({"contentType": "text/html"}, "UNSUPPORTED_CONTENT_TYPE", "contentType"),
        ({"contentType": "application/x-msdownload"}, "UNSUPPORTED_CONTENT_TYPE", "contentType"),
        ({"filename": "../../etc/passwd"}, "INVALID", "filename"),
        ({"filename": "a\\b.pdf"}, "INVALID", "filename"),
        ({"filename": "report\u202efdp.exe"}, "INVALID", "filename"),
        ({"filename": "   "}, "REQUIRED", "filename"),
        ({"filename": "x" * 256}, "TOO_LONG", "filename"),
        ({"evidenceId": others_evidence}, "NOT_FOUND", "evidenceId"),
        ({"evidenceId": family.family_id}, "NOT_FOUND", "evidenceId"),
    ]
    for change, code, field in changes:
        body = await gql.data(CREATE, {"input": {**good, **change}}, family.token)
        result = body["createDocumentUpload"]
        assert result["document"] is None, change
        assert result["upload"] is None, change
        assert [(e["code"], e["field"]) for e in result["userErrors"]] == [(code, field)], change
    listed = await gql.data(VAULT_DOCUMENTS, {"f": family.family_id}, family.token)
    assert listed["vault"]["evidence"]["edges"][0]["node"]["documents"]["totalCount"] == 0

    # Another family's document is NOT_FOUND to every mutation, as elsewhere.
    theirs = await upload(gql, other, others_evidence)
    for query in (DELETE,):
        body = await gql.data(query, {"id": theirs["id"]}, family.token)
        assert [e["code"] for e in body["deleteDocument"]["userErrors"]] == ["NOT_FOUND"]
    done = await complete(gql, family, theirs["id"])
    assert [e["code"] for e in done["userErrors"]] == ["NOT_FOUND"]
    assert (await gql.data(NODE, {"id": theirs["id"]}, family.token))["node"] is None


async def test_a_token_without_vault_write_cannot_upload_and_without_vault_read_gets_no_url(
    gql: GraphQLClient,
) -> None:
    family = await sign_up(gql)
    evidence = await _evidence(gql, family, await _supported_child(gql, family))
    document = await upload(gql, family, evidence)
    read_only = await api_token(gql, family, ["VAULT_READ"])
    refused = await gql(
        "mutation($id: ID!) { deleteDocument(input: {documentId: $id}) { userErrors { code } } }",
        {"id": document["id"]},
        read_only,
    )
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    url = await download_url(gql, read_only, document["id"])
    assert url is not None
    assert (await gql.http.get(url)).status_code == 200
    no_read = await api_token(gql, family, ["VAULT_WRITE"])
    assert await download_url(gql, no_read, document["id"]) is None


async def test_the_store_holds_no_plaintext(gql: GraphQLClient, storage_root: Path) -> None:
    family = await sign_up(gql)
    evidence = await _evidence(gql, family, await _supported_child(gql, family))
    secret = b"Diagnosis: autism spectrum condition. Unique marker 7f3a9c41.\n" * 3000
    text = await upload(
        gql, family, evidence, secret, filename="diagnosis-7f3a9c41.txt", content_type="text/plain"
    )
    report = await upload(gql, family, evidence, EP_REPORT)
    # This test's two objects only: the store is shared by the session, and a short marker (4 bytes)
    # turns up by chance in a few MB of ciphertext (once in about 400 runs for 10 MB).
    for document in (text, report):
        path = await _object(storage_root, document["id"])
        stored = path.read_bytes()
        assert len(stored) > 0
        assert b"7f3a9c41" not in stored
        assert b"Diagnosis" not in stored
        assert not stored.startswith(b"%PDF")
        assert EP_REPORT[:16] not in stored
        assert b"Working memory" not in stored
        assert "7f3a9c41" not in str(path)


async def test_deleting_a_document_or_its_evidence_removes_it_and_the_sweep_removes_the_objects(
    gql: GraphQLClient, clock: Clock, storage_root: Path
) -> None:
    family = await sign_up(gql)
    child = await _supported_child(gql, family)
    evidence = await _evidence(gql, family, child)
    first = await upload(gql, family, evidence)
    second = await upload(gql, family, evidence, BIG_PNG, filename="scan.png", content_type="image/png")
    first_object, second_object = (
        await _object(storage_root, first["id"]),
        await _object(storage_root, second["id"]),
    )
    assert _exists(first_object)
    assert _exists(second_object)
    url = first["downloadUrl"]
    deleted = await gql.data(
        "mutation($id: ID!) { deleteDocument(input: {documentId: $id}) {"
        " document { id status downloadUrl } userErrors { code } } }",
        {"id": first["id"]},
        family.token,
    )
    assert deleted["deleteDocument"]["userErrors"] == []
    assert deleted["deleteDocument"]["document"]["downloadUrl"] is None
    assert (await gql.http.get(url)).status_code == 404
    assert (await gql.data(NODE, {"id": first["id"]}, family.token))["node"] is None
    assert not _exists(first_object)

    second_url = second["downloadUrl"]
    gone = await gql.data(
        "mutation($id: ID!) { deleteEvidence(input: {evidenceId: $id}) { userErrors { code } } }",
        {"id": evidence},
        family.token,
    )
    assert gone["deleteEvidence"]["userErrors"] == []
    assert (await gql.data(NODE, {"id": second["id"]}, family.token))["node"] is None
    assert (await gql.http.get(second_url)).status_code == 404
    assert not _exists(second_object)

    # An upload never completed, and an object whose immediate removal failed (no row holds it):
    # both gone once old enough.
    other_evidence = await _evidence(gql, family, child, "Letter")
    pending = await start(gql, family, other_evidence, EP_REPORT)
    assert (await put(gql, pending, EP_REPORT)).status_code == 200
    pending_object = await _object(storage_root, pending.id)
    stray = storage_root / "documents" / "987654" / f"{int(clock.now().timestamp() * 1000)}-abcdef"
    _write(stray, b"sealed bytes of a deleted document")
    await sweep(gql)
    assert _exists(pending_object)
    assert _exists(stray)
    clock.offset += timedelta(hours=8)
    await sweep(gql)
    assert (await gql.data(NODE, {"id": pending.id}, family.token))["node"] is None
    assert not _exists(pending_object)
    assert not _exists(stray)


async def _object(root: Path, document_id: str) -> Path:
    row = await DocumentRow.get(id=db_id(document_id))
    return root / str(row.object_key)


def _exists(path: Path) -> bool:
    return path.is_file()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def test_an_upload_cannot_replace_a_completed_document(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    evidence = await _evidence(gql, family, await _supported_child(gql, family))
    started = await start(gql, family, evidence, EP_REPORT)
    assert (await put(gql, started, EP_REPORT)).status_code == 200
    assert (await complete(gql, family, started.id))["document"]["status"] == "AVAILABLE"
    again = await put(gql, started, EP_REPORT)
    assert again.status_code == 409
    assert again.json()["errors"][0]["extensions"]["code"] == "UPLOAD_CLOSED"


async def test_a_repeated_upload_replaces_the_first(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    evidence = await _evidence(gql, family, await _supported_child(gql, family))
    started = await start(gql, family, evidence, EP_REPORT)
    assert (await put(gql, started, EP_REPORT[:100])).status_code == 200
    assert (await put(gql, started, EP_REPORT)).status_code == 200
    done = await complete(gql, family, started.id)
    assert done["document"]["status"] == "AVAILABLE"
    assert (await gql.http.get(done["document"]["downloadUrl"])).content == EP_REPORT


async def test_an_unsafe_filename_is_sent_safely(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    evidence = await _evidence(gql, family, await _supported_child(gql, family))
    name = 'Zoë\'s "report"; v2.pdf'
    document = await upload(gql, family, evidence, filename=name)
    disposition = (await gql.http.get(document["downloadUrl"])).headers["content-disposition"]
    plain, encoded = disposition.split("; filename*=UTF-8''")
    assert plain == 'attachment; filename="Zo__s _report__ v2.pdf"'
    assert unquote(encoded) == name


async def test_nothing_of_a_document_is_in_a_log_line(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every line the server writes at its levels (ours to DEBUG; libraries at INFO: a DEBUG log of
    # the ORM's SQL parameters holds every value of every row, documents' or not).
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="senvault")
    # Not the server's: the test's own HTTP client logs each URL it fetches.
    caplog.set_level(logging.WARNING, logger="httpx")
    family = await sign_up(gql)
    evidence = await _evidence(gql, family, await _supported_child(gql, family))
    secret = b"Private marker 51c0ffee in a letter.\n"
    document = await upload(
        gql, family, evidence, secret, filename="marker-51c0ffee.txt", content_type="text/plain"
    )
    url = document["downloadUrl"]
    assert (await gql.http.get(url)).status_code == 200
    token = url.rsplit("/", 1)[1]
    written = caplog.text + capsys.readouterr().out
    for needle in ("51c0ffee", token, sha256(secret)):
        assert needle not in written


async def test_another_family_and_anonymous_get_no_url(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    evidence = await _evidence(gql, family, await _supported_child(gql, family))
    document = await upload(gql, family, evidence)
    other = await sign_up(gql)
    assert await download_url(gql, other.token, document["id"]) is None
    assert await download_url(gql, None, document["id"]) is None


async def test_rotating_the_master_key_keeps_every_document_readable(gql: GraphQLClient) -> None:
    services = gql.app.state.services
    original = services.documents
    family = await sign_up(gql)
    evidence = await _evidence(gql, family, await _supported_child(gql, family))
    document = await upload(gql, family, evidence)
    new_key = bytes(range(100, 132))
    try:
        # The new key current, the old one still accepted: old documents open, new ones use the new key.
        services.documents = replace(original, keys=MasterKeys(new_key, (original.keys.current,)))
        url = await download_url(gql, family.token, document["id"])
        assert (await gql.http.get(url or "")).content == EP_REPORT
        assert await rewrap_keys(services) >= 1
        assert await rewrap_keys(services) == 0
        # Every key re-wrapped: the old master key is no longer needed.
        services.documents = replace(original, keys=MasterKeys(new_key))
        url = await download_url(gql, family.token, document["id"])
        assert (await gql.http.get(url or "")).content == EP_REPORT
    finally:
        services.documents = original
    # A store whose master key cannot open a document's key answers 503, never the bytes.
    url = await download_url(gql, family.token, document["id"])
    refused = await gql.http.get(url or "")
    assert refused.status_code == 503
    assert refused.json()["errors"][0]["extensions"]["code"] == "STORAGE_UNAVAILABLE"


def _damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[20] ^= 0x01
    path.write_bytes(bytes(data))


async def test_a_damaged_or_missing_object_is_refused_not_served(
    gql: GraphQLClient, storage_root: Path
) -> None:
    family = await sign_up(gql)
    evidence = await _evidence(gql, family, await _supported_child(gql, family))
    document = await upload(gql, family, evidence)
    stored = await _object(storage_root, document["id"])
    _damage(stored)
    damaged = await gql.http.get(document["downloadUrl"])
    assert damaged.status_code == 503
    assert damaged.json()["errors"][0]["extensions"]["code"] == "STORAGE_UNAVAILABLE"
    stored.unlink()
    missing = await gql.http.get(document["downloadUrl"])
    assert missing.status_code == 503


async def test_readiness_reports_a_store_that_cannot_be_written(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = gql.app.state.services.documents.storage

    async def refused() -> None:
        raise StorageError("the folder is missing or not writable")

    monkeypatch.setattr(storage, "check", refused)
    ready = await gql.http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["storage"] == "unavailable: the folder is missing or not writable"


EVIDENCE_DOCUMENTS = """
query($f: ID!, $n: Int) {
  vault(familyId: $f) {
    evidence(first: $n) { edges { node { id documents { totalCount edges { node { id filename } } } } } }
  }
}
"""


@pytest.mark.parametrize("links", [False, True], ids=["listed", "with-download-urls"])
async def test_listing_documents_sends_as_many_statements_for_12_evidence_items_as_for_3(
    gql: GraphQLClient, links: bool
) -> None:
    """And with a download link for each: the grant is checked, and the advocate's links written
    to the family's access log, once for the page, not once a document."""
    family, child, adv, _, relationship = await _supported(gql)
    await _grant(gql, family, relationship, child)
    for n in range(12):
        evidence = await _evidence(gql, family, child, f"Report {n}")
        await upload(gql, family, evidence, filename=f"report-{n}.pdf")
    query = (
        EVIDENCE_DOCUMENTS.replace("id filename", "id filename downloadUrl") if links else EVIDENCE_DOCUMENTS
    )
    counts: dict[str, set[int]] = {"family": set(), "advocate": set()}
    for who, token in (("family", family.token), ("advocate", adv.token)):
        for n in (3, 12):
            with statements() as sent:
                data = await gql.data(query, {"f": family.family_id, "n": n}, token)
            edges = data["vault"]["evidence"]["edges"]
            assert len(edges) == n
            assert all(e["node"]["documents"]["totalCount"] == 1 for e in edges)
            if links:
                urls = [d["node"]["downloadUrl"] for e in edges for d in e["node"]["documents"]["edges"]]
                assert len(set(urls)) == n
                assert all(urls)
            counts[who].add(len(sent))
    assert all(len(c) == 1 for c in counts.values()), counts
    log = await gql.data(
        "{ viewer { family { vaultAccessLog(first: 100) { edges { node { what } } } } } }", token=family.token
    )
    issued = [
        e["node"]["what"]
        for e in log["viewer"]["family"]["vaultAccessLog"]["edges"]
        if e["node"]["what"].startswith("download link: ")
    ]
    assert len(issued) == (3 + 12 if links else 0)
