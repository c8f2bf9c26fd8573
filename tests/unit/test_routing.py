"""Routing rules: ordered, first match wins, whole-name case-sensitive globs, methods."""

from __future__ import annotations

import pytest

from s3router_proxy.errors import S3Error
from s3router_proxy.routing import compile_rule, match_route

RULES = (
    compile_rule(index=0, pattern="lakefs-*", target="lakefs"),
    compile_rule(
        index=1, pattern="critical-data-*", target="s3", methods=frozenset({"GET", "HEAD"})
    ),
    compile_rule(index=2, pattern="critical-data-*", target="lakefs"),
    compile_rule(index=3, pattern="logs-202[0-9]", target="archive"),
    compile_rule(index=4, pattern="tmp?", target="scratch"),
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
    route = match_route(RULES, "default", method, bucket, "k")
    assert route.backend == backend
    assert (route.rule.index if route.rule else None) == rule
    assert (route.bucket, route.key) == (bucket, "k")


def test_no_match_without_default_is_no_such_bucket() -> None:
    with pytest.raises(S3Error) as caught:
        match_route(RULES, None, "GET", "other", "")
    assert caught.value.code == "NoSuchBucket"
    assert caught.value.status == 404


def test_mismatch_reasons() -> None:
    assert RULES[1].mismatch_reason("PUT", "critical-data-x") is not None
    assert "does not match pattern" in (RULES[0].mismatch_reason("GET", "x") or "")
    assert RULES[0].mismatch_reason("GET", "lakefs-a") is None
