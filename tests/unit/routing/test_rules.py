"""Routing rules: first match wins, whole-name globs, operations, name mapping, admin API roots."""

from __future__ import annotations

import pytest

from s3router_proxy.routing.bucketparts import routes_for_bucket, visible_buckets
from s3router_proxy.routing.conditions import Operations
from s3router_proxy.routing.facts import RequestFacts
from s3router_proxy.routing.rules import MappedNames, RuleMatch, compile_rule, match_route
from s3router_proxy.s3.errors import S3Error

RULES = (
    compile_rule(0, RuleMatch("lakefs-*"), "lakefs"),
    compile_rule(1, RuleMatch("critical-data-*", methods=frozenset({"GET", "HEAD"})), "s3"),
    compile_rule(2, RuleMatch("critical-data-*"), "lakefs"),
    compile_rule(3, RuleMatch("logs-202[0-9]"), "archive"),
    compile_rule(4, RuleMatch("tmp?"), "scratch"),
)


@pytest.mark.parametrize(
    ("method", "bucket", "backend", "rule"),
    [
        ("GET", "lakefs-data-repo", "lakefs", 0),
        ("PUT", "lakefs-", "lakefs", 0),
        ("GET", "critical-data-x", "s3", 1),
        ("HEAD", "critical-data-x", "s3", 1),
        ("PUT", "critical-data-x", "lakefs", 2),
        ("DELETE", "critical-data-x", "lakefs", 2),
        ("GET", "logs-2024", "archive", 3),
        ("GET", "logs-20245", "default", None),  # whole-name match
        ("GET", "tmp1", "scratch", 4),
        ("GET", "tmp12", "default", None),
        ("GET", "LAKEFS-data", "default", None),  # case-sensitive
        ("GET", "my-lakefs-data", "default", None),  # anchored at the start
    ],
)
def test_first_match_wins(method: str, bucket: str, backend: str, rule: int | None) -> None:
    route = match_route(RULES, "default", RequestFacts(method, bucket, "k"))
    assert route.backend == backend
    assert (route.rule.index if route.rule else None) == rule
    assert (route.bucket, route.key) == (bucket, "k")


def test_no_match_without_default_is_no_such_bucket() -> None:
    with pytest.raises(S3Error) as caught:
        match_route(RULES, None, RequestFacts("GET", "other", ""))
    assert caught.value.code == "NoSuchBucket"
    assert caught.value.status == 404


def test_mismatch_reasons() -> None:
    assert RULES[1].mismatch(RequestFacts("PUT", "critical-data-x", "")) is not None
    assert "does not match pattern" in (RULES[0].mismatch(RequestFacts("GET", "x", "")) or "")
    assert RULES[0].mismatch(RequestFacts("GET", "lakefs-a", "")) is None


# -- key patterns, glob semantics -----------------------------------------------------------------

EXAMPLE = (
    compile_rule(
        0,
        RuleMatch("example-bucket", key_pattern="team2/*"),
        "minio",
        names=MappedNames(bucket="minio-bucket", prefix="data/team2"),
    ),
)


def test_reference_example_maps_team2_obj2() -> None:
    route = match_route(EXAMPLE, "default", RequestFacts("PUT", "example-bucket", "team2/obj2"))
    assert (route.backend, route.bucket, route.key) == ("minio", "minio-bucket", "data/team2/obj2")
    assert route.names.to_client_key("data/team2/obj2") == "team2/obj2"
    assert route.renames
    other = match_route(EXAMPLE, "default", RequestFacts("PUT", "example-bucket", "team1/obj2"))
    assert (other.backend, other.bucket, other.key) == ("default", "example-bucket", "team1/obj2")
    assert not other.renames


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("team2/*", "team2/a", True),
        ("team2/*", "team2/a/b/c", True),  # `*` crosses `/`
        ("team2/*", "team2/", True),
        ("team2/*", "team2", False),
        ("team2/*", "Team2/a", False),  # case-sensitive
        ("team2/*", "x/team2/a", False),  # whole name
        ("*.csv", "a/b/c.csv", True),
        ("*.csv", "a/b/c.csv.gz", False),
        ("a?/*", "ab/x", True),
        ("a?/*", "a//x", True),  # `?` is any one character, `/` included
        ("[ab]/*", "b/x", True),
        ("[!ab]/*", "b/x", False),
        ("a\n*", "a\nb", True),
        ("a*", "a\nb", True),  # newlines in keys are characters like any other
    ],
)
def test_key_glob_semantics(pattern: str, key: str, matches: bool) -> None:
    rules = (compile_rule(0, RuleMatch("b", key_pattern=pattern), "x"),)
    assert (match_route(rules, "d", RequestFacts("GET", "b", key)).backend == "x") is matches


def test_bucket_glob_has_the_same_semantics() -> None:
    rules = (compile_rule(0, RuleMatch("a*z"), "x"),)
    assert match_route(rules, "d", RequestFacts("GET", "a-b-z", "")).backend == "x"
    assert match_route(rules, "d", RequestFacts("GET", "A-z", "")).backend == "d"


def test_key_pattern_rules_skip_bucket_level_requests() -> None:
    route = match_route(EXAMPLE, "default", RequestFacts("GET", "example-bucket", ""))
    assert (route.backend, route.bucket) == ("default", "example-bucket")
    reason = EXAMPLE[0].mismatch(RequestFacts("GET", "example-bucket", ""))
    assert reason is not None and "names no key" in reason


def test_star_key_pattern_means_every_key() -> None:
    rule = compile_rule(0, RuleMatch("b", key_pattern="**"), "x", names=MappedNames(prefix="p"))
    assert rule.key_pattern is None
    assert match_route((rule,), None, RequestFacts("GET", "b", "")).backend == "x"
    assert match_route((rule,), None, RequestFacts("GET", "b", "k/1")).key == "p/k/1"


@pytest.mark.parametrize(
    ("key_pattern", "mapped_prefix", "key", "backend_key"),
    [
        ("team2/*", "data/team2", "team2/obj2", "data/team2/obj2"),
        ("team2/*", "data/team2/", "team2/obj2", "data/team2/obj2"),
        ("team2/*", "data/", "team2/a/b", "data/a/b"),
        ("team2/*", "", "team2/a", "a"),
        ("team2/*", None, "team2/a", "team2/a"),
        (None, "main", "a/b", "main/a/b"),  # lakeFS branch as prefix
        (None, "main/", "a/b", "main/a/b"),
        (None, None, "a/b", "a/b"),
        ("logs-*", "old-", "logs-2024", "old-2024"),  # not at a `/` boundary: plain replace
        ("logs-*", "old/logs-", "logs-1/x", "old/logs-1/x"),
        ("*.csv", "csv", "a/b.csv", "csv/a/b.csv"),
        ("a/*/raw/*", "x", "a/1/raw/2", "x/1/raw/2"),
    ],
)
def test_mapped_prefix_replaces_the_literal_prefix(
    key_pattern: str | None, mapped_prefix: str | None, key: str, backend_key: str
) -> None:
    rule = compile_rule(
        0, RuleMatch("b", key_pattern=key_pattern), "x", names=MappedNames(prefix=mapped_prefix)
    )
    route = match_route((rule,), None, RequestFacts("PUT", "b", key))
    assert route.key == backend_key
    assert route.names.to_client_key(backend_key) == key


# -- operations -----------------------------------------------------------------------------------


def test_reads_from_s3_writes_to_lakefs() -> None:
    rules = (
        compile_rule(0, RuleMatch("critical-data-*", operations=["read", "list"]), "s3"),
        compile_rule(1, RuleMatch("critical-data-*"), "lakefs"),
    )

    def backend(method: str, key: str, operation: str) -> str:
        return match_route(
            rules, None, RequestFacts(method, "critical-data-1", key, operation=operation)
        ).backend

    assert backend("GET", "k", "GetObject") == "s3"
    assert backend("HEAD", "k", "HeadObject") == "s3"
    assert backend("GET", "", "ListObjectsV2") == "s3"
    assert backend("HEAD", "", "HeadBucket") == "s3"
    assert backend("PUT", "k", "PutObject") == "lakefs"
    assert backend("POST", "k", "CompleteMultipartUpload") == "lakefs"
    assert backend("DELETE", "k", "DeleteObject") == "lakefs"
    assert backend("GET", "", "GetBucketPolicy") == "lakefs"  # admin
    # Without an operation name only methods can match, so the group rule is skipped.
    assert backend("GET", "k", "") == "lakefs"


def test_methods_argument_stays_supported() -> None:
    rule = compile_rule(0, RuleMatch("*", methods=frozenset({"get"})), "x")
    assert rule.methods == frozenset({"GET"})
    assert isinstance(rule.operations, Operations)


# -- mapped keys ----------------------------------------------------------------------------------


def test_mapped_key_must_stay_a_valid_key() -> None:
    rule = compile_rule(0, RuleMatch("b", key_pattern="team2/*"), "x", names=MappedNames(prefix=""))
    with pytest.raises(S3Error) as caught:
        match_route((rule,), None, RequestFacts("PUT", "b", "team2/"))
    assert caught.value.code == "InvalidArgument"
    long = compile_rule(0, RuleMatch("b"), "x", names=MappedNames(prefix="p" * 20))
    assert (
        match_route((long,), None, RequestFacts("PUT", "b", "k" * 1000)).key
        == "p" * 20 + "/" + "k" * 1000
    )
    with pytest.raises(S3Error) as caught:
        match_route((long,), None, RequestFacts("PUT", "b", "k" * 1010))
    assert caught.value.code == "KeyTooLongError"


# -- admin API roots ------------------------------------------------------------------------------


@pytest.mark.parametrize(("bucket", "key"), [("minio", "admin/v3/info"), ("admin", "user")])
def test_an_admin_api_root_is_never_reached_by_default_or_by_a_wildcard(
    bucket: str, key: str
) -> None:
    wildcard = (compile_rule(0, RuleMatch("*"), "store"),)
    for rules in ((), wildcard):
        with pytest.raises(S3Error) as caught:
            match_route(rules, "store", RequestFacts("GET", bucket, key))
        assert caught.value.code == "AccessDenied"
        assert (
            routes_for_bucket(
                rules, "store", RequestFacts("GET", bucket, "", operation="ListObjectsV2")
            )
            == []
        )
    assert visible_buckets(wildcard, "store", {"store": [bucket, "data"]}) == ["data"]


def test_a_rule_naming_the_bucket_itself_still_routes_it() -> None:
    rules = (
        compile_rule(0, RuleMatch("*"), "minio"),
        compile_rule(1, RuleMatch("admin"), "aws"),
    )
    assert match_route(rules, "minio", RequestFacts("GET", "admin", "k")).backend == "aws"
    assert [
        p.backend
        for p in routes_for_bucket(
            rules, "minio", RequestFacts("GET", "admin", "", operation="ListObjectsV2")
        )
    ] == ["aws"]
