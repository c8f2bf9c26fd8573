"""Routing rules: first match wins, whole-name globs, operations, conditions, name mapping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from s3router_proxy.routing.bucketparts import listing_is_plain, routes_for_bucket, visible_buckets
from s3router_proxy.routing.conditions import Conditions, Operations, TimeRange, compile_operations
from s3router_proxy.routing.facts import RequestFacts, object_size
from s3router_proxy.routing.globs import glob_covers, glob_region, literal_prefix
from s3router_proxy.routing.names import NameMapping
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


def test_literal_prefix_and_regions() -> None:
    assert literal_prefix("team2/*") == "team2/"
    assert literal_prefix("a?b") == "a"
    assert literal_prefix("[x]") == ""
    assert literal_prefix("plain") == "plain"
    assert literal_prefix(None) == ""
    assert glob_region(None, "x") == "all"
    assert glob_region("team2/*", "team2/a") == "all"
    assert glob_region("team2/*", "team") == "some"
    assert glob_region("team2/*", "team3") == "none"
    assert glob_region("team2/*.csv", "team2/") == "some"
    assert glob_region("exact", "ex") == "some"
    assert glob_region("exact", "exact") == "some"
    assert glob_region("exact", "exactly") == "none"


def test_glob_covers() -> None:
    assert glob_covers(None, "a*")
    assert glob_covers("*", "a*")
    assert glob_covers("a*", "ab*")
    assert glob_covers("a*", "abc")
    assert not glob_covers("ab*", "a*")
    assert glob_covers("a?c", "abc")
    assert not glob_covers("*.csv", "a*")
    assert glob_covers("*", None)
    assert not glob_covers("a*", None)


# -- operations -----------------------------------------------------------------------------------


def test_operations_by_method_name_and_group() -> None:
    ops = compile_operations(["GET", "PutObject", "delete"])
    assert ops.matches("GET", "GetObject")
    assert ops.matches("GET", "")
    assert ops.matches("PUT", "PutObject")
    assert not ops.matches("PUT", "CopyObject")
    assert ops.matches("POST", "DeleteObjects")  # group delete
    assert ops.matches("DELETE", "AbortMultipartUpload")
    assert not ops.matches("DELETE", "DeleteBucket")  # admin, not delete
    assert not ops.matches("HEAD", "")
    with pytest.raises(ValueError, match="unknown"):
        compile_operations(["FETCH"])


def test_lower_case_methods_but_delete_is_the_group() -> None:
    ops = compile_operations(["get", "head"])
    assert ops.methods == frozenset({"GET", "HEAD"})
    assert compile_operations(["delete"]).groups == frozenset({"delete"})
    assert compile_operations(["DELETE"]).methods == frozenset({"DELETE"})


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


# -- conditions -----------------------------------------------------------------------------------

NOON = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def conditional(conditions: Conditions) -> tuple:
    return (compile_rule(0, RuleMatch("b", conditions=conditions), "x"),)


def route_of(rules: tuple, method: str, key: str, headers: dict[str, str], **kw: object) -> str:
    operation = str(kw.pop("operation", "PutObject" if method == "PUT" else "GetObject"))
    now = kw.pop("now", NOON)
    return match_route(
        rules, "d", RequestFacts(method, "b", key, operation=operation, headers=headers, now=now)
    ).backend


def test_content_types() -> None:
    rules = conditional(Conditions(content_types=("image/*", "text/csv")))
    assert route_of(rules, "PUT", "k", {"content-type": "image/png"}) == "x"
    assert route_of(rules, "PUT", "k", {"content-type": "Image/PNG; q=1"}) == "x"
    assert route_of(rules, "PUT", "k", {"content-type": "text/csv; charset=utf-8"}) == "x"
    assert route_of(rules, "PUT", "k", {"content-type": "text/plain"}) == "d"
    assert route_of(rules, "PUT", "k", {}) == "d"  # cannot be evaluated: no match
    assert route_of(rules, "GET", "k", {}) == "d"


def test_size_conditions() -> None:
    rules = conditional(Conditions(min_size=10, max_size=100))
    assert route_of(rules, "PUT", "k", {"content-length": "10"}) == "x"
    assert route_of(rules, "PUT", "k", {"content-length": "100"}) == "x"
    assert route_of(rules, "PUT", "k", {"content-length": "9"}) == "d"
    assert route_of(rules, "PUT", "k", {"content-length": "101"}) == "d"
    chunked = {
        "content-length": "500",
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": "50",
    }
    assert route_of(rules, "PUT", "k", chunked) == "x"
    no_decoded = {"content-length": "50", "content-encoding": "aws-chunked"}
    assert route_of(rules, "PUT", "k", no_decoded) == "d"  # size unknown
    assert route_of(rules, "PUT", "k", {"transfer-encoding": "chunked"}) == "d"
    assert route_of(rules, "GET", "k", {"content-length": "50"}) == "d"  # reads: unknown
    copy = {"content-length": "50", "x-amz-copy-source": "b/k"}
    assert route_of(rules, "PUT", "k", copy, operation="CopyObject") == "d"
    assert route_of(rules, "PUT", "k", {"content-length": "50"}, operation="UploadPart") == "x"
    assert route_of(rules, "PUT", "k", {"content-length": "abc"}) == "d"
    # A plain body is as long as its Content-Length, whatever x-amz-decoded-content-length says.
    lie = {"content-length": "5000", "x-amz-decoded-content-length": "50"}
    assert route_of(rules, "PUT", "k", lie) == "d"
    assert route_of(rules, "PUT", "k", lie, operation="PutObject") == "d"


def test_object_size_without_operation_name() -> None:
    assert object_size("PUT", "k", "", {"content-length": "5"}) == 5
    assert object_size("PUT", "", "", {"content-length": "5"}) is None
    assert object_size("GET", "k", "", {"content-length": "5"}) is None
    assert object_size("PUT", "k", "", {"content-length": "5", "x-amz-copy-source": "a/b"}) is None
    streaming = {
        "content-length": "5",
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    }
    assert object_size("PUT", "k", "", streaming) is None


def berlin(start: str, end: str) -> TimeRange:
    from zoneinfo import ZoneInfo

    def seconds(text: str) -> int:
        hours, minutes = text.split(":")
        return int(hours) * 3600 + int(minutes) * 60

    return TimeRange(seconds(start), seconds(end), "Europe/Berlin", ZoneInfo("Europe/Berlin"))


@pytest.mark.parametrize(
    ("start", "end", "utc_time", "inside"),
    [
        ("09:00", "17:00", "07:00", True),  # 09:00 CEST: start is inclusive
        ("09:00", "17:00", "06:59", False),
        ("09:00", "17:00", "14:59", True),
        ("09:00", "17:00", "15:00", False),  # 17:00 CEST: end is exclusive
        ("22:00", "06:00", "20:00", True),  # crosses midnight
        ("22:00", "06:00", "23:30", True),
        ("22:00", "06:00", "03:59", True),
        ("22:00", "06:00", "04:00", False),
        ("22:00", "06:00", "12:00", False),
    ],
)
def test_time_range(start: str, end: str, utc_time: str, inside: bool) -> None:
    hours, minutes = (int(x) for x in utc_time.split(":"))
    now = datetime(2024, 6, 1, hours, minutes, tzinfo=UTC)  # Berlin is UTC+2 in June
    rules = conditional(Conditions(time_range=berlin(start, end)))
    assert (route_of(rules, "GET", "k", {}, now=now) == "x") is inside


def test_facts_read_headers_once() -> None:
    facts = RequestFacts(
        "put", "b", "k", operation="PutObject", headers={"content-type": " Text/X ;a=b"}
    )
    assert (facts.method, facts.content_type, facts.size) == ("PUT", "text/x", None)
    assert facts.now.tzinfo is not None


def test_mismatch_reason_texts() -> None:
    rules = conditional(Conditions(content_types=("image/*",), max_size=5))
    reason = rules[0].mismatch(RequestFacts("PUT", "b", "k", operation="PutObject", headers={}))
    assert reason is not None and "Content-Type" in reason
    reason = rules[0].mismatch(
        RequestFacts("PUT", "b", "k", operation="PutObject", headers={"content-type": "image/x"})
    )
    assert reason is not None and "size is unknown" in reason
    ops = compile_rule(0, RuleMatch("b", operations=["write"]), "x")
    reason = ops.mismatch(RequestFacts("GET", "b", "k", operation="GetObject"))
    assert reason == "GET GetObject (group read) is not one of operations [write]"


# -- split buckets --------------------------------------------------------------------------------


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
