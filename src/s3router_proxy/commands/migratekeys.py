"""Key lists `lakefs-s3-router migrate --keys` reads instead of listing the source: the pure half.

Two formats, as AWS writes them:

- an S3 Inventory `manifest.json`: `fileFormat` CSV, `fileSchema` naming each data file's
  columns (`Bucket, Key, VersionId, IsLatest, …`), `files` the data files (CSV, gzipped as AWS
  writes them), with no header row;
- an S3 Batch Operations CSV manifest: `bucket,key` or `bucket,key,versionId` lines (or a bare
  `key` per line).

Keys are URL-encoded in both (form encoding: `+` is a space, `%2B` a plus sign). Records are
cut from text as it arrives (`RecordReader`), so a list of any length streams through; a quoted
field may hold commas and line breaks. The bucket and version columns are not used: the
command's source names the bucket, and migrate copies current versions. An inventory that
lists every version gives its noncurrent versions and delete markers, which are left out.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from urllib.parse import unquote_plus

MAX_MANIFEST = 16 * 1024 * 1024  # a manifest.json lists data files, not keys: small


@dataclass(frozen=True, slots=True)
class Manifest:
    """An S3 Inventory manifest: the columns of its data files, and their keys."""

    source_bucket: str
    columns: tuple[str, ...]
    files: tuple[str, ...]


def parse_manifest(data: bytes) -> Manifest:
    """A `manifest.json` as S3 Inventory writes it; ValueError naming what is wrong."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not an S3 Inventory manifest.json: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError("not an S3 Inventory manifest.json: not a JSON object")
    file_format = document.get("fileFormat")
    if file_format != "CSV":
        raise ValueError(f"inventory fileFormat {file_format!r}: only CSV inventories are read")
    schema = document.get("fileSchema")
    files = document.get("files")
    if not isinstance(schema, str) or not isinstance(files, list):
        raise ValueError("inventory manifest without a fileSchema string and a files list")
    columns = tuple(name.strip() for name in schema.split(","))
    if "Key" not in columns:
        raise ValueError(f"inventory fileSchema {schema!r} has no Key column")
    keys = []
    for entry in files:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise ValueError("inventory manifest: each of files needs a key")
        keys.append(entry["key"])
    return Manifest(str(document.get("sourceBucket", "")), columns, tuple(keys))


def decode_key(text: str) -> str:
    """A key as S3 Inventory and Batch Operations URL-encode it."""
    return unquote_plus(text, errors="strict")


class RecordReader:
    """CSV records cut from text fed in pieces. A record ends at a line break outside quotes:
    with quotes doubled inside quoted fields, that is where the count of `"` so far is even."""

    def __init__(self) -> None:
        self._line = ""  # text after the last line break
        self._record: list[str] = []  # complete lines of a record still inside quotes
        self._quotes = 0

    def feed(self, text: str) -> list[list[str]]:
        records: list[list[str]] = []
        lines = (self._line + text).split("\n")
        self._line = lines.pop()
        for line in lines:
            self._take(line + "\n", records)
        return records

    def close(self) -> list[list[str]]:
        """The last record (a file need not end with a line break); ValueError if a quoted
        field never closes."""
        records: list[list[str]] = []
        if self._line:
            self._take(self._line, records)
            self._line = ""
        if self._record:
            raise ValueError("the key list ends inside a quoted field")
        return records

    def _take(self, line: str, records: list[list[str]]) -> None:
        self._record.append(line)
        self._quotes += line.count('"')
        if self._quotes % 2:
            return
        text = "".join(self._record)
        self._record, self._quotes = [], 0
        if text.strip():
            records.append(next(csv.reader([text], strict=True)))


@dataclass(frozen=True, slots=True)
class InventoryColumns:
    """Where an inventory data file's record holds what a key list needs."""

    key: int
    is_latest: int | None = None
    is_delete_marker: int | None = None

    @classmethod
    def of(cls, manifest: Manifest) -> InventoryColumns:
        where = {name: index for index, name in enumerate(manifest.columns)}
        return cls(where["Key"], where.get("IsLatest"), where.get("IsDeleteMarker"))


def inventory_key(record: list[str], columns: InventoryColumns) -> str | None:
    """The key of an inventory record; None for a noncurrent version or a delete marker."""
    if len(record) <= columns.key:
        raise ValueError(f"inventory record with {len(record)} fields has no Key: {record!r}")
    if _field(record, columns.is_latest) == "false":
        return None
    if _field(record, columns.is_delete_marker) == "true":
        return None
    return decode_key(record[columns.key])


def batch_key(record: list[str]) -> str:
    """The key of a Batch Operations manifest record: `key`, `bucket,key` or
    `bucket,key,versionId`."""
    if len(record) == 1:
        return decode_key(record[0])
    if len(record) in (2, 3):
        return decode_key(record[1])
    raise ValueError(f"key list record with {len(record)} fields: expected bucket,key[,versionId]")


def _field(record: list[str], index: int | None) -> str:
    return record[index].strip().lower() if index is not None and index < len(record) else ""
