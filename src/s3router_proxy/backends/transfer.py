"""Bytes between two backends, streamed: the source read, the destination written.

A cross-backend copy reads the source with GETs (`source_get`) and writes the destination with
a PUT or UploadParts whose Content-Length is known in advance (`put_stream`), each body
streamed through a bounded buffer (`Feed`): memory does not grow with the object. A body that
ends early or breaks fails its write before the last byte, so the destination never stores a
short object or part. Large objects go as a multipart upload (`multipartcopy.py`), a copied part
of the client's upload as an UploadPart (`partcopy.py`).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

from multidict import CIMultiDict, CIMultiDictProxy

from ..auth.canonical import canonical_query_string
from ..auth.sigv4 import EMPTY_SHA256, UNSIGNED_PAYLOAD
from ..http.client import UpstreamResponse
from ..s3.errors import ERRORS, S3Error
from .backend import Backend, BackendRequest
from .call import backend_response, unreachable

MAX_PART = 5 * 1024**3  # the largest PUT and the largest part S3 accepts
MAX_PARTS = 10_000
MAX_ANSWER = 64 * 1024  # a backend's answer to a write or an error: a small document
CONDITIONS = {
    "x-amz-copy-source-if-match": "if-match",
    "x-amz-copy-source-if-none-match": "if-none-match",
    "x-amz-copy-source-if-modified-since": "if-modified-since",
    "x-amz-copy-source-if-unmodified-since": "if-unmodified-since",
}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


@dataclass(frozen=True)
class StoredObject:
    """An object on a backend, at the backend's bucket and key; `version_id` None is the
    current version (and, for a destination, the version the write makes)."""

    backend: Backend
    bucket: str
    key: str
    version_id: str | None = None


def source_conditions(headers: Mapping[str, str]) -> dict[str, str]:
    """The `x-amz-copy-source-if-*` headers of a copy as the source GET's `If-*` headers."""
    return {plain: headers[name] for name, plain in CONDITIONS.items() if name in headers}


def now_iso8601() -> str:
    """The time as `LastModified` in copy results carries it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


# -- talking to backends --------------------------------------------------------------------------


def backend_failure(status: int, body: bytes, doing: str) -> S3Error:
    """The S3 error a client sees when a backend refused a step of a copy (`doing`).

    The backend's code is kept; its message is not, as it names the backend's buckets."""
    match = re.search(rb"<Code>([A-Za-z0-9.]{1,64})</Code>", body)
    code = match.group(1).decode() if match else ""
    if status in (304, 412):
        return S3Error(
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
            status=412,
        )
    if status == 503:
        return S3Error(code if code == "SlowDown" else "ServiceUnavailable", f"{doing}: busy.")
    if status >= 500 or status < 400:
        return S3Error("InternalError", f"{doing} failed with status {status}.")
    if not code:
        code = {403: "AccessDenied", 404: "NoSuchKey"}.get(status, "InvalidRequest")
    message = ERRORS.get(code, (status, code))[1]
    return S3Error(code, f"{message} ({doing})", status=status)


async def read_answer(response: UpstreamResponse) -> bytes:
    data = bytearray()
    while piece := await response.next_piece():
        data += piece
        if len(data) > MAX_ANSWER:
            break  # an answer, not an object: the start is all anyone needs
    return bytes(data[:MAX_ANSWER])


async def source_get(source: StoredObject, headers: Mapping[str, str]) -> UpstreamResponse:
    """An open GET of the copy source (status 200 or 206), or the S3 error S3 would answer."""
    version_id = source.version_id
    query = canonical_query_string([("versionId", version_id)] if version_id else [])
    request = BackendRequest("GET", source.bucket, source.key, query, headers, EMPTY_SHA256)
    try:
        response = await backend_response(source.backend, request)
    except (TimeoutError, OSError) as exc:
        raise unreachable(source.backend, exc) from None
    if response.status in (200, 206):
        return response
    try:
        answer = await read_answer(response)
    except (TimeoutError, OSError):
        answer = b""
    finally:
        response.release()
    if response.status == 416:  # a range starting past the end of the object
        size = re.search(rb"<ActualObjectSize>(\d+)</ActualObjectSize>", answer)
        raise invalid_range(int(size[1]) if size else None)
    raise backend_failure(response.status, answer, "reading the copy source")


Progress = Callable[[int], None]  # told the size of every piece handed to a write


class Feed:
    """Exactly `length` bytes of an open source response, as a request body.

    A read error or an early end is recorded in `failure` and raised, which drops the write's
    connection before its last byte. Bytes past `length` (the rest of an object whose first
    part this is) are left unread, for the caller to release. `progress`, if given, hears of
    every piece as it is handed on, so a long copy can be watched while it runs."""

    def __init__(
        self,
        response: UpstreamResponse,
        backend: Backend,
        length: int,
        progress: Progress | None = None,
    ) -> None:
        self.response = response
        self.backend = backend
        self.length = length
        self.progress = progress
        self.failure: S3Error | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        remaining = self.length
        while remaining:
            try:
                piece = await self.response.next_piece()
            except (TimeoutError, OSError) as exc:
                self.failure = unreachable(self.backend, exc)
                raise self.failure from None
            if not piece:
                self.failure = S3Error(
                    "ServiceUnavailable",
                    f"Backend {self.backend.name!r} ended the copy source early; please retry.",
                )
                raise self.failure
            if len(piece) > remaining:
                piece = piece[:remaining]
            remaining -= len(piece)
            if self.progress is not None:
                self.progress(len(piece))
            yield piece


async def put_stream(
    destination: StoredObject,
    query_items: list[tuple[str, str]],
    headers: Mapping[str, str],
    feed: Feed,
    doing: str,
) -> CIMultiDictProxy[str]:
    """PUT `feed` (an object or a part) to the destination; the answer's headers, or an
    S3Error."""
    backend = destination.backend
    request = BackendRequest(
        "PUT",
        destination.bucket,
        destination.key,
        canonical_query_string(query_items),
        {**headers, "content-length": str(feed.length)},
        UNSIGNED_PAYLOAD,
    )
    try:
        response = await backend_response(backend, request, feed.chunks() if feed.length else b"")
        try:
            answer = await read_answer(response)
        finally:
            response.release()
    except (TimeoutError, OSError) as exc:
        if feed.failure is not None:
            raise feed.failure from None
        raise unreachable(backend, exc) from None
    if response.status != 200:
        raise backend_failure(response.status, answer, doing)
    return CIMultiDictProxy(CIMultiDict(response.headers))


def check_range(response: UpstreamResponse, first: int, last: int) -> int:
    """The source object's size, once sure `response` holds exactly bytes `first`-`last`."""
    length = response.header_map.get("content-length", "")
    if response.status == 206:
        found = _CONTENT_RANGE.fullmatch(response.header_map.get("content-range", ""))
        if (
            found
            and (int(found[1]), int(found[2])) == (first, last)
            and length == str(last - first + 1)
        ):
            return int(found[3])
        if found and int(found[2]) < last:  # the object ends before the range does
            raise invalid_range(int(found[3]))
    elif response.status == 200 and first == 0 and length == str(last + 1):
        return last + 1  # the range is the whole object
    raise S3Error("InternalError", "The copy source did not answer with the range asked for.")


def invalid_range(size: int | None) -> S3Error:
    """S3's answer to an UploadPartCopy range that does not fit in its source."""
    return S3Error(
        "InvalidArgument",
        "Range specified is not valid for source object"
        + ("" if size is None else f" of size: {size}"),
    )
