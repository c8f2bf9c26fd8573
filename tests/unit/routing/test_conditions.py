"""A rule's `operations:` and `conditions:`: methods, names and groups; Content-Type, size and
time of day, each as a routing decision."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from s3router_proxy.routing.conditions import Conditions, TimeRange, compile_operations
from s3router_proxy.routing.facts import RequestFacts
from s3router_proxy.routing.rules import RuleMatch, compile_rule, match_route


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
