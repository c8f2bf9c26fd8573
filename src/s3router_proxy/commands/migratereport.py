"""The pure half of `lakefs-s3-router migrate`: locations, the copy-or-skip decision, the report.

A migration resumes by comparing, not by remembering: a key is skipped when the destination
already holds an object that provably equals the source. Proof, in this order:

1. same size and same ETag, when neither ETag is a multipart one (an MD5 of the bytes);
2. same size, and an earlier run's report says it copied this source ETag to this destination
   ETag (`--previous-report`): multipart ETags depend on part sizes, so a copy across stores
   changes them and only the record of the copy links the two;
3. same size and the same `x-amz-checksum-*` value of one algorithm on both sides.

Anything else is copied again. The report is a CSV with one row per key, in the spirit of an
S3 Batch Operations completion report, flushed row by row so an interrupted run's report is
complete up to the interruption.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, TextIO

Action = Literal["copy", "skip", "check"]
REPORT_COLUMNS = (
    "bucket",
    "key",
    "status",
    "http_status",
    "error_code",
    "reason",
    "size",
    "etag",
    "dest_bucket",
    "dest_key",
    "dest_etag",
    "dest_version_id",
)
# Statuses: migrate writes copied/skipped/failed (would-copy with --dry-run); --verify writes
# verified/missing/different/extra (extra: only at the destination, not an error).
PROVEN = frozenset({"copied", "skipped", "verified"})
CHECKSUM_ALGORITHMS = ("crc64nvme", "crc32c", "crc32", "sha256", "sha1")


# -- locations ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Location:
    """A logical bucket and a key prefix (empty, or ending in `/`)."""

    bucket: str
    prefix: str = ""

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def parse_location(url: str) -> Location:
    """`s3://bucket[/prefix]`. A prefix names a folder, as in `aws s3 cp --recursive`: a `/`
    is added when it lacks one, so `s3://repo/main` and `s3://repo/main/` are the same."""
    if not url.startswith("s3://"):
        raise ValueError(f"{url!r} is not an s3://bucket[/prefix] URL")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"{url!r} names no bucket")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return Location(bucket, prefix)


def dest_key(key: str, source: Location, dest: Location) -> str:
    """The destination key of source key `key` (the source prefix replaced by the dest's)."""
    return dest.prefix + key[len(source.prefix) :]


def overlapping(a: Location, b: Location) -> bool:
    """True when one location's keys include the other's (same bucket, nested prefixes)."""
    return a.bucket == b.bucket and (a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix))


# -- objects and the decision ---------------------------------------------------------------------


def plain_etag(etag: str) -> str:
    """An ETag without quotes or a weak marker, as compared and reported."""
    etag = etag.strip()
    etag = etag.removeprefix("W/")
    return etag.strip('"')


def multipart_etag(etag: str) -> bool:
    return "-" in etag


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One object as a listing or a HEAD shows it. `checksums` (algorithm -> value) is None
    when not asked for (listings carry none)."""

    key: str
    size: int
    etag: str
    checksums: Mapping[str, str] | None = None
    version_id: str | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    """An earlier run's record: this key was copied from `etag` to `dest_key` as `dest_etag`."""

    etag: str
    dest_key: str
    dest_etag: str


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action  # "check": fetch both sides' checksums, then decide again
    reason: str


def decide(
    source: ObjectInfo, dest: ObjectInfo | None, evidence: Evidence | None = None
) -> Decision:
    """Copy or skip `source`, given what the destination holds under its key (see module doc)."""
    if dest is None:
        return Decision("copy", "not at the destination")
    if dest.size != source.size:
        return Decision("copy", f"destination size {dest.size} differs from {source.size}")
    etag, other = plain_etag(source.etag), plain_etag(dest.etag)
    if not multipart_etag(etag) and not multipart_etag(other):
        if etag == other:
            return Decision("skip", "same size and ETag")
        return Decision("copy", "ETag differs")
    if (
        evidence is not None
        and evidence.dest_key == dest.key
        and plain_etag(evidence.etag) == etag
        and plain_etag(evidence.dest_etag) == other
    ):
        return Decision("skip", "same size; an earlier run copied this source ETag to this one")
    if source.checksums is None or dest.checksums is None:
        return Decision("check", "multipart ETags are not comparable")
    for algorithm in CHECKSUM_ALGORITHMS:
        mine, theirs = source.checksums.get(algorithm), dest.checksums.get(algorithm)
        if mine is None or theirs is None or multipart_etag(mine) != multipart_etag(theirs):
            continue  # composite (per-part) and full-object checksums do not compare
        if mine == theirs:
            return Decision("skip", f"same size and {algorithm.upper()} checksum")
        return Decision("copy", f"{algorithm.upper()} checksum differs")
    return Decision(
        "copy", "multipart ETag, and no common checksum or earlier report proves the copy"
    )


# -- the report -----------------------------------------------------------------------------------


@dataclass(slots=True)
class ReportRow:
    bucket: str
    key: str
    status: str
    size: int | None = None
    etag: str = ""
    http_status: int | None = None
    error_code: str = ""
    reason: str = ""
    dest_bucket: str = ""
    dest_key: str = ""
    dest_etag: str = ""
    dest_version_id: str = ""

    def values(self) -> list[str]:
        return [
            self.bucket,
            self.key,
            self.status,
            "" if self.http_status is None else str(self.http_status),
            self.error_code,
            self.reason,
            "" if self.size is None else str(self.size),
            plain_etag(self.etag),
            self.dest_bucket,
            self.dest_key,
            plain_etag(self.dest_etag),
            self.dest_version_id,
        ]


class ReportWriter:
    """A CSV report written and flushed row by row (keys can hold any character: CSV quotes)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._csv = csv.writer(stream)
        self._csv.writerow(REPORT_COLUMNS)
        stream.flush()

    @classmethod
    def open(cls, path: str | Path) -> ReportWriter:
        return cls(Path(path).open("w", encoding="utf-8", newline=""))

    def write(self, row: ReportRow) -> None:
        self._csv.writerow(row.values())
        self._stream.flush()

    def close(self) -> None:
        self._stream.close()


def read_report(stream: IO[str]) -> Iterable[dict[str, str]]:
    """The rows of a report, as dicts by column name."""
    return csv.DictReader(stream)


def load_evidence(paths: Iterable[str | Path]) -> dict[str, Evidence]:
    """What earlier reports prove, by source key: only rows a size + ETag comparison cannot
    prove again (a multipart ETag on either side), so memory stays small for any bucket."""
    evidence: dict[str, Evidence] = {}
    for path in paths:
        with Path(path).open(encoding="utf-8", newline="") as stream:
            for row in read_report(stream):
                if row.get("status") not in PROVEN:
                    continue
                etag, dest_etag = row.get("etag", ""), row.get("dest_etag", "")
                if etag and dest_etag and (multipart_etag(etag) or multipart_etag(dest_etag)):
                    evidence[row["key"]] = Evidence(etag, row.get("dest_key", ""), dest_etag)
    return evidence


def default_report_name(now: float | None = None, suffix: str = "") -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return f"migrate-report-{stamp}{suffix}.csv"
