"""Prometheus metrics: requests by route template and status, and both connection pools.

Each app has its own `CollectorRegistry`, so tests that build many apps never share
or clash over a metric. Pool figures are read from the engines when `/metrics` is
scraped; with one engine serving both databases (single-URL mode) its pool is
reported once, as `database="shared"`, so that summing over databases stays right.
"""

from collections.abc import Iterator

from fastapi import FastAPI, Request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.responses import Response

from app.core.db.engines import MeasuredPool
from app.core.db.registry import Databases

# Requests here take milliseconds: the default buckets would start too coarse.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED_ROUTE = "unmatched"  # every path no route matched: one series, not one per path
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_Children = tuple[Counter, Histogram]


class HttpMetrics:
    """Request counts and latency histograms labelled by method, route template and status."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("method", "route", "status")
        self.requests = Counter(
            "http_requests", "HTTP requests answered.", labels, registry=registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from receiving a request to the end of its answer.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        # Looking up labelled children takes a lock and builds keys; remember them.
        self._children: dict[tuple[str, str, int], _Children] = {}

    def observe(self, method: str, route: str | None, status: int, seconds: float) -> None:
        key = (method, route or UNMATCHED_ROUTE, status)
        children = self._children.get(key)
        if children is None:
            labels = (method if method in _METHODS else "OTHER", key[1], str(status))
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


class PoolCollector(Collector):
    """Each connection pool's figures, read at scrape time from `app.state.databases`."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        def gauge(name: str, documentation: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, documentation, labels=["database"])

        def counter(name: str, documentation: str) -> CounterMetricFamily:
            return CounterMetricFamily(name, documentation, labels=["database"])

        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
            "size": gauge("db_pool_size", "Connections the pool keeps open."),
            "checked_out": gauge("db_pool_checked_out", "Connections in use."),
            "idle": gauge("db_pool_idle", "Open connections waiting in the pool."),
            "overflow": gauge("db_pool_overflow", "Connections open beyond the pool size."),
            "max_overflow": gauge("db_pool_max_overflow", "DB_MAX_OVERFLOW."),
            "waits": counter("db_pool_waits", "Checkouts that found every connection busy."),
            "wait_seconds": counter("db_pool_wait_seconds", "Time those checkouts waited."),
            "timeouts": counter(
                "db_pool_timeouts", "Checkouts that gave up after DB_POOL_TIMEOUT (a 503)."
            ),
        }
        for name, pool in _pools(getattr(self.app.state, "databases", None)):
            figures = {
                "size": pool.size(),
                "checked_out": pool.checkedout(),
                "idle": pool.checkedin(),
                # overflow() counts up from -size: negative until the pool is full.
                "overflow": max(pool.overflow(), 0),
                "max_overflow": pool.max_overflow,
                "waits": pool.waits,
                "wait_seconds": pool.wait_seconds,
                "timeouts": pool.timeouts,
            }
            for key, family in families.items():
                family.add_metric([name], figures[key])
        yield from families.values()


def _pools(databases: Databases | None) -> list[tuple[str, MeasuredPool]]:
    if databases is None:  # before start-up
        return []
    return [
        (name, engine.pool)
        for name, engine in databases.distinct_engines()
        if isinstance(engine.pool, MeasuredPool)
    ]


def create_metrics(app: FastAPI) -> HttpMetrics:
    """A registry for `app`, its request and pool metrics, and `GET /metrics` serving them."""
    registry = CollectorRegistry()
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        collector(registry=registry)
    registry.register(PoolCollector(app))

    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    app.state.metrics_registry = registry
    return HttpMetrics(registry)
