"""One parse of an incoming HTTP request into what S3 means by it.

The raw request path is the truth: S3 keys may contain `//`, `..`, `%2F`, `+` and any unicode,
so nothing here normalises a path. The bucket comes from the path (path style) or from the Host
header under a configured base domain (virtual-hosted style); the key is the rest of the path,
percent-decoded exactly once. `parse_request` builds the `S3Request` every later layer reads.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, unquote_plus

from multidict import CIMultiDictProxy

from .errors import S3Error
from .operations import operation_name

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
MAX_KEY_BYTES = 1024
# The headers S3 stores with an object and answers its GET and HEAD with.
CONTENT_HEADERS = (
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
)
# The methods S3 has operations for. Any other (TRACE, PROPFIND, PURGE, MKCOL, …) is refused
# here, before authentication, so it is never signed or sent to a backend, which might do it.
S3_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"})


@dataclass(slots=True)
class S3Request:
    """An S3 request as the client sent it, parsed once."""

    method: str
    raw_path: str  # as received: the canonical URI the client signed
    raw_query: str  # as received, without the leading "?"
    query: dict[str, str]  # first value per name, percent-decoded ("+" is a space)
    headers: CIMultiDictProxy[str]
    host: str  # Host header as received (port included)
    bucket: str  # "" for service-level requests (ListBuckets)
    key: str  # "" for bucket-level requests
    addressing: Literal["path", "virtual"]
    operation: str = ""
    query_items: list[tuple[str, str]] = field(default_factory=list)  # every pair, in order


def decode_component(raw: str) -> str:
    """Percent-decode one path component, exactly once; `+` stays `+`."""
    if "%" not in raw:
        return raw
    if _BAD_ESCAPE.search(raw):
        raise S3Error("InvalidURI")
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise S3Error("InvalidURI") from None


# Decoded query names and values that needed decoding (SDK-encoded credentials, prefixes,
# continuation tokens repeat from request to request). Bounded, oldest out; short strings only.
_DECODED: dict[str, str] = {}
_DECODED_SIZE = 1024
_DECODED_MAX_LEN = 256


def _decode_query_part(raw: str) -> str:
    """`unquote_plus(raw, errors="strict")`, remembered for short strings."""
    decoded = _DECODED.get(raw)
    if decoded is not None:
        return decoded
    decoded = unquote_plus(raw, errors="strict")  # a UnicodeDecodeError is never remembered
    if len(raw) <= _DECODED_MAX_LEN:
        if len(_DECODED) >= _DECODED_SIZE:
            # The oldest entry; another thread may have taken it already.
            with contextlib.suppress(KeyError, StopIteration, RuntimeError):
                del _DECODED[next(iter(_DECODED))]
        _DECODED[raw] = decoded
    return decoded


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """Every `name=value` pair of a raw query, decoded; `?acl` gives `("acl", "")`."""
    if not raw_query:
        return []
    items = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in part or "+" in part:  # otherwise unquote_plus gives both back as they are
            try:
                name = _decode_query_part(name)
                value = _decode_query_part(value)
            except UnicodeDecodeError:
                raise S3Error("InvalidURI", "The query string is not valid UTF-8.") from None
        items.append((name, value))
    return items


def virtual_host_bucket(host: str, base_domains: Iterable[str]) -> str | None:
    """The bucket named by a virtual-hosted Host header, or None for path style."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.lower().rstrip(".")
    for domain in base_domains:
        suffix = "." + domain
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def parse_request(
    method: str,
    raw_path: str,
    headers: CIMultiDictProxy[str],
    *,
    base_domains: Iterable[str] = (),
) -> S3Request:
    """Parse a request line and headers into an `S3Request`, or raise `S3Error`."""
    if method not in S3_METHODS:
        raise S3Error(
            "MethodNotAllowed",
            details={"Method": method},
            headers={"Allow": ", ".join(sorted(S3_METHODS))},
        )
    path, _, raw_query = raw_path.partition("?")
    if not path.startswith("/"):
        raise S3Error("InvalidURI")
    host = headers.get("Host", "")
    query_items = parse_query(raw_query)
    query = dict(query_items)
    if len(query) != len(query_items):  # a repeated name: the first value wins, not the last
        query = {}
        for name, value in query_items:
            query.setdefault(name, value)

    bucket = virtual_host_bucket(host, base_domains) if base_domains else None
    if bucket is not None:
        addressing: Literal["path", "virtual"] = "virtual"
        key = decode_component(path[1:])
    else:
        addressing = "path"
        raw_bucket, sep, raw_key = path[1:].partition("/")
        if not raw_bucket and sep:
            raise S3Error("InvalidURI", "The request path names a key but no bucket.")
        bucket = decode_component(raw_bucket)
        key = decode_component(raw_key)
        if "/" in bucket or bucket in (".", ".."):
            raise S3Error("InvalidBucketName")
    # A character is at most four bytes, so a short key needs no encoding to be measured.
    if len(key) * 4 > MAX_KEY_BYTES and len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError")

    request = S3Request(
        method=method,
        raw_path=path,
        raw_query=raw_query,
        query=query,
        headers=headers,
        host=host,
        bucket=bucket,
        key=key,
        addressing=addressing,
        query_items=query_items,
    )
    request.operation = operation_name(method, bucket, key, query, headers)
    return request
