"""Prometheus metrics: what operators graph and alert on.

Label sets are small and bounded (operation names, rule indexes, backend names, status
classes, fixed reasons), never bucket or key names, so cardinality cannot explode. With
`--workers N` the workers write to a shared multiprocess directory and `/metrics` aggregates.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

REQUESTS = Counter(
    "s3router_requests_total",
    "Requests answered, by S3 operation, rule, backend and status class.",
    ["operation", "rule", "backend", "status_class"],
)
REQUEST_SECONDS = Histogram(
    "s3router_request_duration_seconds",
    "Whole-request latency as the client sees it (until the last byte is written).",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
BACKEND_SECONDS = Histogram(
    "s3router_backend_duration_seconds",
    "Time from sending a request to a backend until its response headers arrived.",
    ["backend"],
    buckets=LATENCY_BUCKETS,
)
BYTES_IN = Counter(
    "s3router_request_bytes_total", "Request body bytes forwarded to backends.", ["backend"]
)
BYTES_OUT = Counter(
    "s3router_response_bytes_total", "Response body bytes streamed to clients.", ["backend"]
)
AUTH_FAILURES = Counter(
    "s3router_auth_failures_total",
    "Requests refused by authentication, by S3 error code.",
    ["reason"],
)
IN_FLIGHT = Gauge(
    "s3router_requests_in_flight",
    "Requests being served right now.",
    multiprocess_mode="livesum",
)
BACKEND_ERRORS = Counter(
    "s3router_backend_errors_total",
    "Backend failures: unreachable, timeout, broken stream, or a 5xx answer.",
    ["backend", "kind"],
)
CONFIG_RELOADS = Counter(
    "s3router_config_reloads_total", "Configuration reloads, by result.", ["result"]
)
MIRROR_FAILURES = Counter(
    "s3router_mirror_failures_total",
    "Writes a mirror backend did not take (best_effort) or that failed a strict write.",
    ["backend", "operation"],
)
SHED = Counter(
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


_children: dict[tuple[object, tuple[str, ...]], object] = {}


def child(metric: object, *labels: str):
    """`metric.labels(*labels)`, cached: looking children up costs more than updating them."""
    key = (metric, labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)  # type: ignore[attr-defined]
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
