"""ListObjects and ListObjectsV2 from a bucket's sorted index, in S3's key order.

Keys are walked with ZRANGEBYLEX (byte order of their UTF-8, which is S3's), never SCAN. With a
delimiter, a key whose rest after the prefix holds it rolls up into a common prefix, and the
walk jumps past every key under that prefix at once: the next bound is the prefix followed by
the byte 0xFF, which no UTF-8 key contains, so it sorts after all of them and before the next.

Where the walk stopped is an exclusive bound in bytes: a V2 continuation token carries it
(base64url), a V1 NextMarker names the last key or common prefix, and a marker or StartAfter
inside a common prefix resumes after the whole prefix, as S3 does.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from ..s3.errors import S3Error
from .answers import OWNER, XMLNS, StoredAnswer, element, iso_time
from .answers import xml_answer as xml

AFTER_PREFIX = b"\xff"  # sorts after every UTF-8 key that starts with what precedes it
BATCH = 1000

# (from, inclusive, below, count) -> keys in order.
Fetch = Callable[[bytes, bool, bytes | None, int], Awaitable[list[bytes]]]


@dataclass(frozen=True, slots=True)
class ListQuery:
    prefix: str = ""
    delimiter: str = ""
    after: bytes | None = None  # exclusive bound to resume from
    max_keys: int = 1000


@dataclass(slots=True)
class ListPage:
    keys: list[str] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    resume: bytes | None = None  # the exclusive bound after the last entry
    last: str | None = None  # the last key or common prefix listed


def _rolled_up(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter or not key.startswith(prefix):
        return None
    at = key.find(delimiter, len(prefix))
    return None if at < 0 else key[: at + len(delimiter)]


def resume_after(marker: str, query: ListQuery) -> bytes:
    """The bound a V1 marker or a V2 StartAfter resumes after: past its common prefix, if any."""
    common = _rolled_up(marker, query.prefix, query.delimiter)
    return marker.encode() if common is None else common.encode() + AFTER_PREFIX


async def list_page(fetch: Fetch, query: ListQuery) -> ListPage:
    """One page of keys and common prefixes, in order, at most `max_keys` of them together."""
    page = ListPage()
    prefix = query.prefix.encode()
    upper = prefix + AFTER_PREFIX if prefix else None
    if query.after is not None and query.after >= prefix:
        bound, inclusive = query.after, False
    else:
        bound, inclusive = prefix, True
    if query.max_keys <= 0:
        return page
    while True:
        want = min(BATCH, query.max_keys - len(page.keys) - len(page.prefixes) + 1)
        batch = await fetch(bound, inclusive, upper, want)
        jumped = False
        for raw in batch:
            key = raw.decode()
            common = _rolled_up(key, query.prefix, query.delimiter)
            if len(page.keys) + len(page.prefixes) == query.max_keys:
                page.truncated = True
                return page
            if common is not None:
                page.prefixes.append(common)
                page.last, page.resume = common, common.encode() + AFTER_PREFIX
                bound, inclusive, jumped = page.resume, False, True
                break
            page.keys.append(key)
            page.last, page.resume = key, raw
            bound, inclusive = raw, False
        if not jumped and len(batch) < want:
            return page


def token(bound: bytes) -> str:
    return base64.urlsafe_b64encode(bound).decode()


def from_token(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value.encode())
    except (binascii.Error, ValueError):
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect") from None


def query_of(args: Mapping[str, str], v2: bool) -> ListQuery:
    """The listing a request asks for (its prefix, delimiter, where to resume, how many)."""
    raw_max = args.get("max-keys", "1000")
    if not raw_max.lstrip("-").isdigit():
        raise S3Error("InvalidArgument", "Provided max-keys not an integer or within integer range")
    max_keys = min(int(raw_max), 1000)
    if max_keys < 0:
        raise S3Error(
            "InvalidArgument", "Argument maxKeys must be an integer between 0 and 2147483647"
        )
    base = ListQuery(args.get("prefix", ""), args.get("delimiter", ""), None, max_keys)
    after: bytes | None = None
    if v2 and "continuation-token" in args:
        after = from_token(args["continuation-token"])
    elif v2 and args.get("start-after"):
        after = resume_after(args["start-after"], base)
    elif not v2 and args.get("marker"):
        after = resume_after(args["marker"], base)
    return ListQuery(base.prefix, base.delimiter, after, max_keys)


def listing_document(
    bucket: str, args: Mapping[str, str], page: ListPage, metas: list[dict | None], v2: bool
) -> StoredAnswer:
    """The ListBucketResult of a page; `metas` are its keys' metadata (None: gone since)."""
    url = args.get("encoding-type") == "url"
    owner = OWNER if not v2 or args.get("fetch-owner") == "true" else ""
    contents = [
        "<Contents>"
        + element("Key", key, url)
        + element("LastModified", iso_time(meta["mtime"]))
        + element("ETag", f'"{meta["etag"]}"')
        + element("Size", meta["size"])
        + owner
        + "<StorageClass>STANDARD</StorageClass></Contents>"
        for key, meta in zip(page.keys, metas, strict=True)
        if meta is not None
    ]
    prefixes = [
        f"<CommonPrefixes>{element('Prefix', p, url)}</CommonPrefixes>" for p in page.prefixes
    ]
    parts = [f'<ListBucketResult xmlns="{XMLNS}">', element("Name", bucket)]
    parts.append(element("Prefix", args.get("prefix", ""), url))
    if v2:
        parts.append(element("KeyCount", len(contents) + len(prefixes)))
        if "continuation-token" in args:
            parts.append(element("ContinuationToken", args["continuation-token"]))
        if page.truncated and page.resume is not None:
            parts.append(element("NextContinuationToken", token(page.resume)))
        if "start-after" in args:
            parts.append(element("StartAfter", args["start-after"], url))
    else:
        parts.append(element("Marker", args.get("marker", ""), url))
        if page.truncated and args.get("delimiter") and page.last is not None:
            parts.append(element("NextMarker", page.last, url))
    parts.append(element("MaxKeys", int(args.get("max-keys") or 1000)))
    if args.get("delimiter"):
        parts.append(element("Delimiter", args["delimiter"], url))
    if url:
        parts.append("<EncodingType>url</EncodingType>")
    parts.append(f"<IsTruncated>{'true' if page.truncated else 'false'}</IsTruncated>")
    parts += contents + prefixes
    parts.append("</ListBucketResult>")
    return xml("".join(parts))
