"""OpenTelemetry: a request's trace holds one span per SQL statement, labelled with its database."""

import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import ValidationError
from sqlalchemy import event, text

from app.core.config import Settings
from app.core.observability.tracing import DATABASE_ATTRIBUTE, install_tracing
from app.main import create_app
from tests.accounts import API, signed_up
from tests.conftest import client_for, empty_tables, make_settings, running


class Traced:
    """An app traced into memory, and every statement its engines ran, as SQLAlchemy saw it."""

    def __init__(self, app: FastAPI, exporter: InMemorySpanExporter) -> None:
        self.app = app
        self.exporter = exporter
        self.statements: list[tuple[str, str]] = []  # (database, statement)

    def spans(self) -> list[ReadableSpan]:
        provider: TracerProvider = self.app.state.tracer_provider
        provider.force_flush()
        return list(self.exporter.get_finished_spans())

    def forget(self) -> None:
        self.spans()
        self.exporter.clear()
        self.statements.clear()

    def record_statements(self) -> None:
        for database in (self.app.state.databases.auth, self.app.state.databases.app):

            def record(*args: Any, name: str = database.name) -> None:
                self.statements.append((name, args[2]))

            event.listen(database.engine.sync_engine, "before_cursor_execute", record)


@pytest.fixture
async def traced(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Traced]]:
    exporter = InMemorySpanExporter()
    # Principals in memory would spare most requests their auth statement; these tests
    # look at a request's statements on both databases.
    app = create_app(settings.model_copy(update={"principal_cache": False}))
    install_tracing(app, settings, exporter)
    async with running(app), client_for(app) as http:
        tracing = Traced(app, exporter)
        tracing.record_statements()
        yield http, tracing
        await empty_tables(app)


async def test_a_request_has_one_span_per_statement_labelled_with_its_database(
    traced: tuple[httpx.AsyncClient, Traced],
) -> None:
    client, tracing = traced
    ada = await signed_up(client, "ada@example.com")
    created = await client.post(f"{API}/projects", json={"name": "Apollo"}, headers=ada.headers)
    tracing.forget()

    response = await client.get(f"{API}/projects/{created.json()['id']}", headers=ada.headers)

    assert response.status_code == 200
    spans = tracing.spans()
    (server,) = [span for span in spans if span.kind is SpanKind.SERVER]
    assert server.name == "GET /api/v1/projects/{project_id}"
    assert server.attributes is not None
    assert server.attributes["http.request.id"] == response.headers["x-request-id"]
    statements = [span for span in spans if span.kind is SpanKind.CLIENT]
    assert {span.context.trace_id for span in spans} == {server.context.trace_id}
    assert all(span.parent is not None for span in statements)
    traced_statements = sorted(
        (span.attributes[DATABASE_ATTRIBUTE], span.attributes["db.statement"])
        for span in statements
        if span.attributes is not None
    )
    assert traced_statements == sorted(tracing.statements)
    assert {database for database, _ in traced_statements} == {"auth", "app"}


async def test_probes_and_statements_outside_a_request_are_not_traced(
    traced: tuple[httpx.AsyncClient, Traced],
) -> None:
    client, tracing = traced

    assert (await client.get("/health/ready")).status_code == 200
    assert (await client.get("/metrics")).status_code == 200
    async with tracing.app.state.databases.app.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))

    assert tracing.statements  # statements ran...
    assert tracing.spans() == []  # ...and none became a trace of its own


async def test_with_one_engine_for_both_databases_statements_are_labelled_shared(
    tmp_path: Path,
) -> None:
    single = make_settings(database_url=f"sqlite:///{tmp_path / 'both.db'}")
    exporter = InMemorySpanExporter()
    app = create_app(single)
    provider = install_tracing(app, single, exporter)
    async with running(app):
        tracer = provider.get_tracer("test")
        with tracer.start_as_current_span("a request"):
            for database in (app.state.databases.auth, app.state.databases.app):
                async with database.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
        provider.force_flush()

    labels = [
        span.attributes.get(DATABASE_ATTRIBUTE)
        for span in exporter.get_finished_spans()
        if span.attributes is not None and span.attributes.get("db.statement") == "SELECT 1"
    ]
    assert labels == ["shared", "shared"]


def test_tracing_is_off_unless_an_endpoint_is_set(tmp_path: Path) -> None:
    app = create_app(make_settings(data_dir=str(tmp_path)))

    assert not hasattr(app.state, "tracer_provider")


@pytest.mark.parametrize("endpoint", ["localhost:4318", "grpc://collector:4317"])
def test_an_endpoint_that_is_not_http_is_refused(endpoint: str) -> None:
    with pytest.raises(ValidationError, match="OTEL_EXPORTER_OTLP_ENDPOINT"):
        make_settings(otel_exporter_otlp_endpoint=endpoint)


class Collector(BaseHTTPRequestHandler):
    """The OTLP/HTTP receiver of an OpenTelemetry collector, keeping what it is sent."""

    received: list[tuple[str, ExportTraceServiceRequest]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, ExportTraceServiceRequest.FromString(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    Collector.received = []
    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_with_an_endpoint_set_spans_reach_the_collector_over_otlp_http(
    collector: str, tmp_path: Path
) -> None:
    settings = make_settings(
        data_dir=str(tmp_path), otel_exporter_otlp_endpoint=collector, otel_service_name="shop"
    )
    async with running(create_app(settings)) as app, client_for(app) as client:
        assert (await client.get(f"{API}/users/me")).status_code == 401
        app.state.tracer_provider.force_flush()

    ((path, export),) = Collector.received
    assert path == "/v1/traces"
    (resource_spans,) = export.resource_spans
    service = {
        attribute.value.string_value
        for attribute in resource_spans.resource.attributes
        if attribute.key == "service.name"
    }
    assert service == {"shop"}
    names = [span.name for scope in resource_spans.scope_spans for span in scope.spans]
    assert names == ["GET /api/v1/users/me"]
