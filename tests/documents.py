"""Helpers for tests of documents: the staged upload over the real HTTP endpoints, and reading back."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from resolvers.pdf import one_page
from tests.client import GraphQLClient
from tests.factories import Account

PDF = "application/pdf"
EP_REPORT = one_page(
    ["Educational psychologist's report", "Alex Taylor, born 14 March 2016", "Working memory: 5th centile"],
    title="EP report",
)

CREATE = """
mutation($input: CreateDocumentUploadInput!) {
  createDocumentUpload(input: $input) {
    document { id filename contentType byteSize sha256 status rejectionReason uploadedAt downloadUrl }
    upload { url method headers { name value } expiresAt }
    userErrors { code message field }
  }
}
"""
COMPLETE = """
mutation($id: ID!) {
  completeDocumentUpload(input: {documentId: $id}) {
    document { id status rejectionReason uploadedAt byteSize sha256 contentType downloadUrl }
    userErrors { code message field }
  }
}
"""
DELETE = """
mutation($id: ID!) {
  deleteDocument(input: {documentId: $id}) { document { id } userErrors { code message field } }
}
"""
NODE = "query($id: ID!) { node(id: $id) { ... on Document { id status downloadUrl filename } } }"
VAULT_DOCUMENTS = """
query($f: ID!) {
  vault(familyId: $f) {
    evidence { edges { node { id documents { totalCount edges { node { id filename downloadUrl } } } } } }
  }
}
"""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Started:
    document: dict[str, Any]
    upload: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.document["id"])


async def start(
    gql: GraphQLClient,
    family: Account,
    evidence: str,
    data: bytes,
    *,
    filename: str = "ep-report.pdf",
    content_type: str = PDF,
    **declared: Any,
) -> Started:
    """createDocumentUpload, declaring `data` truthfully unless `declared` says otherwise."""
    payload = {
        "evidenceId": evidence,
        "filename": filename,
        "contentType": content_type,
        "byteSize": len(data),
        "sha256": sha256(data),
        **declared,
    }
    body = await gql.data(CREATE, {"input": payload}, family.token)
    created = body["createDocumentUpload"]
    assert created["userErrors"] == [], created
    return Started(created["document"], created["upload"])


async def put(gql: GraphQLClient, started: Started, data: bytes) -> Any:
    """Send the bytes to the upload URL, as a client would (no Authorization)."""
    upload = started.upload
    headers = {h["name"]: h["value"] for h in upload["headers"]}
    return await gql.http.request(upload["method"], upload["url"], content=data, headers=headers)


async def complete(gql: GraphQLClient, family: Account, document_id: str) -> dict[str, Any]:
    body = await gql.data(COMPLETE, {"id": document_id}, family.token)
    result: dict[str, Any] = body["completeDocumentUpload"]
    return result


async def upload(
    gql: GraphQLClient, family: Account, evidence: str, data: bytes = EP_REPORT, **kw: Any
) -> dict[str, Any]:
    """The whole staged upload; returns the completed document."""
    started = await start(gql, family, evidence, data, **kw)
    sent = await put(gql, started, data)
    assert sent.status_code == 200, sent.text
    done = await complete(gql, family, started.id)
    assert done["userErrors"] == [], done
    document: dict[str, Any] = done["document"]
    return document


async def download_url(gql: GraphQLClient, token: str | None, document_id: str) -> str | None:
    body = await gql.data(NODE, {"id": document_id}, token)
    node = body["node"]
    return node["downloadUrl"] if node else None


async def advocate_download_url(gql: GraphQLClient, token: str, family_id: str) -> str | None:
    """The first document's download URL as an advocate reads it, through `vault(familyId)`."""
    body = await gql(VAULT_DOCUMENTS, {"f": family_id}, token)
    vault = (body.get("data") or {}).get("vault")
    if not vault:
        return None
    for edge in vault["evidence"]["edges"]:
        for doc in edge["node"]["documents"]["edges"]:
            url: str | None = doc["node"]["downloadUrl"]
            return url
    return None
