"""Ranges and conditional requests, as S3 evaluates them: pure functions of the request's
headers (lower-case names) and the stored object's ETag, size and modification time.

Conditions follow RFC 9110's order, which is S3's: If-Match, else If-Unmodified-Since, decides
412; then If-None-Match, else If-Modified-Since, decides 304 for a read (412 for a write).
Dates are compared in whole seconds, as Last-Modified carries them; a date that does not parse
is ignored, as S3 ignores it.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime

NOT_MODIFIED = 304
PRECONDITION_FAILED = 412


def _etags(value: str) -> list[str]:
    tags = []
    for part in value.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        tags.append(tag.strip('"'))
    return tags


def etag_matches(value: str, etag: str) -> bool:
    """Whether an If-Match / If-None-Match list names `etag` (hex, unquoted), or is `*`."""
    tags = _etags(value)
    return "*" in tags or etag in tags


def _seconds(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def precondition(
    headers: Mapping[str, str], etag: str, mtime: float, *, read: bool = True, prefix: str = ""
) -> int | None:
    """304 or 412 when a condition stops the request, None when it goes ahead. `prefix` reads
    a copy's source conditions (`x-amz-copy-source-if-match`, …), which fail with 412 only."""
    modified = int(mtime)
    if_match = headers.get(prefix + "if-match")
    if if_match is not None:
        if not etag_matches(if_match, etag):
            return PRECONDITION_FAILED
    else:
        since = _seconds(headers.get(prefix + "if-unmodified-since"))
        if since is not None and modified > since:
            return PRECONDITION_FAILED
    if_none_match = headers.get(prefix + "if-none-match")
    if if_none_match is not None:
        if etag_matches(if_none_match, etag):
            return NOT_MODIFIED if read and not prefix else PRECONDITION_FAILED
    else:
        since = _seconds(headers.get(prefix + "if-modified-since"))
        if since is not None and modified <= since:
            return NOT_MODIFIED if read and not prefix else PRECONDITION_FAILED
    return None


class RangeNotSatisfiable(Exception):
    """The Range asks for bytes the object does not have (S3's InvalidRange, 416)."""


def byte_range(value: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte, inclusive, of a `Range: bytes=…` header on an object of `size`
    bytes; None for the whole object (no Range, or one S3 ignores: several ranges, another
    unit, a malformed one)."""
    if not value or not value.startswith("bytes=") or "," in value:
        return None
    first_text, dash, last_text = value[6:].strip().partition("-")
    if not dash or not (first_text.isdigit() or last_text.isdigit()):
        return None
    if first_text and last_text and not (first_text.isdigit() and last_text.isdigit()):
        return None
    if not first_text:  # the last N bytes
        length = int(last_text)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - length), size - 1
    if not first_text.isdigit():
        return None
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None
    if first >= size:
        raise RangeNotSatisfiable
    return first, min(int(last_text), size - 1) if last_text else size - 1
