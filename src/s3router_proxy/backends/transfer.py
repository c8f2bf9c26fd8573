"""Bytes between two backends, streamed: source reads, destination writes, multipart copies.

A cross-backend copy reads the source with GETs and writes the destination with a PUT or
UploadParts whose Content-Length is known in advance, each body streamed through a bounded
buffer (`Feed`): memory does not grow with the object. A body that ends early or breaks fails
its write before the last byte, so the destination never stores a short object or part.

Objects above the destination's `multipart_copy_threshold` become a multipart upload of
`copy_part_size` parts, a few streamed at once. The first GET feeds part 1; the other parts are
ranged GETs pinned to what that GET found: its version id, if the source has versions (the copy
is then of that version, whatever happens to the key meanwhile), and its ETag (`If-Match`), so
a concurrent overwrite of an unversioned source fails the copy instead of mixing two objects.
Any failure aborts the upload: no partial object and no orphaned parts. The result's ETag is
the destination's multipart ETag (`"…-N"`), as with a multipart copy inside S3 itself.

UploadPartCopy across backends streams the source (or its `x-amz-copy-source-range`) into an
UploadPart of the client's upload, which lives on the destination.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from xml.sax.saxutils import escape

from multidict import CIMultiDict, CIMultiDictProxy

from ..auth.canonical import canonical_query_string
from ..auth.sigv4 import EMPTY_SHA256, UNSIGNED_PAYLOAD
from ..http.client import UpstreamResponse
from ..s3.errors import ERRORS, S3Error
from ..s3.xml import child_text, local_name, parse_xml
from .backend import Backend
from .forward import _unreachable, backend_exchange, backend_response

log = logging.getLogger("s3router_proxy.crosspart")

MAX_PART = 5 * 1024**3  # the largest PUT and the largest part S3 accepts
MAX_PARTS = 10_000
PART_CONCURRENCY = 4  # parts of one copy in flight at once
ABORT_RETRY_DELAYS = (0.0, 0.2, 1.0, 3.0)  # seconds before each try
MAX_ANSWER = 64 * 1024  # a backend's answer to a write or an error: a small document
CONDITIONS = {
    "x-amz-copy-source-if-match": "if-match",
    "x-amz-copy-source-if-none-match": "if-none-match",
    "x-amz-copy-source-if-modified-since": "if-modified-since",
    "x-amz-copy-source-if-unmodified-since": "if-unmodified-since",
}
_RANGE = re.compile(r"bytes=(\d+)-(\d+)")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
_RANGE_FORM = (
    "The x-amz-copy-source-range value must be of the form bytes=first-last where first and "
    "last are the zero-based offsets of the first and last bytes to copy"
)
_aborts: set[asyncio.Task[None]] = set()  # aborts outlive a cancelled copy


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


async def _read_answer(response: UpstreamResponse) -> bytes:
    data = bytearray()
    while piece := await response.next_piece():
        data += piece
        if len(data) > MAX_ANSWER:
            break  # an answer, not an object: the start is all anyone needs
    return bytes(data[:MAX_ANSWER])


async def source_get(
    backend: Backend,
    bucket: str,
    key: str,
    version_id: str | None,
    headers: Mapping[str, str],
) -> UpstreamResponse:
    """An open GET of the copy source (status 200 or 206), or the S3 error S3 would answer."""
    query = canonical_query_string([("versionId", version_id)] if version_id else [])
    try:
        response = await backend_response(backend, "GET", bucket, key, query, headers, EMPTY_SHA256)
    except (TimeoutError, OSError) as exc:
        raise _unreachable(backend, exc) from None
    if response.status in (200, 206):
        return response
    try:
        answer = await _read_answer(response)
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
                self.failure = _unreachable(self.backend, exc)
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
    backend: Backend,
    bucket: str,
    key: str,
    query_items: list[tuple[str, str]],
    headers: Mapping[str, str],
    feed: Feed,
    doing: str,
) -> CIMultiDictProxy[str]:
    """PUT `feed` (an object or a part) to the backend; the answer's headers, or an S3Error."""
    signed = {**headers, "content-length": str(feed.length)}
    try:
        response = await backend_response(
            backend,
            "PUT",
            bucket,
            key,
            canonical_query_string(query_items),
            signed,
            UNSIGNED_PAYLOAD,
            feed.chunks() if feed.length else b"",
        )
        try:
            answer = await _read_answer(response)
        finally:
            response.release()
    except (TimeoutError, OSError) as exc:
        if feed.failure is not None:
            raise feed.failure from None
        raise _unreachable(backend, exc) from None
    if response.status != 200:
        raise backend_failure(response.status, answer, doing)
    return CIMultiDictProxy(CIMultiDict(response.headers))


# -- multipart CopyObject -------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceObject:
    """The copy source as its first GET found it; `response` is that GET, still unread."""

    backend: Backend
    bucket: str
    key: str
    version_id: str | None  # the version that GET returned (None: unversioned)
    response: UpstreamResponse
    length: int

    @property
    def etag(self) -> str | None:
        return self.response.header_map.get("etag")


def part_layout(length: int, part_size: int) -> tuple[int, int]:
    """(part size, part count) for an object: parts grow if 10,000 would not hold it."""
    size = max(part_size, -(-length // MAX_PARTS))
    return size, max(1, -(-length // size))


async def copy_multipart(
    source: SourceObject,
    backend: Backend,
    bucket: str,
    key: str,
    headers: Mapping[str, str],
    part_size: int,
    progress: Progress | None = None,
) -> tuple[str, str | None]:
    """Write the source as a multipart upload on `backend`: (ETag, version id or None).

    `headers` go on CreateMultipartUpload (metadata, content headers, tagging, ...)."""
    status, _, answer = await backend_exchange(
        backend, "POST", bucket, key, [("uploads", "")], headers=headers
    )
    if status != 200:
        raise backend_failure(status, answer, "starting the multipart copy")
    upload_id = child_text(parse_xml(answer), "UploadId")
    if not upload_id:
        raise S3Error("InternalError", "The destination did not return an upload id.")
    try:
        etags = await _copy_parts(source, backend, bucket, key, upload_id, part_size, progress)
        document = "".join(
            f"<Part><PartNumber>{number}</PartNumber><ETag>{escape(etag)}</ETag></Part>"
            for number, etag in sorted(etags.items())
        )
        status, answer_headers, answer = await backend_exchange(
            backend,
            "POST",
            bucket,
            key,
            [("uploadId", upload_id)],
            body=f"<CompleteMultipartUpload>{document}</CompleteMultipartUpload>".encode(),
        )
        root = parse_xml(answer) if status == 200 else None
        if root is None or local_name(root) == "Error":  # a 200 can still carry an error
            raise backend_failure(
                500 if status == 200 else status, answer, "completing the multipart copy"
            )
        return child_text(root, "ETag") or "", answer_headers.get("x-amz-version-id")
    except BaseException:
        abort = asyncio.create_task(_abort(backend, bucket, key, upload_id))
        _aborts.add(abort)
        abort.add_done_callback(_aborts.discard)
        await asyncio.shield(abort)
        raise


async def _copy_parts(
    source: SourceObject,
    backend: Backend,
    bucket: str,
    key: str,
    upload_id: str,
    part_size: int,
    progress: Progress | None = None,
) -> dict[int, str]:
    """Every part copied: part number → ETag. A failed part cancels the others."""
    size, count = part_layout(source.length, part_size)
    pin = {"if-match": source.etag} if source.etag else {}
    numbers = iter(range(1, count + 1))
    etags: dict[int, str] = {}

    async def copy_one(number: int) -> None:
        first = (number - 1) * size
        length = min(size, source.length - first)
        if number == 1:  # the GET that found the source starts with part 1
            response = source.response
        else:
            response = await source_get(
                source.backend,
                source.bucket,
                source.key,
                source.version_id,
                {**pin, "range": f"bytes={first}-{first + length - 1}"},
            )
        try:
            if number != 1:
                check_range(response, first, first + length - 1)
            answer = await put_stream(
                backend,
                bucket,
                key,
                [("partNumber", str(number)), ("uploadId", upload_id)],
                {},
                Feed(response, source.backend, length, progress),
                "writing a part of the copy",
            )
            etags[number] = answer.get("ETag", "")
        finally:
            response.release()

    async def worker() -> None:
        for number in numbers:  # shared: each worker takes the next part number
            await copy_one(number)

    workers = [asyncio.create_task(worker()) for _ in range(min(PART_CONCURRENCY, count))]
    try:
        await asyncio.gather(*workers)
    except BaseException as exc:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if isinstance(exc, S3Error) and exc.code == "PreconditionFailed":
            raise S3Error(
                "OperationAborted",
                "The copy source changed while it was being copied; please retry.",
                status=409,
            ) from None
        raise
    finally:
        source.response.release()
    return etags


async def _abort(backend: Backend, bucket: str, key: str, upload_id: str) -> None:
    """Abort the upload of a failed copy. A part still being written when it fails can make
    the store refuse the abort (S3 documents this race): it is asked again, briefly."""
    status = 0
    for delay in ABORT_RETRY_DELAYS:
        await asyncio.sleep(delay)
        try:
            status, _, _ = await backend_exchange(
                backend, "DELETE", bucket, key, [("uploadId", upload_id)]
            )
        except S3Error:
            status = 0
        if status in (200, 204, 404):  # 404: NoSuchUpload, gone already
            return
    log.warning(
        "backend %s: a failed copy's multipart upload could not be aborted (status %s); "
        "its parts stay until the bucket's lifecycle rules remove them",
        backend.name,
        status,
    )


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


# -- UploadPartCopy -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartCopyResult:
    """What an UploadPartCopy across backends wrote."""

    etag: str
    last_modified: str
    source_version_id: str | None = None

    def xml(self) -> bytes:
        """The `CopyPartResult` document S3 answers an UploadPartCopy with."""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<CopyPartResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<LastModified>{self.last_modified}</LastModified><ETag>{escape(self.etag)}</ETag>"
            "</CopyPartResult>"
        ).encode()

    def headers(self) -> dict[str, str]:
        if self.source_version_id:
            return {"x-amz-copy-source-version-id": self.source_version_id}
        return {}


def copy_source_range(value: str | None) -> tuple[int, int] | None:
    """`x-amz-copy-source-range: bytes=first-last` as (first, last), or InvalidArgument."""
    if value is None:
        return None
    found = _RANGE.fullmatch(value.strip())
    if found is None or int(found[1]) > int(found[2]):
        raise S3Error(
            "InvalidArgument",
            _RANGE_FORM,
            details={"ArgumentName": "x-amz-copy-source-range", "ArgumentValue": value},
        )
    return int(found[1]), int(found[2])


def part_number(value: str | None) -> int:
    """A `partNumber` S3 accepts (1 to 10,000), or InvalidArgument."""
    if value is None or not value.isdigit() or not 1 <= int(value) <= MAX_PARTS:
        raise S3Error(
            "InvalidArgument",
            "Part number must be an integer between 1 and 10000, inclusive",
            details={"ArgumentName": "partNumber", "ArgumentValue": value or ""},
        )
    return int(value)


async def copy_part_across(
    source_backend: Backend,
    source_bucket: str,
    source_key: str,
    version_id: str | None,
    backend: Backend,
    bucket: str,
    key: str,
    upload_id: str,
    number: str | None,
    headers: Mapping[str, str],
) -> PartCopyResult:
    """UploadPartCopy with its source on another backend: part `number` of `upload_id` (the
    destination backend's own id) streamed from the source or its copy-source range."""
    number_value = part_number(number)
    wanted = copy_source_range(headers.get("x-amz-copy-source-range"))
    get_headers = source_conditions(headers)
    if wanted is not None:
        get_headers["range"] = f"bytes={wanted[0]}-{wanted[1]}"
    response = await source_get(source_backend, source_bucket, source_key, version_id, get_headers)
    try:
        if wanted is not None:
            check_range(response, *wanted)
            length = wanted[1] - wanted[0] + 1
        else:
            length = int(response.header_map.get("content-length", "-1"))
            if response.status != 200 or length < 0:
                raise S3Error("InternalError", "The copy source has no length.")
        if length > MAX_PART:
            raise S3Error(
                "InvalidRequest",
                "The specified copy source is larger than the maximum allowable size for a "
                f"copy source: {MAX_PART}",
            )
        answer = await put_stream(
            backend,
            bucket,
            key,
            [("partNumber", str(number_value)), ("uploadId", upload_id)],
            {},
            Feed(response, source_backend, length),
            "writing the part",
        )
    finally:
        response.release()
    return PartCopyResult(
        answer.get("ETag", ""), now_iso8601(), response.header_map.get("x-amz-version-id")
    )
