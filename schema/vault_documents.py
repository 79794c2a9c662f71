"""Documents in the Vault as GraphQL: the Document node, staged uploads and signed download URLs."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay

from models import documents as m
from resolvers import documents
from resolvers.access import vault as access
from schema.arguments import INPUT
from schema.connections import TotalCount, decode_id, nodes
from schema.context import Info
from schema.errors import UserError, attempt
from schema.permissions import IsFamily

if TYPE_CHECKING:
    from schema.vault import Evidence

strawberry.enum(m.DocumentStatus, description="Where a document is in its staged upload.")
strawberry.enum(m.RejectionReason, name="DocumentRejectionReason", description="Why an upload was refused.")
DocumentStatus = m.DocumentStatus
DocumentRejectionReason = m.RejectionReason


def absolute(info: Info, path: str) -> str:
    """A URL on this server for `path`, as the client reached it."""
    return str(info.context.request.base_url).rstrip("/") + path


@strawberry.type(description="A file under a piece of evidence: an EP report, a letter, a photo of a note.")
class Document(relay.Node):
    id: relay.NodeID[int]
    filename: str = strawberry.field(description="The file's name, as the family gave it.")
    content_type: str = strawberry.field(
        description="Its type (application/pdf, image/png, image/jpeg, image/heic, DOCX, ODT or text/plain)."
    )
    byte_size: int = strawberry.field(description="Its size in bytes.")
    sha256: str = strawberry.field(description="The SHA-256 of its bytes, in lowercase hexadecimal.")
    status: DocumentStatus = strawberry.field(description="PENDING_UPLOAD, AVAILABLE or REJECTED.")
    rejection_reason: DocumentRejectionReason | None = strawberry.field(
        description="Why the upload was refused, when it was."
    )
    uploaded_at: datetime | None = strawberry.field(description="When its upload was completed and accepted.")
    created_at: datetime = strawberry.field(description="When its upload was started.")
    _row: strawberry.Private[m.Document]

    @classmethod
    def from_model(cls, d: m.Document) -> Document:
        return cls(
            id=d.id,
            filename=d.filename,
            content_type=d.content_type,
            byte_size=d.byte_size,
            sha256=d.sha256,
            status=d.status,
            rejection_reason=d.rejection_reason,
            uploaded_at=d.uploaded_at,
            created_at=d.created_at,
            _row=d,
        )

    @strawberry.field(description="The evidence it belongs to.")
    async def evidence(self, info: Info) -> Annotated[Evidence, strawberry.lazy("schema.vault")] | None:
        from schema.vault import Evidence

        row = await documents.evidence_of(info.context.services, info.context.viewer, self._row)
        return Evidence.from_model(row) if row is not None else None

    @strawberry.field(
        description=(
            "A signed link to download it, valid for DOWNLOAD_URL_SECONDS (default 300): null unless it is "
            "AVAILABLE and the viewer may read it now (its family, or an advocate with a live EVIDENCE "
            "grant for the child; each link issued to an advocate is in the family's access log). The "
            "grant is checked again when the link is fetched."
        )
    )
    async def download_url(self, info: Info) -> str | None:
        context = info.context
        path = await context.loaders.download_paths(context.services, context.viewer).load(self._row)
        return absolute(info, path) if path is not None else None

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[Document | None]:
        return await nodes(info.context.viewer, node_ids, access.documents, cls.from_model)


@strawberry.type(description="A page of documents, newest first.")
class DocumentConnection(relay.Connection[Document], TotalCount):
    pass


@strawberry.type(description="An HTTP header to send with an upload.")
class HttpHeader:
    name: str = strawberry.field(description="The header's name.")
    value: str = strawberry.field(description="Its value.")


@strawberry.type(
    description="Where and how to send a document's bytes: one request with the file as its body."
)
class DocumentUpload:
    url: str = strawberry.field(
        description="Send the file's bytes here (a signed URL; no Authorization needed)."
    )
    method: str = strawberry.field(description="The HTTP method: PUT.")
    headers: list[HttpHeader] = strawberry.field(description="Headers to send with it.")
    expires_at: datetime = strawberry.field(description="When the URL stops working.")


@strawberry.input(description="A document to upload under a piece of evidence.")
class CreateDocumentUploadInput:
    evidence_id: relay.GlobalID = strawberry.field(description="Your evidence.")
    filename: str = strawberry.field(description="The file's name; 1–255 characters, no / or \\.")
    content_type: str = strawberry.field(
        description="Its type: application/pdf, image/png, image/jpeg, image/heic, "
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document, "
        "application/vnd.oasis.opendocument.text or text/plain. Checked against the bytes."
    )
    byte_size: int = strawberry.field(description="Its exact size in bytes; at most MAX_DOCUMENT_BYTES.")
    sha256: str = strawberry.field(description="The SHA-256 of its bytes, 64 hexadecimal digits.")


@strawberry.type(description="The result of createDocumentUpload.")
class CreateDocumentUploadPayload:
    document: Document | None = strawberry.field(description="The document, PENDING_UPLOAD.")
    upload: DocumentUpload | None = strawberry.field(description="Where to send its bytes.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.input(description="The document whose upload to complete.")
class CompleteDocumentUploadInput:
    document_id: relay.GlobalID = strawberry.field(description="Your pending document.")


@strawberry.input(description="The document to delete.")
class DeleteDocumentInput:
    document_id: relay.GlobalID = strawberry.field(description="Your document.")


@strawberry.type(description="The result of completeDocumentUpload or deleteDocument.")
class DocumentPayload:
    document: Document | None = strawberry.field(description="The document.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.type
class DocumentMutation:
    @strawberry.mutation(
        description=(
            "Start uploading a document under your evidence: send its bytes to `upload.url`, then call "
            "completeDocumentUpload."
        ),
        permission_classes=[IsFamily],
    )
    async def create_document_upload(
        self, info: Info, input: Annotated[CreateDocumentUploadInput, INPUT]
    ) -> CreateDocumentUploadPayload:
        async def run() -> tuple[m.Document, documents.Upload]:
            return await documents.create_upload(
                info.context.services,
                info.context.viewer,
                evidence_id=decode_id(input.evidence_id, "Evidence", "evidenceId"),
                filename=input.filename,
                content_type=input.content_type,
                byte_size=input.byte_size,
                sha256=input.sha256,
            )

        result, errs = await attempt(run())
        if result is None:
            return CreateDocumentUploadPayload(document=None, upload=None, user_errors=errs)
        row, upload = result
        return CreateDocumentUploadPayload(
            document=Document.from_model(row),
            upload=DocumentUpload(
                url=absolute(info, upload.path),
                method=upload.method,
                headers=[HttpHeader(name=n, value=v) for n, v in upload.headers],
                expires_at=upload.expires_at,
            ),
            user_errors=[],
        )

    @strawberry.mutation(
        description="Check an uploaded document's size, SHA-256 and type: AVAILABLE or REJECTED.",
        permission_classes=[IsFamily],
    )
    async def complete_document_upload(
        self, info: Info, input: Annotated[CompleteDocumentUploadInput, INPUT]
    ) -> DocumentPayload:
        async def run() -> m.Document:
            return await documents.complete_upload(
                info.context.services,
                info.context.viewer,
                decode_id(input.document_id, "Document", "documentId"),
            )

        row, errs = await attempt(run())
        return DocumentPayload(document=Document.from_model(row) if row else None, user_errors=errs)

    @strawberry.mutation(description="Delete a document at once.", permission_classes=[IsFamily])
    async def delete_document(
        self, info: Info, input: Annotated[DeleteDocumentInput, INPUT]
    ) -> DocumentPayload:
        async def run() -> m.Document:
            return await documents.delete_document(
                info.context.services,
                info.context.viewer,
                decode_id(input.document_id, "Document", "documentId"),
            )

        row, errs = await attempt(run())
        return DocumentPayload(document=Document.from_model(row) if row else None, user_errors=errs)
