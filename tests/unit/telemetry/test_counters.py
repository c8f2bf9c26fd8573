"""Plain-number metrics: the exposition is what prometheus_client's own metrics would write."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from s3router_proxy.telemetry import metrics
from s3router_proxy.telemetry.counters import PlainCounter, PlainGauge, PlainHistogram

CREATED = re.compile(r"^(\S+_created(?:\{[^}]*\})?) [0-9.e+]+$", re.MULTILINE)


def text(registry: CollectorRegistry) -> str:
    """The exposition, with `_created` timestamps (the only moving part) masked."""
    return CREATED.sub(r"\1 <T>", generate_latest(registry).decode())


def test_counter_with_labels() -> None:
    registry = CollectorRegistry()
    requests = PlainCounter("t_requests_total", "Requests.", ["op", "cls"], registry=registry)
    requests.labels("GetObject", "2xx").inc()
    requests.labels("GetObject", "2xx").inc(2)
    requests.labels(op="PutObject", cls="4xx").inc(0.5)
    assert text(registry) == textwrap.dedent(
        """\
        # HELP t_requests_total Requests.
        # TYPE t_requests_total counter
        t_requests_total{cls="2xx",op="GetObject"} 3.0
        t_requests_total{cls="4xx",op="PutObject"} 0.5
        # HELP t_requests_created Requests.
        # TYPE t_requests_created gauge
        t_requests_created{cls="2xx",op="GetObject"} <T>
        t_requests_created{cls="4xx",op="PutObject"} <T>
        """
    )


def test_unlabelled_counter_starts_at_zero() -> None:
    registry = CollectorRegistry()
    shed = PlainCounter("t_shed_total", "Shed.", registry=registry)
    assert "t_shed_total 0.0\n" in text(registry)
    shed.inc()
    shed.inc()
    assert "t_shed_total 2.0\n" in text(registry)
    assert "t_shed_created <T>\n" in text(registry)


def test_labelled_metric_without_children_writes_only_help_and_type() -> None:
    registry = CollectorRegistry()
    PlainCounter("t_errors_total", "Errors.", ["kind"], registry=registry)
    PlainHistogram("t_seconds", "Seconds.", ["op"], registry=registry, buckets=(1, 2))
    assert text(registry) == (
        "# HELP t_errors_total Errors.\n# TYPE t_errors_total counter\n"
        "# HELP t_seconds Seconds.\n# TYPE t_seconds histogram\n"
    )


def test_histogram_buckets_sum_and_count() -> None:
    registry = CollectorRegistry()
    seconds = PlainHistogram(
        "t_seconds", "Latency.", ["op"], registry=registry, buckets=(0.25, 1, 2.5)
    )
    for value in (0.125, 0.25, 0.5, 1, 4):  # a value on a bound counts in that bound's bucket
        seconds.labels("GetObject").observe(value)
    seconds.labels("HeadObject").observe(3)
    assert text(registry) == textwrap.dedent(
        """\
        # HELP t_seconds Latency.
        # TYPE t_seconds histogram
        t_seconds_bucket{le="0.25",op="GetObject"} 2.0
        t_seconds_bucket{le="1.0",op="GetObject"} 4.0
        t_seconds_bucket{le="2.5",op="GetObject"} 4.0
        t_seconds_bucket{le="+Inf",op="GetObject"} 5.0
        t_seconds_count{op="GetObject"} 5.0
        t_seconds_sum{op="GetObject"} 5.875
        t_seconds_bucket{le="0.25",op="HeadObject"} 0.0
        t_seconds_bucket{le="1.0",op="HeadObject"} 0.0
        t_seconds_bucket{le="2.5",op="HeadObject"} 0.0
        t_seconds_bucket{le="+Inf",op="HeadObject"} 1.0
        t_seconds_count{op="HeadObject"} 1.0
        t_seconds_sum{op="HeadObject"} 3.0
        # HELP t_seconds_created Latency.
        # TYPE t_seconds_created gauge
        t_seconds_created{op="GetObject"} <T>
        t_seconds_created{op="HeadObject"} <T>
        """
    )


def test_gauge_inc_dec_set() -> None:
    registry = CollectorRegistry()
    in_flight = PlainGauge("t_in_flight", "In flight.", registry=registry)
    by_backend = PlainGauge(
        "t_open", "Open.", ["backend"], registry=registry, multiprocess_mode="livesum"
    )
    in_flight.inc()
    in_flight.inc()
    in_flight.inc()
    in_flight.dec()
    by_backend.labels("store").set(7)
    by_backend.labels("store").dec(2)
    by_backend.labels("lake").inc(3)
    assert text(registry) == textwrap.dedent(
        """\
        # HELP t_in_flight In flight.
        # TYPE t_in_flight gauge
        t_in_flight 2.0
        # HELP t_open Open.
        # TYPE t_open gauge
        t_open{backend="store"} 5.0
        t_open{backend="lake"} 3.0
        """
    )


def test_same_exposition_as_prometheus_client() -> None:
    def updates(counter, histogram, gauge, unlabelled) -> None:  # type: ignore[no-untyped-def]
        counter.labels("GetObject", "0", "store", "2xx").inc()
        counter.labels("GetObject", "0", "store", "2xx").inc(41)
        counter.labels("PutObject", "none", "none", "5xx").inc()
        for value in (0.0005, 0.001, 0.003, 0.2, 1, 45, 100, 0.0):
            histogram.labels("GetObject").observe(value)
        histogram.labels("ListObjectsV2").observe(0.07)
        gauge.inc()
        gauge.inc()
        gauge.dec()
        unlabelled.inc(3)

    labels = ["operation", "rule", "backend", "status_class"]
    buckets = metrics.LATENCY_BUCKETS
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    updates(
        PlainCounter("c_total", "C.", labels, registry=ours),
        PlainHistogram("h_seconds", "H.", ["operation"], registry=ours, buckets=buckets),
        PlainGauge("g", "G.", registry=ours),
        PlainCounter("u_total", "U.", registry=ours),
    )
    updates(
        prometheus_client.Counter("c_total", "C.", labels, registry=theirs),
        prometheus_client.Histogram(
            "h_seconds", "H.", ["operation"], registry=theirs, buckets=buckets
        ),
        prometheus_client.Gauge("g", "G.", registry=theirs),
        prometheus_client.Counter("u_total", "U.", registry=theirs),
    )
    assert text(ours) == text(theirs)
    assert 'h_seconds_bucket{le="60.0",operation="GetObject"} 7.0' in text(ours)


def test_created_series_follow_prometheus_client_switch() -> None:
    registry = CollectorRegistry()
    PlainCounter("t_total", "T.", registry=registry).inc()
    PlainHistogram("t_seconds", "S.", registry=registry, buckets=(1,)).observe(0.5)
    prometheus_client.disable_created_metrics()
    try:
        assert "_created" not in text(registry)
    finally:
        prometheus_client.enable_created_metrics()
    assert "t_created <T>" in text(registry)
    assert "t_seconds_created <T>" in text(registry)


def test_labels_are_checked_and_converted_to_strings() -> None:
    registry = CollectorRegistry()
    counter = PlainCounter("t_total", "T.", ["rule", "backend"], registry=registry)
    with pytest.raises(ValueError):
        counter.labels("0")
    with pytest.raises(ValueError):
        counter.labels(rule="0")
    with pytest.raises(ValueError):
        PlainHistogram("t_bad", "B.", registry=registry, buckets=(2, 1))
    with pytest.raises(ValueError, match="'le' is reserved"):  # the buckets' own label
        PlainHistogram("t_le", "L.", ["op", "le"], registry=registry, buckets=(1,))
    assert "t_le" not in text(registry)
    assert counter.labels(0, "store") is counter.labels("0", "store")
    assert counter.labels(rule="0", backend="store") is counter.labels("0", "store")
    with pytest.raises(ValueError):  # a name already registered, as prometheus_client refuses
        PlainCounter("t_total", "Again.", registry=registry)


def test_a_counter_never_goes_down() -> None:
    registry = CollectorRegistry()
    counter = PlainCounter("t_total", "T.", ["backend"], registry=registry)
    child = counter.labels("store")
    child.inc(3)
    with pytest.raises(ValueError):
        child.inc(-1)
    assert child.value == 3


def test_module_metrics_are_plain_and_scraped() -> None:
    assert not metrics.MULTIPROCESS
    requests = metrics.child(metrics.REQUESTS, "TestOp", "none", "none", "2xx")
    assert requests is metrics.REQUESTS.labels("TestOp", "none", "none", "2xx")
    assert requests is metrics.child(metrics.REQUESTS, "TestOp", "none", "none", "2xx")
    requests.inc()
    requests.inc(2)
    metrics.child(metrics.REQUEST_SECONDS, "TestOp").observe(0.003)
    metrics.CONFIG_RELOADS.labels("test-result").inc()
    shed_before = metrics.SHED.labels().value
    in_flight_before = metrics.IN_FLIGHT.labels().value
    metrics.SHED.inc()
    metrics.IN_FLIGHT.inc()

    body, content_type = metrics.exposition()
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    scraped = body.decode()
    line = (
        's3router_requests_total{backend="none",operation="TestOp",rule="none",'
        'status_class="2xx"} 3.0'
    )
    assert line in scraped
    assert 's3router_request_duration_seconds_bucket{le="0.0025",operation="TestOp"} 0.0' in (
        scraped
    )
    assert 's3router_request_duration_seconds_bucket{le="0.005",operation="TestOp"} 1.0' in (
        scraped
    )
    assert 's3router_request_duration_seconds_count{operation="TestOp"} 1.0' in scraped
    assert 's3router_request_duration_seconds_sum{operation="TestOp"} 0.003' in scraped
    assert 's3router_config_reloads_total{result="test-result"} 1.0' in scraped
    assert f"s3router_requests_shed_total {shed_before + 1}\n" in scraped
    assert f"s3router_requests_in_flight {in_flight_before + 1}\n" in scraped
    metrics.IN_FLIGHT.dec()
    assert f"s3router_requests_in_flight {in_flight_before}\n" in metrics.exposition()[0].decode()
    assert "# TYPE s3router_backend_duration_seconds histogram" in scraped


def test_multiprocess_mode_keeps_prometheus_client_metrics(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """\
        import prometheus_client
        from s3router_proxy.telemetry import metrics
        assert metrics.MULTIPROCESS
        assert isinstance(metrics.REQUESTS, prometheus_client.Counter)
        assert isinstance(metrics.REQUEST_SECONDS, prometheus_client.Histogram)
        assert isinstance(metrics.IN_FLIGHT, prometheus_client.Gauge)
        metrics.child(metrics.REQUESTS, "GetObject", "0", "store", "2xx").inc(2)
        metrics.child(metrics.REQUEST_SECONDS, "GetObject").observe(0.003)
        metrics.CONFIG_RELOADS.labels("success").inc()
        metrics.SHED.inc()
        metrics.IN_FLIGHT.inc()
        print(metrics.exposition()[0].decode())
        """
    )
    environment = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    scraped = result.stdout
    assert (
        's3router_requests_total{backend="store",operation="GetObject",rule="0",'
        'status_class="2xx"} 2.0' in scraped
    )
    assert 's3router_request_duration_seconds_bucket{le="0.005",operation="GetObject"} 1.0' in (
        scraped
    )
    assert 's3router_config_reloads_total{result="success"} 1.0' in scraped
    assert "s3router_requests_shed_total 1.0" in scraped
    assert "s3router_requests_in_flight 1.0" in scraped
    assert list(tmp_path.glob("*.db"))  # the values live in the shared directory
