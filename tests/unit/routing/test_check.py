"""check: what in a config's routing can never work, or works in a surprising way."""

from __future__ import annotations

from s3router_proxy.config.load import config_from_document
from s3router_proxy.config.model import Config
from s3router_proxy.config.yamlfile import load_documents
from s3router_proxy.routing.check import CheckWarning, check

BACKENDS = """\
backends:
  minio: {endpoint: "http://127.0.0.1:9000"}
  default: {endpoint: "http://127.0.0.1:9001"}
  lakefs: {endpoint: "http://127.0.0.1:8000"}
  s3: {endpoint: "http://127.0.0.1:9002"}
"""


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
