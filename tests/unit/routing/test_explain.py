"""explain and check: why a request goes where it goes, and what in a config can never work."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from s3router_proxy.config.load import config_from_document
from s3router_proxy.config.model import Config
from s3router_proxy.config.yamlfile import load_documents
from s3router_proxy.routing.explain import (
    CheckWarning,
    check,
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
    e = explain(PROFILES, "get", "example-bucket", "team2/obj2", now=NOON)
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
    e = explain(PROFILES, "PUT", "example-bucket", "team1/x", now=NOON)
    assert e.route is not None and e.route.rule is None and e.route.backend == "default"
    (verdict,) = e.verdicts
    assert verdict.reason == "key 'team1/x' does not match key_pattern 'team2/*'"
    text = format_explanation(e)
    assert "no: key 'team1/x' does not match key_pattern 'team2/*'" in text
    assert "no rule matched: default_target" in text


def test_explain_operations_and_conditions() -> None:
    e = explain(RULES, "PUT", "critical-data-1", "k", now=NOON)
    assert e.operation == "PutObject" and e.route is not None
    assert e.route.backend == "lakefs" and e.route.key == "main/k"
    assert e.verdicts[0].reason == (
        "PUT PutObject (group write) is not one of operations [list, read]"
    )
    headers = [("Content-Type", "image/png"), ("Content-Length", "100")]
    e = explain(RULES, "PUT", "uploads", "cat.png", headers, now=NOON)
    assert e.route is not None and e.route.backend == "minio"
    assert (e.content_type, e.size) == ("image/png", 100)
    e = explain(RULES, "PUT", "uploads", "big.png", {"content-type": "image/png"}, now=NOON)
    assert e.route is not None and e.route.backend == "default"
    assert "size is unknown" in (e.verdicts[-1].reason or "")
    e = explain(RULES, "GET", "uploads", "cat.png", now=NOON)
    assert "no Content-Type" in (e.verdicts[-1].reason or "")


def test_explain_split_bucket_listing_shows_parts() -> None:
    e = explain(PROFILES, "GET", "example-bucket", "", query={"list-type": "2"}, now=NOON)
    assert e.operation == "ListObjectsV2"
    assert [(p.backend, p.bucket) for p in e.parts] == [
        ("minio", "minio-bucket"),
        ("default", "example-bucket"),
    ]
    text = format_explanation(e)
    assert "is split" in text and "every key except 'team2/*'" in text
    e = explain(
        PROFILES,
        "GET",
        "example-bucket",
        "",
        query={"list-type": "2", "prefix": "team1/"},
        now=NOON,
    )
    assert e.parts == ()  # under team1/ the bucket is not split
    e = explain(PROFILES, "GET", "plain-bucket", "", now=NOON)
    assert e.parts == ()


def test_explain_unrouted() -> None:
    config = load("routing:\n  rules:\n    - {pattern: a, target: s3}\n")
    e = explain(config, "GET", "zzz", "k", now=NOON)
    assert e.route is None and e.error is not None and e.error.startswith("NoSuchBucket")
    assert "not routed: NoSuchBucket" in format_explanation(e)


def test_request_url() -> None:
    assert request_url("s3://b/k/x%20y") == ("b", "k/x%20y")
    assert request_url("s3://b") == ("b", "")
    assert request_url("b/k") == ("b", "k")
    for refused in ("http://b/k", "s3://", "", "ftp://b/k", "s3:///k"):
        with pytest.raises(ValueError):
            request_url(refused)


# -- check ----------------------------------------------------------------------------------------


def messages(found: list[CheckWarning]) -> list[str]:
    return [str(w) for w in found]


def test_shadowed_rules() -> None:
    config = load(
        """\
routing:
  rules:
    - {pattern: "logs-*", target: s3}
    - {pattern: "logs-2024", target: lakefs}
    - {pattern: "logs-*", key_pattern: "a/*", target: minio}
    - {pattern: "*", target: s3, operations: [read]}
    - {pattern: "data", target: minio}
    - {pattern: "*", target: s3}
    - {pattern: "x", target: minio}
  default_target: default
"""
    )
    found = check(config)
    shadowed = [w for w in found if "can never match" in w.message]
    assert [w.where for w in shadowed] == [
        "routing.rules[1]",
        "routing.rules[2]",
        "routing.rules[6]",
    ]
    assert shadowed[0].line == 9 and "routing.rules[0] (line 8)" in shadowed[0].message
    assert any("default_target 'default' is never used" in m for m in messages(found))
    assert str(shadowed[0]).startswith("line 9: routing.rules[1]: warning: can never match")


def test_overlapping_split() -> None:
    config = load(
        """\
routing:
  rules:
    - {pattern: "b", key_pattern: "team2/*", target: minio}
    - {pattern: "b", key_pattern: "team2/raw/*", target: lakefs}
    - {pattern: "b", key_pattern: "team3/*", target: lakefs}
  default_target: default
"""
    )
    found = [w for w in check(config) if w.level == "warning"]
    assert [w.where for w in found] == ["routing.rules[1]"]
    assert "can never match" in found[0].message  # team2/* covers team2/raw/*
    config = load(
        """\
routing:
  rules:
    - {pattern: "b", key_pattern: "*.csv", target: minio}
    - {pattern: "b", key_pattern: "team2/*", target: lakefs}
  default_target: default
"""
    )
    (warning,) = check(config)
    assert warning.where == "routing.rules[1]" and "overlapping split" in warning.message


def test_condition_and_mapping_notes() -> None:
    found = check(RULES)
    notes = [w for w in found if w.level == "note"]
    assert any("min_size/max_size only match uploads" in w.message for w in notes)
    assert any("content_types only match" in w.message for w in notes)
    assert all(w.where == "routing.rules[2]" for w in notes)
    profile_notes = check(PROFILES)
    assert [w.where for w in profile_notes] == ["profiles.minio"]
    assert "'team2/obj' is stored as 'data/team2/obj'" in profile_notes[0].message
    assert "data/team2team2/obj" in profile_notes[0].message
    shared = load(
        "routing:\n  rules:\n    - {pattern: 'team-*', target: minio, mapped_bucket: shared}\n"
        "  default_target: default\n"
    )
    (warning,) = check(shared)
    assert "their keys mix" in warning.message


def test_uploads_only_size_rule_is_quiet() -> None:
    config = load(
        """\
routing:
  rules:
    - pattern: "b"
      target: minio
      operations: [PutObject, UploadPart]
      conditions: {max_size: 1MB}
  default_target: default
"""
    )
    assert check(config) == []


def test_unknown_targets_and_no_default() -> None:
    config = load("routing:\n  rules:\n    - {pattern: a, target: s3}\n")
    found = check(config, backends=["minio"])
    assert any("unknown target backend 's3'" in w.message for w in found)
    assert any(w.where == "routing" and "no default_target" in w.message for w in found)


def test_explain_names_fallback_and_mirror_backends() -> None:
    config = load(
        """\
routing:
  rules:
    - {pattern: moving, target: lakefs, fallback: [s3], failover_on_error: true}
    - {pattern: copied, target: s3, mirror: [minio, lakefs], mirror_mode: best_effort}
"""
    )
    moving = format_explanation(explain(config, "GET", "moving", "k", now=NOON))
    assert "reads the target answers 404 or fails go on to: s3" in moving
    assert "mirrored" not in moving
    copied = format_explanation(explain(config, "PUT", "copied", "k", now=NOON))
    assert "writes are mirrored (best_effort) to: minio, lakefs" in copied
    assert "go on to" not in copied
    renamed = load(
        """\
routing:
  rules:
    - {pattern: repo, target: lakefs, mapped_prefix: main, mirror: [{backend: s3}]}
"""
    )
    text = format_explanation(explain(renamed, "PUT", "repo", "a/b", now=NOON))
    assert "backend key: main/a/b" in text
    assert "writes are mirrored (strict) to: s3 (repo/a/b)" in text


def test_one_backend_object_under_two_client_names_is_a_warning() -> None:
    """`lake/raw/x` is stored as `repo/main/x`, which the second rule serves as `lake/main/x`:
    a deny on raw/* would not cover it."""
    config = load(
        """\
routing:
  rules:
    - {pattern: "lake", key_pattern: "raw/*", target: minio, mapped_bucket: repo,
       mapped_prefix: main}
    - {pattern: "lake", target: minio, mapped_bucket: repo}
  default_target: default
"""
    )
    (warning,) = check(config)
    assert warning.where == "routing.rules[1]"
    assert "'main/obj'" in warning.message and "lake/raw/obj" in warning.message
    assert "lake/main/obj" in warning.message
    other_bucket = load(
        """\
routing:
  rules:
    - {pattern: "a", target: minio, mapped_bucket: shared}
    - {pattern: "b", target: minio, mapped_bucket: shared, mapped_prefix: b}
  default_target: default
"""
    )
    (warning,) = check(other_bucket)
    assert "a/b/obj" in warning.message and "b/obj" in warning.message


def test_an_ordinary_split_or_disjoint_prefixes_are_not_aliases() -> None:
    config = load(
        """\
routing:
  rules:
    - {pattern: "b", key_pattern: "team2/*", target: minio}
    - {pattern: "b", target: minio}
    - {pattern: "lake", target: minio, mapped_bucket: repo, mapped_prefix: main}
    - {pattern: "lake-dev", target: minio, mapped_bucket: repo, mapped_prefix: dev}
  default_target: default
"""
    )
    assert check(config) == []
