"""CopyObject and UploadPartCopy between two backends: the proxy reads and writes the bytes.

S3 copies server-side only within one store, so when a copy's source and destination route to
different backends the proxy streams a GET of the source into a PUT on the destination (a
multipart upload above the destination's `multipart_copy_threshold`: see
backends/multipartcopy.py) and
answers what S3 would. Metadata follows `x-amz-metadata-directive` (COPY: the source's content
headers and user metadata; REPLACE: the request's), tags follow `x-amz-tagging-directive`
(COPY: the source's tag set; REPLACE: the request's `x-amz-tagging`), the conditional
`x-amz-copy-source-if-*` headers become the source GET's `If-*`, and a failed copy leaves no
object behind.

A long copy is answered the way S3 answers one: 200 and the XML declaration at once, a space
every few seconds so clients and load balancers do not time out, then the result document, or
an `<Error>` document if the copy failed after all (SDKs read both).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote
from xml.sax.saxutils import escape

from multidict import CIMultiDict

from ..backends.backend import Backend
from ..backends.call import backend_exchange
from ..backends.multipartcopy import SourceObject, copy_multipart
from ..backends.partcopy import PartCopyResult, copy_part_across
from ..backends.transfer import (
    MAX_PART,
    Feed,
    Progress,
    StoredObject,
    backend_failure,
    now_iso8601,
    put_stream,
    source_conditions,
    source_get,
)
from ..http.messages import Request, Response, StreamResponse
from ..routing.rules import Route
from ..s3.errors import S3Error, error_xml
from ..s3.request import CONTENT_HEADERS, S3Request
from ..s3.xml import child_text, children, parse_xml
from ..telemetry.accessrecord import RequestRecord

log = logging.getLogger("s3router_proxy.crosscopy")

MAX_SINGLE_PUT = MAX_PART
KEEPALIVE_SECONDS = 5.0  # a copy still running after this is answered with 200 and spaces
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
# Request headers about the destination object that a copy carries over to the write.
_DESTINATION = (
    "x-amz-storage-class",
    "x-amz-acl",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-context",
    "x-amz-server-side-encryption-bucket-key-enabled",
    "x-amz-website-redirect-location",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
)


@dataclass(frozen=True)
class CopyResult:
    """What a finished copy wrote: the destination's ETag, when, and the versions involved."""

    etag: str
    last_modified: str  # ISO 8601, as CopyObjectResult carries it
    version_id: str | None = None  # the destination object's version, if the bucket has them
    source_version_id: str | None = None  # the source version that was copied

    def xml(self) -> bytes:
        """The `CopyObjectResult` document S3 answers a CopyObject with."""
        return (
            _XML_DECLARATION.decode()
            + '<CopyObjectResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<LastModified>{self.last_modified}</LastModified><ETag>{escape(self.etag)}</ETag>"
            "</CopyObjectResult>"
        ).encode()

    def headers(self) -> dict[str, str]:
        """The response headers S3 adds to a CopyObject answer."""
        headers = {}
        if self.version_id:
            headers["x-amz-version-id"] = self.version_id
        if self.source_version_id:
            headers["x-amz-copy-source-version-id"] = self.source_version_id
        return headers


def _directive(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name, "COPY").upper()
    if value not in ("COPY", "REPLACE"):
        raise S3Error(
            "InvalidArgument",
            f"Unknown {name.removeprefix('x-amz-').replace('-', ' ')}.",
            details={"ArgumentName": name, "ArgumentValue": headers[name]},
        )
    return value


async def source_tagging(source: StoredObject) -> str | None:
    """The source object's tag set as an `x-amz-tagging` value (None: no tags)."""
    version_id = source.version_id
    query = [("tagging", "")] + ([("versionId", version_id)] if version_id else [])
    status, _, body = await backend_exchange(
        source.backend, "GET", source.bucket, source.key, query
    )
    if status in (405, 501) or (status == 400 and b"<Code>NotImplemented</Code>" in body):
        return None  # a store without object tags (lakeFS, for one) has none to copy
    if status != 200:
        raise backend_failure(status, body, "reading the copy source's tags")
    tag_set = children(parse_xml(body), "TagSet")
    tags = [
        (child_text(tag, "Key") or "", child_text(tag, "Value") or "")
        for tag in (children(tag_set[0], "Tag") if tag_set else [])
    ]
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in tags) or None


async def copy_object_across(
    source: StoredObject,
    destination: StoredObject,
    headers: Mapping[str, str],
    *,
    multipart_threshold: int | None = None,
    part_size: int | None = None,
    progress: Progress | None = None,
) -> CopyResult:
    """Stream one object from a backend to another (backend names on both sides; the
    destination's version is the one the write makes).

    `headers` are a CopyObject request's (case-insensitive lookups): the metadata and tagging
    directives, the `x-amz-copy-source-if-*` conditions and the destination's headers. Objects
    above `multipart_threshold` (default: the destination's `multipart_copy_threshold`) are
    written as a multipart upload of `part_size` parts. `progress(n)` hears of the bytes as
    they are written. Raises S3Error with the code S3 would
    answer (PreconditionFailed, NoSuchKey, ...)."""
    headers = CIMultiDict(headers)
    metadata = _directive(headers, "x-amz-metadata-directive")
    tagging = _directive(headers, "x-amz-tagging-directive")
    backend = destination.backend
    threshold = min(
        MAX_SINGLE_PUT,
        backend.config.multipart_copy_threshold
        if multipart_threshold is None
        else multipart_threshold,
    )
    response = await source_get(source, source_conditions(headers))
    try:
        if response.status != 200:
            raise S3Error("InternalError", "The copy source answered a partial object.")
        length = int(response.header_map.get("content-length", "-1"))
        if length < 0:
            raise S3Error("NotImplemented", "The copy source did not tell its length.")
        copied_version = response.header_map.get("x-amz-version-id")
        # Tags and parts come from the version the first GET found.
        found = dataclasses.replace(source, version_id=source.version_id or copied_version)
        write_headers: dict[str, str] = {}
        origin = headers.items() if metadata == "REPLACE" else response.headers
        for name, value in origin:
            lower = name.lower()
            if lower in CONTENT_HEADERS or lower.startswith("x-amz-meta-"):
                write_headers[lower] = value
        for name in _DESTINATION:
            if name in headers:
                write_headers[name] = headers[name]
        if tagging == "REPLACE":
            tags = headers.get("x-amz-tagging")
        elif response.header_map.get("x-amz-tagging-count", "0") != "0":
            # S3 (and MinIO, Ceph, moto) count an object's tags on GET and say nothing when
            # there are none: only tagged sources cost a GetObjectTagging.
            tags = await source_tagging(found)
        else:
            tags = None
        if tags:
            write_headers["x-amz-tagging"] = tags
        if length > threshold:
            etag, put_version = await copy_multipart(
                SourceObject(found, response, length),
                destination,
                write_headers,
                backend.config.copy_part_size if part_size is None else part_size,
                progress,
            )
        else:
            answer = await put_stream(
                destination,
                [],
                write_headers,
                Feed(response, source.backend, length, progress),
                "writing the copy",
            )
            etag, put_version = answer.get("ETag", ""), answer.get("x-amz-version-id")
    finally:
        response.release()
    return CopyResult(etag, now_iso8601(), put_version, copied_version)


class CopyDestination(Protocol):
    """What `answer_copy_across` reads of a copy on its way: the front server's request, the S3
    request, its access-log record, and the route and backend it writes to (for UploadPartCopy
    the upload's pinned route, with the backend's own upload id already in the query). The
    handler's per-request `Exchange` is one."""

    @property
    def http(self) -> Request: ...
    @property
    def request(self) -> S3Request: ...
    @property
    def record(self) -> RequestRecord: ...
    @property
    def route(self) -> Route: ...
    @property
    def backend(self) -> Backend: ...


async def answer_copy_across(
    exchange: CopyDestination,
    source: StoredObject,
    *,
    then: Callable[[Awaitable[Any]], Awaitable[Any]] | None = None,
) -> Response:
    """Answer a CopyObject or UploadPartCopy whose source is on another backend.

    `then(copy)` wraps the copy in what must follow it before the client's answer (the
    mirrors' copies)."""
    request, route = exchange.request, exchange.route
    destination = StoredObject(exchange.backend, route.bucket, route.key)
    work: Awaitable[CopyResult | PartCopyResult]
    if request.operation == "UploadPartCopy":
        upload_id = dict(request.query_items).get("uploadId", "")
        number = request.query.get("partNumber")
        work = copy_part_across(source, destination, upload_id, number, request.headers)
    else:
        work = copy_object_across(source, destination, request.headers)
    if then is not None:
        work = then(work)
    return await answer_copy(exchange.http, exchange.record, work)


async def answer_copy(
    http_request: Request,
    record: RequestRecord,
    work: Awaitable[CopyResult | PartCopyResult],
    *,
    keepalive: float = KEEPALIVE_SECONDS,
) -> Response:
    """The answer to a copy the proxy does itself: its result, or the S3Error it raised.

    A copy still running after `keepalive` seconds is answered as S3 answers one: 200 at once,
    then a space every `keepalive` seconds, then the result or an `<Error>` document."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=keepalive)
        if not done:
            return await _answer_while_copying(http_request, record, task, keepalive)
        result = task.result()  # an S3Error here is answered as the error it is
        record.status = 200
        return Response(
            body=result.xml(),
            content_type="application/xml",
            headers={"x-amz-request-id": record.request_id, **result.headers()},
        )
    finally:
        if not task.done():  # the client left, or the server is stopping: abort the copy
            task.cancel()


async def _answer_while_copying(
    http_request: Request,
    record: RequestRecord,
    task: asyncio.Future[CopyResult | PartCopyResult],
    keepalive: float,
) -> Response:
    """200 now, whitespace while the copy runs, then its result or an `<Error>` document."""
    response = StreamResponse(
        status=200,
        headers={"Content-Type": "application/xml", "x-amz-request-id": record.request_id},
    )
    response.enable_chunked_encoding()
    record.status = 200
    try:
        await response.prepare(http_request)
        await response.write(_XML_DECLARATION)
        while not task.done():
            done, _ = await asyncio.wait({task}, timeout=keepalive)
            if not done:
                await response.write(b" ")
    except ConnectionError:
        record.error_code = "ClientDisconnected"
        return response
    try:
        document = task.result().xml()
    except S3Error as error:
        document = _error_document(http_request, record, error)
    except Exception:
        log.exception("request %s: copy failed", record.request_id)
        document = _error_document(http_request, record, S3Error("InternalError"))
    try:
        await response.write(document.removeprefix(_XML_DECLARATION))
        await response.write_eof()
    except ConnectionError:
        record.error_code = "ClientDisconnected"
    return response


def _error_document(http_request: Request, record: RequestRecord, error: S3Error) -> bytes:
    record.error_code = error.code
    body = error_xml(
        error, resource=http_request.raw_path.partition("?")[0], request_id=record.request_id
    )
    return body.split(b"?>", 1)[1].lstrip() if body.startswith(b"<?xml") else body
