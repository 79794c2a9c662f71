"""OpenTelemetry traces of GraphQL operations, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (SPEC §13).

strawberry's `OpenTelemetryExtension` makes the spans: one per operation, with its parsing and
validation, and one per resolver that does work. Two things it would record carry a family's data
to the tracing backend, and are left out here:

- the document's text, since a client may write values inline
  (`sendMessage(input: {body: "…"})`); the span has the SHA-256 of the document instead, the name
  Apollo's persisted queries and the trusted-documents manifest give it;
- the resolvers' arguments; only the page sizes (`first`, `last`) are kept.

The operation span also carries the request id, the key the access log and the response's
`X-Request-ID` share, so one trace leads to the log lines of the same request. Errors set the
span's status without a description: an error's message can quote what the client sent.

The exporter is OTLP over HTTP (protobuf), configured by the SDK's own environment variables
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`, …).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Generator
from inspect import isawaitable
from typing import Any

from graphql import GraphQLResolveInfo
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from strawberry import Schema
from strawberry.extensions import LifecycleStep
from strawberry.extensions.tracing import OpenTelemetryExtension
from strawberry.extensions.tracing.utils import should_skip_tracing
from strawberry.types import ExecutionContext

from schema.context import current_request_id

SERVICE_NAME = "senvault-api"
# The only resolver arguments a span records: how many items a list was asked for.
KEPT_ARGUMENTS = frozenset({"first", "last"})


def start(endpoint: str | None) -> TracerProvider | None:
    """This process's tracer provider exporting over OTLP, or None when no endpoint is set. The
    caller shuts it down when the server stops, which sends the spans still batched."""
    if not endpoint:
        return None
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": SERVICE_NAME}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def document_digest(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def _page_sizes(args: dict[str, Any], info: GraphQLResolveInfo[Any]) -> dict[str, Any]:
    return {name: value for name, value in args.items() if name in KEPT_ARGUMENTS}


def extension(provider: TracerProvider) -> type[OpenTelemetryExtension]:
    """The schema extension tracing every operation to `provider`, without personal data."""

    class PrivateTracing(OpenTelemetryExtension):
        def __init__(self, *, execution_context: ExecutionContext | None = None) -> None:
            super().__init__(
                execution_context=execution_context, arg_filter=_page_sizes, tracer_provider=provider
            )

        def on_operation(self) -> Generator[None, None, None]:
            context = self.execution_context
            named = context.operation_name
            span = self._tracer.start_span(f"GraphQL {named}" if named else "GraphQL", kind=SpanKind.SERVER)
            self._span_holder[LifecycleStep.OPERATION] = span
            span.set_attribute("component", "graphql")
            if context.query:
                span.set_attribute("graphql.document.sha256", document_digest(context.query))
            request_id = current_request_id.get()
            if request_id:
                span.set_attribute("senvault.request_id", request_id)
            try:
                yield
            finally:
                # Known once the document is parsed: the operation a nameless request ran.
                if context.operation_name:
                    span.set_attribute("graphql.operation.name", context.operation_name)
                    if not named:
                        span.update_name(f"GraphQL {context.operation_name}")
                try:
                    span.set_attribute("graphql.operation.type", context.operation_type.value)
                except RuntimeError:
                    pass  # the document did not parse, or named no operation
                result = context.result
                if context.pre_execution_errors or (result is not None and getattr(result, "errors", None)):
                    span.set_status(Status(StatusCode.ERROR))
                span.end()

        async def resolve(
            self,
            _next: Callable[..., Any],
            root: Any,
            info: GraphQLResolveInfo[Any],
            *args: str,
            **kwargs: Any,
        ) -> Any:
            # strawberry's own, but an exception is not recorded on the span: its message and stack
            # can quote what the client sent.
            if should_skip_tracing(_next, info):
                result = _next(root, info, *args, **kwargs)
                return await result if isawaitable(result) else result
            with self._tracer.start_as_current_span(
                f"GraphQL Resolving: {info.field_name}",
                context=trace.set_span_in_context(self._span_holder[LifecycleStep.OPERATION]),
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                self.add_tags(span, info, kwargs)
                result = _next(root, info, *args, **kwargs)
                return await result if isawaitable(result) else result

    return PrivateTracing


def install(schema: Schema, provider: TracerProvider) -> None:
    """Trace `schema`'s operations to `provider` from now on, in place of any earlier tracing
    installed in this process (the schema is the process's one schema)."""
    kept: list[Any] = [
        e for e in schema.extensions if not (isinstance(e, type) and issubclass(e, OpenTelemetryExtension))
    ]
    schema.extensions = (*kept, extension(provider))
