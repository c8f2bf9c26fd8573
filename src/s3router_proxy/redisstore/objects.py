"""One object: PutObject, GetObject, HeadObject, DeleteObject and CopyObject as S3 answers them.

A PUT's body arrives as the proxy's body layer yields it: checked while it streams (payload
hash, Content-MD5, `x-amz-checksum-*`, chunk signatures), its last piece held back until every
check passed, a failure raised from the iterator. The store takes it piece by piece and refuses
with EntityTooLarge as soon as it grows past `max_object_size`, so no more than that and one
piece is ever held, and nothing is written. What S3 keeps with an object is kept with it: its
Content-* headers, user metadata, ETag (the MD5 of its bytes), Last-Modified and the checksums
the client sent, so GET and HEAD answer as S3 would.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import unquote

from ..body.chunked import ChunkedBodyError, ChunkedResult, decode_aws_chunked
from ..body.payload import BodyAborted
from ..s3.checksums import HEADER_PREFIX, algorithm_for_header
from ..s3.errors import S3Error
from ..s3.request import CONTENT_HEADERS
from .answers import StoredAnswer, element, empty_answer, http_date, iso_time, store_error
from .answers import xml_answer as xml
from .conditions import NOT_MODIFIED, RangeNotSatisfiable, byte_range, precondition
from .store import RedisStore

# Headers S3 keeps with an object and answers GET and HEAD with.
KEPT = (*CONTENT_HEADERS, "x-amz-website-redirect-location")
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
DEFAULT_TYPE = "binary/octet-stream"


def kept_headers(headers: Mapping[str, str]) -> list[list[str]]:
    """The headers of a write that the object keeps, as [name, value] pairs."""
    kept = [[name, headers[name]] for name in KEPT if headers.get(name)]
    for pair in kept:
        if pair[0] == "content-encoding":  # framing, not the object's: S3 keeps the rest
            pair[1] = ",".join(e for e in pair[1].split(",") if e.strip() != "aws-chunked")
    kept = [pair for pair in kept if pair[1]]
    if not headers.get("content-type"):
        kept.insert(0, ["content-type", DEFAULT_TYPE])
    kept += [[n, v] for n, v in headers.items() if n.startswith("x-amz-meta-")]
    return kept


def new_meta(headers: Mapping[str, str], etag: str, size: int) -> dict[str, Any]:
    checksums = {
        name: value
        for name, value in headers.items()
        if name.startswith(HEADER_PREFIX) and algorithm_for_header(name) is not None
    }
    return {
        "etag": etag,
        "size": size,
        "mtime": round(time.time(), 3),
        "headers": kept_headers(headers),
        "checksums": checksums,
    }


def _decoded(
    body: AsyncIterator[bytes], headers: Mapping[str, str], result: ChunkedResult
) -> AsyncIterator[bytes]:
    """An aws-chunked body as a backend gets it with `checksum_trailers`: unsigned chunks and
    the client's checksum trailer, already verified by the proxy; the bytes, and the trailer in
    `result` once they ended."""
    length = headers.get("x-amz-decoded-content-length", "")
    return decode_aws_chunked(
        body,
        signing=None,
        decoded_length=int(length) if length.isdigit() else None,
        trailer_names=[n.strip() for n in headers.get("x-amz-trailer", "").split(",") if n],
        trailer_signed=False,
        result=result,
    )


async def read_body(body: Any, headers: Mapping[str, str], limit: int) -> tuple[bytes, dict]:
    """(the object's bytes, the checksums its aws-chunked trailer carried), capped at `limit`.

    A check the proxy's body layer failed raises `BodyAborted` from the stream, as for any
    backend; the decoder must not turn it into a framing error of its own."""
    if "aws-chunked" not in headers.get("content-encoding", "") or isinstance(body, bytes | None):
        return await read_capped(body, limit), {}
    result = ChunkedResult()
    try:
        data = await read_capped(_decoded(body, headers, result), limit)
    except ChunkedBodyError as exc:
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, BodyAborted):
                raise cause from None
            cause = cause.__cause__
        raise exc.error from None
    return data, {n: v for n, v in result.trailers.items() if algorithm_for_header(n)}


async def read_capped(body: AsyncIterator[bytes] | bytes | None, limit: int) -> bytes:
    """The whole body, refused with EntityTooLarge as soon as it passes `limit` bytes."""
    if body is None:
        return b""
    if isinstance(body, bytes):
        if len(body) > limit:
            raise _too_large(limit)
        return body
    data = bytearray()
    async for piece in body:
        data += piece
        if len(data) > limit:
            raise _too_large(limit)
    return bytes(data)


def _too_large(limit: int) -> S3Error:
    return S3Error(
        "EntityTooLarge",
        "Your proposed upload exceeds the maximum allowed size for this store.",
        details={"MaxSizeAllowed": str(limit)},
    )


def refuse(result: str, bucket: str, key: str) -> None:
    if result == "OK":
        return
    if result == "NoSuchBucket":
        raise S3Error("NoSuchBucket", details={"BucketName": bucket})
    if result == "NoSuchKey":
        raise S3Error("NoSuchKey", details={"Key": key})
    raise store_error(result)


async def put_object(
    store: RedisStore, asked: tuple[str, str, Mapping[str, str]], body: Any
) -> StoredAnswer:
    bucket, key, headers = asked
    limit = store.settings.max_object_size
    declared = headers.get("x-amz-decoded-content-length") or headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    data, trailers = await read_body(body, headers, limit)
    etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
    meta = new_meta(headers, etag, len(data))
    meta["checksums"].update(trailers)
    conditions = {}
    if headers.get("if-none-match", "").strip() == "*":
        conditions["none_match"] = "*"
    if "if-match" in headers:
        conditions["match"] = headers["if-match"].strip().strip('"')
    refuse(await store.put(bucket, key, data, meta, **conditions), bucket, key)
    answer = [("ETag", f'"{etag}"')]
    answer += [(name, value) for name, value in meta["checksums"].items()]
    return empty_answer(200, answer)


def _object_headers(meta: dict[str, Any], query: Mapping[str, str]) -> list[tuple[str, str]]:
    headers = [
        ("ETag", f'"{meta["etag"]}"'),
        ("Last-Modified", http_date(meta["mtime"])),
        ("Accept-Ranges", "bytes"),
    ]
    overrides = {
        RESPONSE_OVERRIDES[n].lower(): v for n, v in query.items() if n in RESPONSE_OVERRIDES
    }
    headers += [(n, overrides.pop(n, v)) for n, v in meta["headers"]]
    headers += [(name.title(), value) for name, value in overrides.items()]
    return headers


def _checksum_headers(meta: dict[str, Any], headers: Mapping[str, str]) -> list[tuple[str, str]]:
    if headers.get("x-amz-checksum-mode", "").upper() != "ENABLED" or not meta["checksums"]:
        return []
    return [*meta["checksums"].items(), ("x-amz-checksum-type", "FULL_OBJECT")]


def _stopped(status: int, meta: dict[str, Any]) -> StoredAnswer:
    if status == NOT_MODIFIED:
        return StoredAnswer(
            304, [("ETag", f'"{meta["etag"]}"'), ("Last-Modified", http_date(meta["mtime"]))]
        )
    raise store_error("PreconditionFailed", Condition="If-Match")


async def get_object(
    store: RedisStore,
    asked: tuple[str, str, Mapping[str, str]],
    query: Mapping[str, str],
    head: bool,
) -> StoredAnswer:
    """GetObject or HeadObject. A whole object is one MGET of its metadata and bytes; a Range
    reads the metadata first, for the size, then only those bytes (GETRANGE)."""
    bucket, key, headers = asked
    ranged = headers.get("range", "").startswith("bytes=")
    if head or ranged:
        meta, data = await store.meta(bucket, key), b""
    else:
        meta, data = await store.whole(bucket, key)
    if meta is None:
        await _missing(store, bucket, key)
    assert meta is not None
    stop = precondition(headers, meta["etag"], meta["mtime"])
    if stop is not None:
        return _stopped(stop, meta)
    size = meta["size"]
    try:
        span = byte_range(headers.get("range"), size)
    except RangeNotSatisfiable:
        raise store_error(
            "InvalidRange", RangeRequested=headers.get("range", ""), ActualObjectSize=str(size)
        ) from None
    answer = _object_headers(meta, query)
    if span is None:
        answer += _checksum_headers(meta, headers)
        length = size
    else:
        answer.append(("Content-Range", f"bytes {span[0]}-{span[1]}/{size}"))
        length = span[1] - span[0] + 1
    status = 200 if span is None else 206
    if head:
        return StoredAnswer(status, [*answer, ("Content-Length", str(length))])
    if ranged:
        read_meta, data = await (
            store.whole(bucket, key) if span is None else store.span(bucket, key, *span)
        )
        if read_meta is None or read_meta["etag"] != meta["etag"]:
            # Written or deleted between the two reads: answer from a consistent read.
            return await get_object(store, asked, query, head)
    return StoredAnswer(status, [*answer, ("Content-Length", str(len(data)))], data)


async def _missing(store: RedisStore, bucket: str, key: str) -> None:
    if not await store.has_bucket(bucket):
        raise S3Error("NoSuchBucket", details={"BucketName": bucket})
    raise S3Error("NoSuchKey", details={"Key": key})


async def delete_object(store: RedisStore, bucket: str, key: str) -> StoredAnswer:
    refuse(await store.delete(bucket, key), bucket, key)
    return empty_answer(204)


def copy_source(value: str) -> tuple[str, str]:
    """(bucket, key) of an `x-amz-copy-source` header; a version other than null is not kept."""
    path, _, version = value.partition("?")
    if version and version not in ("versionId=null", "versionId="):
        raise S3Error("NotImplemented", "This store keeps no versions of an object.")
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    if not bucket or not key:
        raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key")
    return bucket, key


async def copy_object(
    store: RedisStore, asked: tuple[str, str, Mapping[str, str]], attempts: int = 3
) -> StoredAnswer:
    """CopyObject with both ends in this store: the bytes copied by Redis, never through here."""
    bucket, key, headers = asked
    source = copy_source(headers["x-amz-copy-source"])
    meta = await store.meta(*source)
    if meta is None:
        await _missing(store, *source)
    assert meta is not None
    if precondition(headers, meta["etag"], meta["mtime"], prefix="x-amz-copy-source-"):
        raise store_error("PreconditionFailed", Condition="x-amz-copy-source-If-Match")
    replace = headers.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE"
    if source == (bucket, key) and not replace:
        raise S3Error(
            "InvalidRequest",
            "This copy request is illegal because it is trying to copy an object to itself "
            "without changing the object's metadata, storage class, website redirect location "
            "or encryption attributes.",
        )
    copied = dict(meta, mtime=round(time.time(), 3))
    if replace:
        copied["headers"] = kept_headers(headers)
    result = await store.copy(source, (bucket, key), copied, meta["etag"])
    if result == "Changed" and attempts > 1:
        return await copy_object(store, asked, attempts - 1)
    refuse("NoSuchKey" if result == "Changed" else result, bucket, key)
    document = (
        '<CopyObjectResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        + element("LastModified", iso_time(copied["mtime"]))
        + element("ETag", f'"{meta["etag"]}"')
        + "".join(
            element(f"Checksum{algorithm_for_header(name)}", value)
            for name, value in meta["checksums"].items()
        )
        + "</CopyObjectResult>"
    )
    return xml(document)
