"""The routing section of the config: rules, mapping, fallbacks and mirrors, boto-s3-router
profiles (a rule's conditions: test_conditions.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from s3router_proxy.config.load import config_from_document, load_config
from s3router_proxy.config.model import Config
from s3router_proxy.config.reader import ConfigError, parse_size
from s3router_proxy.config.yamlfile import load_documents
from s3router_proxy.routing.bucketparts import routes_for_bucket
from s3router_proxy.routing.check import check
from s3router_proxy.routing.facts import RequestFacts
from s3router_proxy.routing.rules import match_route

BACKENDS = """\
backends:
  minio: {endpoint: "http://127.0.0.1:9000"}
  default: {endpoint: "http://127.0.0.1:9001"}
"""


def load(text: str) -> Config:
    return config_from_document(load_documents(text, {})[0], source="r.yaml", env={})


def fails(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(text)
    return str(caught.value)


def test_full_rule() -> None:
    config = load(
        BACKENDS
        + """\
routing:
  environment: production
  rules:
    - pattern: "photos-*"
      key_pattern: "raw/*"
      target: minio
      operations: [write, GetObject, HEAD]
      mapped_bucket: media
      mapped_prefix: incoming
      description: raw uploads
      conditions:
        content_types: ["image/*", "Video/MP4"]
        min_size: 1KiB
        max_size: "2 GB"
        time_range: {start: "08:30", end: "18:00", timezone: Europe/Berlin}
        description: office hours
  default_target: default
"""
    )
    (rule,) = config.rules
    assert (rule.pattern, rule.key_pattern, rule.target) == ("photos-*", "raw/*", "minio")
    assert rule.operations is not None
    assert rule.operations.groups == frozenset({"write"})
    assert rule.operations.names == frozenset({"GetObject"})
    assert rule.operations.methods == frozenset({"HEAD"})
    assert rule.methods == frozenset({"HEAD"})
    assert (rule.mapped_bucket, rule.mapped_prefix) == ("media", "incoming")
    assert (rule.client_prefix, rule.backend_prefix) == ("raw/", "incoming/")
    assert rule.name == "routing.rules[0]" and rule.line == 7
    conditions = rule.conditions
    assert conditions is not None
    assert conditions.content_types == ("image/*", "video/mp4")
    assert (conditions.min_size, conditions.max_size) == (1024, 2_000_000_000)
    assert conditions.time_range is not None
    assert conditions.time_range.describe() == "08:30-18:00 Europe/Berlin"
    assert conditions.description == "office hours"
    headers = {"content-type": "image/jpeg", "content-length": "5000"}
    now = datetime(2024, 1, 10, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    route = match_route(
        config.rules,
        config.default_target,
        RequestFacts(
            "PUT", "photos-1", "raw/a.jpg", operation="PutObject", headers=headers, now=now
        ),
    )
    assert (route.backend, route.bucket, route.key) == ("minio", "media", "incoming/a.jpg")


def test_boto_s3_router_example_verbatim() -> None:
    config = load(
        BACKENDS
        + """\
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
    assert config.default_target == "default"
    (rule,) = config.rules
    assert (rule.name, rule.line, rule.target) == ("profiles.minio", 5, "minio")
    route = match_route(
        config.rules, config.default_target, RequestFacts("PUT", "example-bucket", "team2/obj2")
    )
    assert (route.backend, route.bucket, route.key) == ("minio", "minio-bucket", "data/team2/obj2")
    route = match_route(
        config.rules, config.default_target, RequestFacts("GET", "example-bucket", "team1/x")
    )
    assert (route.backend, route.bucket, route.key) == ("default", "example-bucket", "team1/x")
    route = match_route(
        config.rules, config.default_target, RequestFacts("GET", "other", "team2/x")
    )
    assert (route.backend, route.bucket, route.key) == ("default", "other", "team2/x")


def test_boto_s3_router_readme_profiles() -> None:
    config = load(
        """\
backends:
  s3_east: {endpoint: "http://127.0.0.1:9000"}
  s3_west: {endpoint: "http://127.0.0.1:9001"}
profiles:
  s3_west:
    source_bucket_pattern: example-bucket
    mapped_bucket_name: new-bucket
    mapped_prefix: test/
  s3_east:
    source_bucket_pattern: example-bucket-prefix*
    source_key_pattern: a/*
    mapped_prefix: test/
client_mapping:
  s3_west: s3_west
  s3_east: s3_east
  default: s3_east
"""
    )
    rules, default = config.rules, config.default_target
    route = match_route(rules, default, RequestFacts("PUT", "example-bucket", "a/b/obj"))
    assert (route.backend, route.bucket, route.key) == ("s3_west", "new-bucket", "test/a/b/obj")
    route = match_route(rules, default, RequestFacts("PUT", "example-bucket-prefix-1", "a/b"))
    # The literal prefix `a/` is replaced (boto-s3-router prepended: test/a/b).
    assert (route.backend, route.bucket, route.key) == (
        "s3_east",
        "example-bucket-prefix-1",
        "test/b",
    )


@pytest.mark.parametrize(
    ("routing", "line", "fragment"),
    [
        (
            "routing:\n  rules:\n    - {pattern: a, target: minio, operations: [GetObjekt]}\n",
            6,
            "did you mean 'GetObject'",
        ),
        (
            "routing:\n  rules:\n    - {pattern: a, target: minio, operations: [READ]}\n",
            6,
            "unknown HTTP method, S3 operation or group 'READ'",
        ),
        ("routing:\n  rules:\n    - {pattern: a, target: minio, operations: []}\n", 6, "list"),
        ("routing:\n  rules:\n    - {pattern: a, target: minio, key_pattern: ''}\n", 6, "empty"),
        (
            "routing:\n  rules:\n    - {pattern: a, target: minio, mapped_bucket: a/b}\n",
            6,
            "bucket",
        ),
        (
            "routing:\n  rules:\n    - {pattern: a, target: minio, mapped_bucket: 'a*'}\n",
            6,
            "bucket",
        ),
        ("routing:\n  rules:\n    - {pattern: a, target: nope}\n", 6, "unknown backend 'nope'"),
        ("routing:\n  rules:\n    - {pattern: a, target: minio, bucket: x}\n", 6, "unknown key"),
        ("routing:\n  environment: 3\n", 5, "routing.environment"),
    ],
)
def test_rule_errors_name_line_and_fix(routing: str, line: int, fragment: str) -> None:
    message = fails(BACKENDS + routing)
    assert message.startswith(f"r.yaml:{line}: "), message
    assert fragment in message, message


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (
            "profiles:\n  minio: {source_bucket_pattern: b}\n",
            4,
            "client_mapping: is missing",
        ),
        (
            "profiles:\n  minio: {source_bucket_pattern: b}\nclient_mapping:\n  minio: minio\n",
            6,
            "needs a `default:`",
        ),
        (
            "profiles:\n  other: {source_bucket_pattern: b}\n"
            "client_mapping:\n  minio: minio\n  default: default\n",
            5,
            "add `other: <backend>` to client_mapping",
        ),
        (
            "profiles:\n  minio: {source_key_pattern: 'a/*'}\n"
            "client_mapping:\n  minio: minio\n  default: default\n",
            5,
            "needs `source_bucket_pattern:`",
        ),
        (
            "profiles:\n  minio: {source_bucket_pattern: b, mapped_bucket: x}\n"
            "client_mapping:\n  minio: minio\n  default: default\n",
            5,
            "did you mean 'mapped_bucket_name'",
        ),
        (
            "profiles:\n  minio: {source_bucket_pattern: b}\n"
            "client_mapping:\n  minio: nowhere\n  default: default\n",
            7,
            "unknown backend 'nowhere'",
        ),
        (
            "routing:\n  default_target: default\nprofiles:\n  minio: {source_bucket_pattern: b}\n"
            "client_mapping:\n  minio: minio\n  default: default\n",
            6,
            "not both",
        ),
    ],
)
def test_profile_errors(text: str, line: int, fragment: str) -> None:
    message = fails(BACKENDS + text)
    assert message.startswith(f"r.yaml:{line}: "), message
    assert fragment in message, message


def test_profiles_with_routing_environment_only() -> None:
    config = load(
        BACKENDS + "routing:\n  environment: dev\nprofiles: {}\nclient_mapping:\n  default: minio\n"
    )
    assert config.rules == () and config.default_target == "minio"


def test_null_mapped_prefix_means_no_rewrite() -> None:
    config = load(
        BACKENDS
        + "routing:\n  rules:\n    - {pattern: a, key_pattern: 'k/*', target: minio, "
        + "mapped_prefix: null}\n"
    )
    assert config.rules[0].mapped_prefix is None
    assert match_route(config.rules, None, RequestFacts("GET", "a", "k/x")).key == "k/x"


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (0, 0),
        (1048576, 1048576),
        ("10MiB", 10 * 1024**2),
        ("10 mib", 10 * 1024**2),
        ("1GB", 10**9),
        ("1.5KiB", 1536),
        ("512", 512),
        ("3 B", 3),
        ("2T", 2 * 10**12),
        ("1Gi", 1024**3),
    ],
)
def test_parse_size(value: object, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize("value", [-1, "1.3B", "ten", "5XB", True, 1.5, None])
def test_parse_size_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_size(value)


# -- the example configs --------------------------------------------------------------------------

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "config" / "examples").glob("*.yaml"))


def test_examples_exist() -> None:
    assert {p.name for p in EXAMPLES} >= {
        "reference.yaml",
        "boto-s3-router-profiles.yaml",
        "reads-s3-writes-lakefs.yaml",
        "conditions.yaml",
        "split-bucket.yaml",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_loads_and_checks(path: Path) -> None:
    config = load_config(path, env={})
    assert config.backends
    for backend in config.backends.values():
        assert backend.endpoint.startswith("http://127.0.0.1:")
    findings = check(config)
    assert not [w for w in findings if w.level == "warning"], [str(w) for w in findings]


def example(name: str) -> Config:
    return load_config(Path(EXAMPLES[0].parent / name), env={})


def where(config: Config, method: str, bucket: str, key: str, **kw: object) -> tuple[str, str, str]:
    facts = RequestFacts(method, bucket, key, **kw)  # type: ignore[arg-type]
    route = match_route(config.rules, config.default_target, facts)
    return route.backend, route.bucket, route.key


def test_example_reference_routes() -> None:
    config = example("reference.yaml")
    assert where(config, "GET", "lakefs-repo", "main/a") == ("lakefs", "lakefs-repo", "main/a")
    assert where(config, "PUT", "versioned-x", "k") == ("lakefs", "versioned-x", "k")
    assert where(config, "GET", "other", "k") == ("s3", "other", "k")


def test_example_profiles_routes() -> None:
    config = example("boto-s3-router-profiles.yaml")
    assert where(config, "PUT", "example-bucket", "team2/obj2") == (
        "minio",
        "minio-bucket",
        "data/team2/obj2",
    )
    assert where(config, "GET", "example-bucket", "team1/x") == (
        "default",
        "example-bucket",
        "team1/x",
    )
    parts = routes_for_bucket(
        config.rules,
        config.default_target,
        RequestFacts("GET", "example-bucket", "", operation="ListObjectsV2"),
    )
    assert [(p.backend, p.bucket) for p in parts] == [
        ("minio", "minio-bucket"),
        ("default", "example-bucket"),
    ]


def test_example_reads_s3_writes_lakefs_routes() -> None:
    config = example("reads-s3-writes-lakefs.yaml")
    b = "critical-data-1"
    assert where(config, "GET", b, "a.csv", operation="GetObject") == ("s3", b, "a.csv")
    assert where(config, "GET", b, "", operation="ListObjectsV2") == ("s3", b, "")
    assert where(config, "PUT", b, "a.csv", operation="PutObject") == ("lakefs", b, "main/a.csv")
    assert where(config, "DELETE", b, "a.csv", operation="DeleteObject") == (
        "lakefs",
        b,
        "main/a.csv",
    )
    assert where(config, "PUT", b, "", operation="PutBucketTagging") == ("lakefs", b, "")


def test_example_conditions_routes() -> None:
    config = example("conditions.yaml")
    image = {"content-type": "image/png", "content-length": "1000"}
    assert (
        where(config, "PUT", "uploads", "inbox/a.png", operation="PutObject", headers=image)[0]
        == "media"
    )
    assert (
        where(config, "PUT", "uploads", "other/a.png", operation="PutObject", headers=image)[0]
        == "main"
    )
    big = {"content-type": "image/png", "content-length": str(2 * 10**9)}
    assert (
        where(config, "PUT", "uploads", "inbox/a.png", operation="PutObject", headers=big)[0]
        == "bulk"
    )
    night = datetime(2024, 1, 1, 23, 30, tzinfo=UTC)  # 00:30 in Berlin
    day = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert where(config, "PUT", "batch-1", "k", operation="PutObject", now=night)[0] == "bulk"
    assert where(config, "PUT", "batch-1", "k", operation="PutObject", now=day)[0] == "main"
    assert where(config, "GET", "batch-1", "k", operation="GetObject", now=night)[0] == "main"


def test_example_split_bucket_routes() -> None:
    config = example("split-bucket.yaml")
    assert where(config, "PUT", "datalake", "raw/2024/a.json") == (
        "lakefs",
        "lake-repo",
        "main/2024/a.json",
    )
    assert where(config, "PUT", "datalake", "curated/b.parquet") == (
        "minio",
        "curated",
        "datalake/b.parquet",
    )
    assert where(config, "PUT", "datalake", "README") == ("minio", "datalake", "README")
    parts = routes_for_bucket(
        config.rules,
        config.default_target,
        RequestFacts("GET", "datalake", "", operation="ListObjectsV2"),
    )
    assert [(p.backend, p.bucket) for p in parts] == [
        ("lakefs", "lake-repo"),
        ("minio", "curated"),
        ("minio", "datalake"),
    ]


def test_mirror_and_fallback_lists() -> None:
    config = load(
        BACKENDS
        + """\
router:
  mirror_journal: journal.jsonl
routing:
  rules:
    - {pattern: a, target: minio, mirror: default, mirror_mode: best_effort}
    - {pattern: b, target: minio, mirror: [default], fallback: [default]}
    - {pattern: c, target: minio}
"""
    )
    first, second, third = config.rules
    assert (first.mirror, first.mirror_mode) == (("default",), "best_effort")
    assert (second.mirror, second.mirror_mode, second.fallback) == (
        ("default",),
        "strict",
        ("default",),
    )
    assert (third.mirror, third.fallback) == ((), ())
    assert config.mirror_journal is not None and config.mirror_journal.endswith("journal.jsonl")


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ("{pattern: a, target: minio, mirror: [nowhere]}", "nowhere"),
        ("{pattern: a, target: minio, mirror: [minio]}", "already the target"),
        ("{pattern: a, target: minio, mirror: [default, default]}", "twice"),
        ("{pattern: a, target: minio, mirror: [default], mirror_mode: sometimes}", "strict"),
        ("{pattern: a, target: minio, mirror_mode: strict}", "needs `mirror:`"),
        ("{pattern: a, target: minio, fallback: {x: 1}}", "list of backend names"),
    ],
)
def test_mirror_errors(rule: str, fragment: str) -> None:
    message = fails(BACKENDS + f"routing:\n  rules:\n    - {rule}\n")
    assert message.startswith("r.yaml:6: "), message
    assert fragment in message, message


def test_fallback_and_mirror_entries_with_names_of_their_own() -> None:
    from s3router_proxy.routing.rules import route_on

    config = load(
        BACKENDS
        + """\
routing:
  rules:
    - pattern: repo
      target: minio
      mapped_prefix: main
      fallback: [{backend: default}]
      mirror: [{backend: default}]
    - pattern: other
      target: minio
      mapped_bucket: stored
      fallback: [{backend: default, mapped_bucket: archive, mapped_prefix: old}]
"""
    )
    repo, other = config.rules
    assert other.own_names == (("default", "archive", "old"),)
    assert repo.own_names == (("default", None, None),)
    route = match_route(config.rules, None, RequestFacts("GET", "repo", "a/b.txt"))
    assert (route.backend, route.bucket, route.key) == ("minio", "repo", "main/a/b.txt")
    there = route_on(route, "default", "a/b.txt")
    assert (there.backend, there.bucket, there.key) == ("default", "repo", "a/b.txt")
    assert there.names.to_client_key("a/b.txt") == "a/b.txt"
    route = match_route(config.rules, None, RequestFacts("GET", "other", "x"))
    there = route_on(route, "default", "x")
    assert (there.bucket, there.key) == ("archive", "old/x")
    plain = load(
        BACKENDS + "routing:\n  rules:\n    - {pattern: p, target: minio, fallback: [default]}\n"
    )
    route = match_route(plain.rules, None, RequestFacts("GET", "p", "k"))
    assert route_on(route, "default", "k") == dataclasses.replace(route, backend="default")


def test_a_backend_given_two_sets_of_names_is_refused() -> None:
    message = fails(
        BACKENDS
        + """\
routing:
  rules:
    - pattern: a
      target: minio
      fallback: [{backend: default, mapped_prefix: x}]
      mirror: [{backend: default, mapped_prefix: y}]
"""
    )
    assert "other names" in message, message


RULE_FROM_VARIABLES = """\
routing:
  rules:
    - pattern: "${BUCKETS:-photos-*}"
      target: minio
      fallback: [default]
      failover_on_error: ${FAILOVER:-true}
      max_body_size: ${CAP:-5MiB}
      conditions:
        min_size: ${MIN:-1}
        time_range: {start: "${START:-08:00}", end: "17:00"}
  default_target: default
"""


def load_with(env: dict[str, str]) -> Config:
    text = BACKENDS + RULE_FROM_VARIABLES
    return config_from_document(load_documents(text, env)[0], source="r.yaml", env=env)


def test_rule_settings_from_variables_are_typed_by_the_setting() -> None:
    (rule,) = load_with({}).rules
    assert rule.pattern == "photos-*"
    assert rule.failover_on_error is True
    assert rule.max_body_size == 5 * 1024**2
    assert rule.conditions is not None
    assert rule.conditions.min_size == 1
    assert rule.conditions.time_range is not None
    assert rule.conditions.time_range.start == 8 * 3600
    (rule,) = load_with({"FAILOVER": "no", "CAP": "1048576", "START": "09:30"}).rules
    assert rule.failover_on_error is False
    assert rule.max_body_size == 1024**2
    assert rule.conditions is not None and rule.conditions.time_range is not None
    assert rule.conditions.time_range.start == 9 * 3600 + 30 * 60


@pytest.mark.parametrize(
    ("variable", "value", "line", "message"),
    [
        ("FAILOVER", "sometimes", 9, "failover_on_error: must be true or false"),
        ("CAP", "big", 10, "max_body_size: must be a size in bytes"),
        ("MIN", "-1", 12, "min_size: must be a size in bytes"),
    ],
)
def test_rule_settings_from_variables_name_line_and_variable(
    variable: str, value: str, line: int, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_with({variable: value})
    text = str(caught.value)
    assert text.startswith(f"r.yaml:{line}: routing.rules[0]"), text
    assert message in text
    assert f"(the value comes from ${{{variable}}})" in text
