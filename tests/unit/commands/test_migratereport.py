"""The pure parts of `migrate`: locations, the copy-or-skip decision, the report, the walk."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

from s3router_proxy.commands.migratereport import (
    Evidence,
    Location,
    ObjectInfo,
    ReportRow,
    ReportWriter,
    decide,
    default_report_name,
    dest_key,
    load_evidence,
    overlapping,
    parse_location,
)
from s3router_proxy.commands.migratestores import error_code, paired
from s3router_proxy.s3.errors import S3Error

MD5 = '"9e107d9d372bb6826bd81d3542a419d6"'
OTHER_MD5 = '"e4d909c290d0fb1ca068ffaddf22cbd0"'
MULTIPART = '"d41d8cd98f00b204e9800998ecf8427e-25"'


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket", Location("bucket", "")),
        ("s3://bucket/", Location("bucket", "")),
        ("s3://repo/main", Location("repo", "main/")),
        ("s3://repo/main/", Location("repo", "main/")),
        ("s3://b/a/b c+d", Location("b", "a/b c+d/")),
    ],
)
def test_parse_location(url: str, expected: Location) -> None:
    assert parse_location(url) == expected


@pytest.mark.parametrize("url", ["bucket/key", "s3://", "s3:///key", "https://b/k"])
def test_parse_location_refuses(url: str) -> None:
    with pytest.raises(ValueError):
        parse_location(url)


def test_dest_key_replaces_the_source_prefix() -> None:
    src, dst = Location("s3-data", "exports/"), Location("repo", "main/")
    assert dest_key("exports/2026/a.csv", src, dst) == "main/2026/a.csv"
    assert dest_key("k", Location("a"), Location("b")) == "k"
    assert dest_key("main/x", Location("r", "main/"), Location("r2")) == "x"


def test_overlapping() -> None:
    assert overlapping(Location("a"), Location("a", "x/"))
    assert overlapping(Location("a", "x/y/"), Location("a", "x/"))
    assert not overlapping(Location("a", "x/"), Location("a", "y/"))
    assert not overlapping(Location("a"), Location("b"))


def obj(size: int = 10, etag: str = MD5, checksums: dict[str, str] | None = None) -> ObjectInfo:
    return ObjectInfo("k", size, etag, checksums)


def test_decide_missing_and_size() -> None:
    assert decide(obj(), None).action == "copy"
    decision = decide(obj(10), obj(11))
    assert decision.action == "copy" and "size" in decision.reason


def test_decide_plain_etags() -> None:
    assert decide(obj(), obj()).action == "skip"
    assert decide(obj(etag=MD5), obj(etag=MD5.strip('"'))).action == "skip"  # quoting differs
    assert decide(obj(etag=MD5), obj(etag=OTHER_MD5)).action == "copy"
    # Plain ETags that differ are never rescued by a checksum or a report.
    assert decide(obj(etag=MD5), obj(etag=OTHER_MD5), Evidence(MD5, "k", OTHER_MD5)).action == (
        "copy"
    )


def test_decide_multipart_needs_checksums_or_evidence() -> None:
    src, dst = obj(etag=MULTIPART), obj(etag=MD5)
    assert decide(src, dst).action == "check"
    assert decide(src, dst, Evidence(MULTIPART, "k", MD5)).action == "skip"
    assert decide(src, dst, Evidence(MULTIPART, "other-key", MD5)).action == "check"
    assert decide(src, dst, Evidence('"old-3"', "k", MD5)).action == "check"  # source changed
    assert decide(src, dst, Evidence(MULTIPART, "k", OTHER_MD5)).action == "check"  # dest changed


def test_decide_multipart_with_checksums() -> None:
    same = decide(
        obj(etag=MULTIPART, checksums={"crc32": "AAA="}), obj(checksums={"crc32": "AAA="})
    )
    assert same.action == "skip" and "CRC32" in same.reason
    differ = decide(
        obj(etag=MULTIPART, checksums={"crc32": "AAA="}), obj(checksums={"crc32": "B="})
    )
    assert differ.action == "copy" and "differs" in differ.reason
    # Composite (per-part) and full-object checksums do not compare; nothing in common.
    mixed = decide(
        obj(etag=MULTIPART, checksums={"crc32": "AAA=-25"}), obj(checksums={"crc32": "AAA="})
    )
    assert mixed.action == "copy" and mixed.reason.startswith("multipart ETag")
    none = decide(obj(etag=MULTIPART, checksums={"sha256": "x"}), obj(checksums={}))
    assert none.action == "copy" and none.reason.startswith("multipart ETag")


def test_report_round_trip_keeps_any_key_and_loads_only_needed_evidence(tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    report = ReportWriter.open(path)
    odd = 'a,b "quoted"\nnew line é'
    report.write(
        ReportRow(
            "src", odd, "copied", 5, MULTIPART, dest_bucket="repo", dest_key=odd, dest_etag=MD5
        )
    )
    report.write(ReportRow("src", "plain", "copied", 5, MD5, dest_key="plain", dest_etag=MD5))
    report.write(
        ReportRow("src", "bad", "failed", 5, MULTIPART, http_status=404, error_code="NoSuchBucket")
    )
    # Readable row by row before close: an interrupted run's report is whole.
    text = path.read_text(encoding="utf-8")
    assert text.startswith("bucket,key,status,http_status,error_code,reason,size,etag,")
    report.close()
    evidence = load_evidence([path])
    assert evidence == {odd: Evidence(MULTIPART.strip('"'), odd, MD5.strip('"'))}


def test_default_report_name_is_utc() -> None:
    assert default_report_name(0) == "migrate-report-19700101T000000Z.csv"


def test_error_code_reads_a_wrapped_backend_code() -> None:
    wrapped = S3Error(
        "InternalError", "Writing failed with status 404: b'<Error><Code>NoSuchBucket</Code>'"
    )
    assert error_code(wrapped) == "NoSuchBucket"
    assert error_code(S3Error("SlowDown")) == "SlowDown"
    assert error_code(S3Error("InternalError", "plain")) == "InternalError"


async def listing(*keys: str) -> AsyncGenerator[ObjectInfo, None]:
    for key in keys:
        yield ObjectInfo(key, 1, MD5)


async def test_paired_walks_both_listings_by_key_under_their_prefixes() -> None:
    sources = listing("data/a", "data/b", "data/d", "data/é")
    dests = listing("main/b", "main/c", "main/d")
    pairs = [
        (s and s.key, d and d.key)
        async for s, d in paired(sources, dests, Location("s", "data/"), Location("r", "main/"))
    ]
    assert pairs == [
        ("data/a", None),
        ("data/b", "main/b"),
        (None, "main/c"),
        ("data/d", "main/d"),
        ("data/é", None),
    ]
