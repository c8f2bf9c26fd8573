"""explain: why a request goes where it goes, rule by rule, and how it reads as text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from s3router_proxy.config.load import config_from_document
from s3router_proxy.config.model import Config
from s3router_proxy.config.yamlfile import load_documents
from s3router_proxy.routing.explain import (
    DescribedRequest,
    explain,
    format_explanation,
    request_url,
)

BACKENDS = """\
backends:
  minio: {endpoint: "http://127.0.0.1:9000"}
  default: {endpoint: "http://127.0.0.1:9001"}
  lakefs: {endpoint: "http://127.0.0.1:8000"}
  s3: {endpoint: "http://127.0.0.1:9002"}
"""
NOON = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def load(text: str) -> Config:
    return config_from_document(load_documents(BACKENDS + text, {})[0], source="r.yaml", env={})


PROFILES = load(
    """\
profiles:
  minio:
    source_bucket_pattern: example-bucket
    source_key_pattern: "team2/*"
    mapped_bucket_name: minio-bucket
    mapped_prefix: data/team2
client_mapping:
  minio: minio
  default: default
"""
)

RULES = load(
    """\
routing:
  rules:
    - pattern: "critical-data-*"
      target: s3
      operations: [read, list]
    - pattern: "critical-data-*"
      target: lakefs
      mapped_prefix: main
    - pattern: "uploads"
      target: minio
      conditions:
        content_types: ["image/*"]
        max_size: 10MiB
  default_target: default
"""
)


def test_explain_match_with_mapping() -> None:
    e = explain(PROFILES, DescribedRequest("get", "example-bucket", "team2/obj2", now=NOON))
    assert (e.method, e.operation, e.group) == ("GET", "GetObject", "read")
    assert e.route is not None and e.rule is PROFILES.rules[0]
    assert (e.route.backend, e.route.bucket, e.route.key) == (
        "minio",
        "minio-bucket",
        "data/team2/obj2",
    )
    assert [v.reason for v in e.verdicts] == [None]
    text = format_explanation(e)
    assert "MATCH" in text
    assert "backend: minio" in text
    assert "backend bucket: minio-bucket" in text
    assert "backend key: data/team2/obj2" in text


def test_explain_reasons_for_earlier_rules() -> None:
    e = explain(PROFILES, DescribedRequest("PUT", "example-bucket", "team1/x", now=NOON))
    assert e.route is not None and e.route.rule is None and e.route.backend == "default"
    (verdict,) = e.verdicts
    assert verdict.reason == "key 'team1/x' does not match key_pattern 'team2/*'"
    text = format_explanation(e)
    assert "no: key 'team1/x' does not match key_pattern 'team2/*'" in text
    assert "no rule matched: default_target" in text


def test_explain_operations_and_conditions() -> None:
    e = explain(RULES, DescribedRequest("PUT", "critical-data-1", "k", now=NOON))
    assert e.operation == "PutObject" and e.route is not None
    assert e.route.backend == "lakefs" and e.route.key == "main/k"
    assert e.verdicts[0].reason == (
        "PUT PutObject (group write) is not one of operations [list, read]"
    )
    headers = [("Content-Type", "image/png"), ("Content-Length", "100")]
    e = explain(RULES, DescribedRequest("PUT", "uploads", "cat.png", headers, now=NOON))
    assert e.route is not None and e.route.backend == "minio"
    assert (e.content_type, e.size) == ("image/png", 100)
    e = explain(
        RULES,
        DescribedRequest("PUT", "uploads", "big.png", {"content-type": "image/png"}, now=NOON),
    )
    assert e.route is not None and e.route.backend == "default"
    assert "size is unknown" in (e.verdicts[-1].reason or "")
    e = explain(RULES, DescribedRequest("GET", "uploads", "cat.png", now=NOON))
    assert "no Content-Type" in (e.verdicts[-1].reason or "")


def test_explain_split_bucket_listing_shows_parts() -> None:
    e = explain(
        PROFILES, DescribedRequest("GET", "example-bucket", "", query={"list-type": "2"}, now=NOON)
    )
    assert e.operation == "ListObjectsV2"
    assert [(p.backend, p.bucket) for p in e.parts] == [
        ("minio", "minio-bucket"),
        ("default", "example-bucket"),
    ]
    text = format_explanation(e)
    assert "is split" in text and "every key except 'team2/*'" in text
    e = explain(
        PROFILES,
        DescribedRequest(
            "GET", "example-bucket", "", query={"list-type": "2", "prefix": "team1/"}, now=NOON
        ),
    )
    assert e.parts == ()  # under team1/ the bucket is not split
    e = explain(PROFILES, DescribedRequest("GET", "plain-bucket", "", now=NOON))
    assert e.parts == ()


def test_explain_unrouted() -> None:
    config = load("routing:\n  rules:\n    - {pattern: a, target: s3}\n")
    e = explain(config, DescribedRequest("GET", "zzz", "k", now=NOON))
    assert e.route is None and e.error is not None and e.error.startswith("NoSuchBucket")
    assert "not routed: NoSuchBucket" in format_explanation(e)


def test_request_url() -> None:
    assert request_url("s3://b/k/x%20y") == ("b", "k/x%20y")
    assert request_url("s3://b") == ("b", "")
    assert request_url("b/k") == ("b", "k")
    for refused in ("http://b/k", "s3://", "", "ftp://b/k", "s3:///k"):
        with pytest.raises(ValueError):
            request_url(refused)


def test_explain_names_fallback_and_mirror_backends() -> None:
    config = load(
        """\
routing:
  rules:
    - {pattern: moving, target: lakefs, fallback: [s3], failover_on_error: true}
    - {pattern: copied, target: s3, mirror: [minio, lakefs], mirror_mode: best_effort}
"""
    )
    moving = format_explanation(explain(config, DescribedRequest("GET", "moving", "k", now=NOON)))
    assert "reads the target answers 404 or fails go on to: s3" in moving
    assert "mirrored" not in moving
    copied = format_explanation(explain(config, DescribedRequest("PUT", "copied", "k", now=NOON)))
    assert "writes are mirrored (best_effort) to: minio, lakefs" in copied
    assert "go on to" not in copied
    renamed = load(
        """\
routing:
  rules:
    - {pattern: repo, target: lakefs, mapped_prefix: main, mirror: [{backend: s3}]}
"""
    )
    text = format_explanation(explain(renamed, DescribedRequest("PUT", "repo", "a/b", now=NOON)))
    assert "backend key: main/a/b" in text
    assert "writes are mirrored (strict) to: s3 (repo/a/b)" in text
