"""OpenTelemetry traces of requests and of every SQL statement, labelled with its database.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Each app gets a tracer provider of its
own (the global one is never set), so tests can build many apps with their own exporter.
Requests are traced by opentelemetry-instrumentation-fastapi. Statements are traced by
opentelemetry-instrumentation-sqlalchemy's `EngineTracer`, attached to each engine:
its `SQLAlchemyInstrumentor` would also patch `create_engine` process-wide, once.

Each statement span carries `db.dualbase.database`: `auth` or `app`, or `shared` when
one engine serves both databases (single-URL mode): a statement on the shared engine
does not say which database's tables it reads.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind, Tracer
from opentelemetry.util.types import Attributes

from app.core.config import Settings
from app.core.db.registry import Databases

DATABASE_ATTRIBUTE = "db.dualbase.database"
# Probes and scrapes every few seconds would drown the traces worth reading.
EXCLUDED_URLS = "/health/,/metrics"


def install_tracing(app: FastAPI, settings: Settings, exporter: SpanExporter) -> TracerProvider:
    """Trace `app`'s requests into `exporter`; `trace_databases` adds the statements."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.otel_service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        meter_provider=NoOpMeterProvider(),  # metrics are Prometheus' job
        excluded_urls=EXCLUDED_URLS,
        exclude_spans=["receive", "send"],  # one span per ASGI message is noise
    )
    app.state.tracer_provider = provider
    return provider


def otlp_exporter(endpoint: str) -> SpanExporter:
    """OTLP over HTTP/protobuf to `endpoint`, a collector's base URL like OTEL's own variable."""
    # Imported here: protobuf and requests load only when tracing is on.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")


def trace_databases(app: FastAPI) -> None:
    """Attach statement tracing to each engine, if `install_tracing` ran for `app`."""
    provider: TracerProvider | None = getattr(app.state, "tracer_provider", None)
    if provider is None:
        return
    databases: Databases = app.state.databases
    # EngineTracer also counts pool connections; Prometheus reports those already.
    connections = (
        NoOpMeterProvider().get_meter(__name__).create_up_down_counter("db.client.connections")
    )
    for name, engine in databases.distinct_engines():
        tracer = DatabaseTracer(provider.get_tracer(__name__), name)
        EngineTracer(tracer, engine.sync_engine, connections)  # type: ignore[no-untyped-call]


class DatabaseTracer(Tracer):
    """Starts statement spans labelled with their database, and only inside a trace:
    a query outside any traced request (a health probe) would be a trace on its own."""

    def __init__(self, tracer: Tracer, database: str) -> None:
        self._tracer = tracer
        self._database = database

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        if not trace.get_current_span(context).get_span_context().is_valid:
            return INVALID_SPAN
        return self._tracer.start_span(
            name,
            context,
            kind,
            {**(attributes or {}), DATABASE_ATTRIBUTE: self._database},
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )

    # The base declares a private context-manager type; this one behaves the same.
    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[Span]:
        span = self.start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )
        with trace.use_span(span, end_on_exit, record_exception, set_status_on_exception):
            yield span
