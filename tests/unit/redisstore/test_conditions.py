"""Ranges and conditional requests as S3 evaluates them (RFC 9110's order), without Redis."""

from __future__ import annotations

import pytest

from s3router_proxy.redisstore.conditions import (
    NOT_MODIFIED,
    PRECONDITION_FAILED,
    RangeNotSatisfiable,
    byte_range,
    etag_matches,
    precondition,
)

ETAG = "0cc175b9c0f1b6a831c399e269772661"
MTIME = 1_767_225_600.5  # 2026-01-01 00:00:00.5 UTC
SAME = "Thu, 01 Jan 2026 00:00:00 GMT"
BEFORE = "Wed, 31 Dec 2025 23:59:59 GMT"
AFTER = "Thu, 01 Jan 2026 00:00:01 GMT"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"if-match": f'"{ETAG}"'}, None),
        ({"if-match": ETAG}, None),
        ({"if-match": '"other", "' + ETAG + '"'}, None),
        ({"if-match": "*"}, None),
        ({"if-match": '"other"'}, PRECONDITION_FAILED),
        ({"if-unmodified-since": SAME}, None),
        ({"if-unmodified-since": BEFORE}, PRECONDITION_FAILED),
        # If-Match decides alone when both are given: S3's documented pair.
        ({"if-match": ETAG, "if-unmodified-since": BEFORE}, None),
        ({"if-none-match": f'"{ETAG}"'}, NOT_MODIFIED),
        ({"if-none-match": f'W/"{ETAG}"'}, NOT_MODIFIED),
        ({"if-none-match": '"other"'}, None),
        ({"if-modified-since": SAME}, NOT_MODIFIED),
        ({"if-modified-since": AFTER}, NOT_MODIFIED),
        ({"if-modified-since": BEFORE}, None),
        # If-None-Match decides alone when both are given.
        ({"if-none-match": '"other"', "if-modified-since": AFTER}, None),
        ({"if-none-match": ETAG, "if-modified-since": BEFORE}, NOT_MODIFIED),
        # 412 comes before 304.
        ({"if-match": '"other"', "if-none-match": ETAG}, PRECONDITION_FAILED),
        # A date that does not parse is ignored.
        ({"if-modified-since": "yesterday"}, None),
        ({"if-unmodified-since": ""}, None),
    ],
)
def test_read_conditions(headers: dict[str, str], expected: int | None) -> None:
    assert precondition(headers, ETAG, MTIME) == expected


def test_a_copy_source_condition_fails_with_412_only() -> None:
    prefix = "x-amz-copy-source-"
    assert precondition({prefix + "if-none-match": ETAG}, ETAG, MTIME, prefix=prefix) == 412
    assert precondition({prefix + "if-modified-since": AFTER}, ETAG, MTIME, prefix=prefix) == 412
    assert precondition({prefix + "if-match": ETAG}, ETAG, MTIME, prefix=prefix) is None
    # The object's own conditions are not the source's.
    assert precondition({"if-match": '"x"'}, ETAG, MTIME, prefix=prefix) is None


def test_etag_lists() -> None:
    assert etag_matches(f' "a" , "{ETAG}"', ETAG)
    assert not etag_matches('"a"', ETAG)


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-0", 10, (0, 0)),
        ("bytes=2-5", 10, (2, 5)),
        ("bytes=5-", 10, (5, 9)),
        ("bytes=5-100", 10, (5, 9)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=-30", 10, (0, 9)),
        # What S3 ignores: the whole object comes back.
        ("bytes=0-1,4-5", 10, None),
        ("items=0-1", 10, None),
        ("bytes=5-2", 10, None),
        ("bytes=a-b", 10, None),
        ("bytes=-", 10, None),
    ],
)
def test_ranges(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=10-", 10), ("bytes=0-", 0), ("bytes=-0", 10), ("bytes=-5", 0)]
)
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        byte_range(header, size)
