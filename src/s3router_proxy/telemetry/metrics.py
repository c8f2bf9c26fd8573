"""Prometheus metrics: what operators graph and alert on.

Label sets are small and bounded (operation names, rule indexes, backend names, status
classes, fixed reasons), never bucket or key names, so cardinality cannot explode. With
`--workers N` the workers write to a shared multiprocess directory and `/metrics` aggregates.

Otherwise (one process) the values are plain Python numbers, turned into the same exposition
only when `/metrics` is scraped: each process serves from one asyncio event loop, so updates
never race, and prometheus_client's lock per update and loop over histogram buckets cost a few
percent of the CPU of a small request.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from .counters import LATENCY_BUCKETS, PlainCounter, PlainGauge, PlainHistogram

# Decided once, at import, as prometheus_client decides where its values live.
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


# ---------------------------------------------------------------------------------------------
# The metrics: prometheus_client's own with `--workers N` (values in the shared directory),
# plain ones otherwise.

if MULTIPROCESS:
    _counter: Any = Counter
    _gauge: Any = Gauge
    _histogram: Any = Histogram
else:
    _counter, _gauge, _histogram = PlainCounter, PlainGauge, PlainHistogram

REQUESTS = _counter(
    "s3router_requests_total",
    "Requests answered, by S3 operation, rule, backend and status class.",
    ["operation", "rule", "backend", "status_class"],
)
REQUEST_SECONDS = _histogram(
    "s3router_request_duration_seconds",
    "Whole-request latency as the client sees it (until the last byte is written).",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
BACKEND_SECONDS = _histogram(
    "s3router_backend_duration_seconds",
    "Time from sending a request to a backend until its response headers arrived.",
    ["backend"],
    buckets=LATENCY_BUCKETS,
)
BYTES_IN = _counter(
    "s3router_request_bytes_total", "Request body bytes forwarded to backends.", ["backend"]
)
BYTES_OUT = _counter(
    "s3router_response_bytes_total", "Response body bytes streamed to clients.", ["backend"]
)
AUTH_FAILURES = _counter(
    "s3router_auth_failures_total",
    "Requests refused by authentication, by S3 error code.",
    ["reason"],
)
IN_FLIGHT = _gauge(
    "s3router_requests_in_flight",
    "Requests being served right now.",
    multiprocess_mode="livesum",
)
BACKEND_ERRORS = _counter(
    "s3router_backend_errors_total",
    "Backend failures: unreachable, timeout, broken stream, or a 5xx answer.",
    ["backend", "kind"],
)
CONFIG_RELOADS = _counter(
    "s3router_config_reloads_total", "Configuration reloads, by result.", ["result"]
)
MIRROR_FAILURES = _counter(
    "s3router_mirror_failures_total",
    "Writes a mirror backend did not take (best_effort) or that failed a strict write.",
    ["backend", "operation"],
)
MIRROR_JOURNAL_FAILURES = _counter(
    "s3router_mirror_journal_failures_total",
    "Mirror misses that could not be written to the journal (router.mirror_journal).",
    ["journal"],
)
SHED = _counter(
    "s3router_requests_shed_total",
    "Requests refused with 503 SlowDown because the concurrency limit was reached.",
)

AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AuthorizationHeaderMalformed",
        "AuthorizationQueryParametersError",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "RequestTimeTooSkewed",
        "InvalidRequest",
        "InvalidToken",
        "ExpiredToken",
    }
)


if MULTIPROCESS:
    _children: dict[tuple[object, tuple[str, ...]], object] = {}

    def child(metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, cached: looking children up costs more than updating them."""
        key = (metric, labels)
        found = _children.get(key)
        if found is None:
            found = _children[key] = metric.labels(*labels)
        return found

else:

    def child(metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`: the plain value for these labels, made on first use."""
        found = metric.children.get(labels)
        if found is None:
            found = metric.labels(*labels)
        return found


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def exposition() -> tuple[bytes, str]:
    """(body, content type) of the current metrics, aggregated across workers if any."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), "text/plain; version=0.0.4; charset=utf-8"
    return generate_latest(), "text/plain; version=0.0.4; charset=utf-8"
