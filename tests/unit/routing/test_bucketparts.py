"""A bucket's parts: every store its keys live in, as listings and bucket-level requests see
it, and the buckets ListBuckets shows."""

from __future__ import annotations

from s3router_proxy.routing.bucketparts import listing_is_plain, routes_for_bucket, visible_buckets
from s3router_proxy.routing.facts import RequestFacts
from s3router_proxy.routing.names import NameMapping
from s3router_proxy.routing.rules import MappedNames, RuleMatch, compile_rule

EXAMPLE = (
    compile_rule(
        0,
        RuleMatch("example-bucket", key_pattern="team2/*"),
        "minio",
        names=MappedNames(bucket="minio-bucket", prefix="data/team2"),
    ),
)


def test_routes_for_split_bucket() -> None:
    parts = routes_for_bucket(
        EXAMPLE, "default", RequestFacts("GET", "example-bucket", "", operation="ListObjectsV2"), ""
    )
    assert [(p.backend, p.bucket) for p in parts] == [
        ("minio", "minio-bucket"),
        ("default", "example-bucket"),
    ]
    minio, default = parts
    assert minio.mapping == NameMapping("example-bucket", "minio-bucket", "team2/", "data/team2/")
    assert minio.owns("team2/x") and not minio.owns("team1/x")
    assert default.owns("team1/x") and not default.owns("team2/x")
    assert default.region("team2/") == "none"
    assert default.region("team") == "some"
    assert default.region("x") == "all"
    assert not listing_is_plain(parts)


def test_routes_for_bucket_narrowed_by_prefix() -> None:
    parts = routes_for_bucket(
        EXAMPLE,
        "default",
        RequestFacts("GET", "example-bucket", "", operation="ListObjectsV2"),
        "team2/sub",
    )
    assert [p.backend for p in parts] == ["minio"]
    parts = routes_for_bucket(
        EXAMPLE,
        "default",
        RequestFacts("GET", "example-bucket", "", operation="ListObjectsV2"),
        "team1/",
    )
    assert [p.backend for p in parts] == ["default"]
    assert parts[0].excluded == ()
    assert listing_is_plain(parts)
    other = routes_for_bucket(
        EXAMPLE, "default", RequestFacts("GET", "other", "", operation="ListObjectsV2"), ""
    )
    assert len(other) == 1 and other[0].plain
    assert (
        routes_for_bucket(
            EXAMPLE, None, RequestFacts("GET", "other", "", operation="ListObjectsV2"), ""
        )
        == []
    )


def test_routes_for_bucket_stops_at_catch_all() -> None:
    rules = (
        compile_rule(0, RuleMatch("b", key_pattern="a/*"), "one"),
        compile_rule(1, RuleMatch("b"), "two", names=MappedNames(prefix="p")),
        compile_rule(2, RuleMatch("b", key_pattern="z/*"), "three"),
    )
    parts = routes_for_bucket(
        rules, "d", RequestFacts("GET", "b", "", operation="ListObjectsV2"), ""
    )
    assert [p.backend for p in parts] == ["one", "two"]
    assert parts[1].excluded == (rules[0],)
    assert parts[1].mapping.backend_prefix == "p/"


def test_routes_for_bucket_filters_by_operation() -> None:
    rules = (
        compile_rule(0, RuleMatch("b", key_pattern="a/*", operations=["write"]), "one"),
        compile_rule(1, RuleMatch("b", operations=["list"]), "two"),
    )
    parts = routes_for_bucket(
        rules, "d", RequestFacts("GET", "b", "", operation="ListObjectsV2"), ""
    )
    assert [p.backend for p in parts] == ["two"]
    parts = routes_for_bucket(
        rules, "d", RequestFacts("PUT", "b", "", operation="CreateBucket"), ""
    )
    assert [p.backend for p in parts] == ["d"]


def test_visible_buckets() -> None:
    held = {
        "minio": ["minio-bucket", "scratch"],
        "default": ["example-bucket", "logs"],
    }
    assert visible_buckets(EXAMPLE, "default", held) == ["example-bucket", "logs"]
    # Only the renamed part exists: the logical bucket is still there.
    assert visible_buckets(EXAMPLE, "default", {"minio": ["minio-bucket"]}) == ["example-bucket"]
    # Without a default, buckets no rule routes are not the client's.
    assert visible_buckets(EXAMPLE, None, held) == ["example-bucket"]
    rules = (compile_rule(0, RuleMatch("*"), "minio"),)
    assert visible_buckets(rules, None, held) == ["minio-bucket", "scratch"]
