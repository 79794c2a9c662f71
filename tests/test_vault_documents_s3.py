"""Documents on an S3-compatible store: the same flow as on the local disk, against `python server.py
serve` with `STORAGE_URL=s3://…`, and moto's S3 server (from pip, the test extra) standing in for
the store, started here on a free port. It is a test double with S3's wire protocol, not MinIO or
AWS: what it proves is that the S3 store speaks that protocol (multipart uploads, ranged reads,
listing, deletes) and that only ciphertext reaches it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiobotocore.session import get_session

import server
from tests.client import GraphQLClient, eventually
from tests.conftest import TEST_MASTER_KEY, require_service
from tests.documents import EP_REPORT, advocate_download_url, upload
from tests.factories import add_child, sign_up
from tests.servers import Served, _stop, free_port, serve
from tests.test_vault import REVOKE, _evidence, _grant, _supported

BUCKET = "senvault-test"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Over S3's 5 MiB minimum part: the upload goes as a multipart upload of two parts.
LARGE = b"\x89PNG\r\n\x1a\n" + bytes((i * 31 + i // 997) % 256 for i in range(6 * 1024 * 1024))


@dataclass
class S3:
    endpoint: str

    def client(self) -> Any:
        return get_session().create_client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    async def keys(self) -> set[str]:
        async with self.client() as s3:
            listed = await s3.list_objects_v2(Bucket=BUCKET)
            return {str(item["Key"]) for item in listed.get("Contents", [])}

    async def objects(self) -> dict[str, bytes]:
        """Every object's bytes; one the server removes between the listing and the read is left
        out (the sweep runs all the while)."""
        async with self.client() as s3:
            out = {}
            for key in await self.keys():
                try:
                    answer = await s3.get_object(Bucket=BUCKET, Key=key)
                except s3.exceptions.NoSuchKey:
                    continue
                async with answer["Body"] as body:
                    out[key] = await body.read()
            return out


@pytest.fixture(scope="module")
async def s3() -> AsyncIterator[S3]:
    """moto's S3 server on a free port, with an empty bucket."""
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        require_service("moto[server]", str(exc))
    port = free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220 - stopped below
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as probe:
            for _ in range(500):
                try:
                    await probe.get(endpoint + "/moto-api/")
                    break
                except httpx.TransportError:
                    if proc.poll() is not None:
                        raise RuntimeError("moto's server exited") from None
                    await asyncio.sleep(0.02)
        store = S3(endpoint)
        async with store.client() as client:
            await client.create_bucket(Bucket=BUCKET)
        yield store
    finally:
        _stop(proc)


@pytest.fixture
async def on_s3(live_server: object, settings: server.Settings, s3: S3) -> AsyncIterator[Served]:
    """The API served on the test run's database, its documents in the S3 bucket."""
    env = {
        "DATABASE_URL": settings.database_url,
        "BROADCAST_URL": "memory://",
        "STORAGE_URL": f"s3://{BUCKET}?endpoint={s3.endpoint}",
        "STORAGE_MASTER_KEY": TEST_MASTER_KEY,
        "SWEEP_SECONDS": "0.2",
        **CREDENTIALS,
    }
    async with serve(env) as served:
        yield served


async def test_the_whole_flow_on_s3_stores_only_ciphertext(gql: GraphQLClient, on_s3: Served, s3: S3) -> None:
    api = on_s3.client
    assert (await api.http.get("/readyz")).json()["checks"]["storage"] == "ok"
    family, child, adv, _, relationship = await _supported(gql)
    evidence = await _evidence(gql, family, child)
    before = set(await s3.objects())

    report = await upload(api, family, evidence)
    scan = await upload(api, family, evidence, LARGE, filename="scan.png", content_type="image/png")
    assert (report["status"], scan["status"]) == ("AVAILABLE", "AVAILABLE")
    assert (await api.http.get(report["downloadUrl"])).content == EP_REPORT
    whole = await api.http.get(scan["downloadUrl"])
    assert whole.content == LARGE
    part = await api.http.get(scan["downloadUrl"], headers={"Range": "bytes=5242870-5242899"})
    assert part.status_code == 206
    assert part.content == LARGE[5242870:5242900]

    stored = {k: v for k, v in (await s3.objects()).items() if k not in before}
    assert len(stored) == 2
    for data in stored.values():
        # Not `b"%PDF" not in data`: four bytes turn up by chance in 5 MB of ciphertext about once in
        # 800 runs.
        assert not data.startswith(b"%PDF")
        assert EP_REPORT[:16] not in data
        assert b"Working memory" not in data
        assert LARGE[1000:1064] not in data

    # An advocate's link, and its revocation between issue and fetch.
    grant = (await _grant(gql, family, relationship, child))["vaultGrant"]["id"]
    url = await advocate_download_url(api, adv.token, family.family_id or "")
    assert url is not None
    assert (await api.http.get(url)).status_code == 200
    await gql.data(REVOKE, {"input": {"grantId": grant}}, family.token)
    assert (await api.http.get(url)).status_code == 404

    # Deleting the document removes its object.
    await api.data(
        "mutation($id: ID!) { deleteDocument(input: {documentId: $id}) { userErrors { code } } }",
        {"id": scan["id"]},
        family.token,
    )
    assert len(set(await s3.objects()) - before) == 1


async def test_the_sweep_removes_objects_no_document_holds_from_s3(
    gql: GraphQLClient, on_s3: Served, s3: S3
) -> None:
    family = await sign_up(gql)
    evidence = await _evidence(gql, family, await add_child(gql, family))
    kept = await upload(on_s3.client, family, evidence)
    async with s3.client() as client:
        # Written long ago (the time in its key) by an upload whose row never came.
        await client.put_object(Bucket=BUCKET, Key="documents/999999/1000000000000-abcdef", Body=b"x")

    async def orphan_gone() -> bool:
        return "documents/999999/1000000000000-abcdef" not in await s3.keys()

    try:
        await eventually(orphan_gone, "the sweep removes the orphaned object")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the server wrote:\n{on_s3.output()[-4000:]}") from None
    assert (await on_s3.client.http.get(kept["downloadUrl"])).content == EP_REPORT
