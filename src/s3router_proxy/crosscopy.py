"""CopyObject between two backends: the proxy streams a GET of the source into a PUT.

S3 copies server-side only within one store, so when a copy's source and destination route to
different backends the proxy reads the source and writes the destination itself, through a
bounded buffer, and answers the `CopyObjectResult` S3 would. Metadata follows
`x-amz-metadata-directive` (COPY: the source's content headers and user metadata; REPLACE: the
request's), conditional `x-amz-copy-source-if-*` headers become the source GET's `If-*`. If the
source stream breaks, the destination PUT is aborted before its last byte, so no partial
object is left behind.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from xml.sax.saxutils import escape

import aiohttp

from .backends import Backend
from .errors import S3Error
from .proxy import STREAM_CHUNK, _unreachable
from .routing import Route
from .s3request import S3Request
from .sigv4 import EMPTY_SHA256, UNSIGNED_PAYLOAD, canonical_query_string

MAX_SINGLE_PUT = 5 * 1024**3
_CONTENT_HEADERS = (
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
)
_CONDITIONS = {
    "x-amz-copy-source-if-match": "if-match",
    "x-amz-copy-source-if-none-match": "if-none-match",
    "x-amz-copy-source-if-modified-since": "if-modified-since",
    "x-amz-copy-source-if-unmodified-since": "if-unmodified-since",
}
# Request headers about the destination object that a copy carries over to the PUT.
_DESTINATION = (
    "x-amz-storage-class",
    "x-amz-acl",
    "x-amz-tagging",
    "x-amz-server-side-encryption",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
)


@dataclass(frozen=True)
class CopyResult:
    """What a finished copy wrote: the destination's ETag, when, and its version (if any)."""

    etag: str
    last_modified: str  # ISO 8601, as CopyObjectResult carries it
    version_id: str | None = None

    def xml(self) -> bytes:
        """The `CopyObjectResult` document S3 answers a CopyObject with."""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<CopyObjectResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<LastModified>{self.last_modified}</LastModified><ETag>{escape(self.etag)}</ETag>"
            "</CopyObjectResult>"
        ).encode()


async def copy_across(
    request: S3Request,
    source_route: Route,
    source_backend: Backend,
    version_id: str | None,
    route: Route,
    backend: Backend,
) -> bytes:
    """Copy the source object into the destination; the CopyObjectResult document."""
    result = await copy_object_across(
        source_backend,
        source_route.bucket,
        source_route.key,
        version_id,
        backend,
        route.bucket,
        route.key,
        request.headers,
    )
    return result.xml()


async def copy_object_across(
    source_backend: Backend,
    source_bucket: str,
    source_key: str,
    version_id: str | None,
    backend: Backend,
    bucket: str,
    key: str,
    headers: Mapping[str, str],
) -> CopyResult:
    """Stream one object from a backend to another (backend names on both sides).

    `headers` are a CopyObject request's (case-insensitive lookups): the metadata directive,
    the `x-amz-copy-source-if-*` conditions and the destination's headers. Raises S3Error
    with the code S3 would answer (PreconditionFailed, NoSuchKey, ...)."""
    get_headers = {
        standard: headers[copy_name]
        for copy_name, standard in _CONDITIONS.items()
        if copy_name in headers
    }
    query = canonical_query_string([("versionId", version_id)] if version_id else [])
    url, get_signed = source_backend.signed_request(
        "GET",
        source_bucket,
        source_key,
        query,
        get_headers,
        EMPTY_SHA256,
    )
    try:
        source = await source_backend.session.get(url, headers=get_signed, allow_redirects=False)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise _unreachable(source_backend, exc) from None
    try:
        if source.status in (304, 412):
            raise S3Error(
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold.",
                status=412,
            )
        if source.status == 404:
            raise S3Error("NoSuchKey", "The specified source key does not exist.")
        if source.status != 200:
            raise S3Error(
                "AccessDenied" if source.status == 403 else "InternalError",
                f"Reading the copy source failed with status {source.status}.",
                status=source.status if source.status < 500 else 500,
            )
        length = int(source.headers.get("Content-Length", "-1"))
        if length < 0 or length > MAX_SINGLE_PUT:
            raise S3Error(
                "NotImplemented", "Copies across backends above 5 GiB are not supported yet."
            )
        put_headers: dict[str, str] = {"content-length": str(length)}
        directive = headers.get("x-amz-metadata-directive", "COPY").upper()
        origin = headers if directive == "REPLACE" else source.headers
        for name, value in origin.items():
            lower = name.lower()
            if lower in _CONTENT_HEADERS or lower.startswith("x-amz-meta-"):
                put_headers[lower] = value
        for name in _DESTINATION:
            if name in headers:
                put_headers[name] = headers[name]
        url, put_signed = backend.signed_request(
            "PUT", bucket, key, "", put_headers, UNSIGNED_PAYLOAD
        )

        async def body() -> AsyncIterator[bytes]:
            sent = 0
            async for piece in source.content.iter_chunked(STREAM_CHUNK):
                sent += len(piece)
                yield piece
            if sent != length:
                raise S3Error("InternalError", "The copy source ended early.")

        try:
            async with backend.session.put(url, headers=put_signed, data=body()) as put:
                answer = await put.content.read(64 * 1024)  # an answer, not an object: bounded
                if put.status != 200:
                    raise S3Error(
                        "InternalError",
                        f"Writing the copy failed with status {put.status}: {answer[:200]!r}",
                        status=put.status if put.status >= 500 else 500,
                    )
                etag = put.headers.get("ETag", "")
                put_version = put.headers.get("x-amz-version-id")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _unreachable(backend, exc) from None
    finally:
        source.release()
    modified = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return CopyResult(etag, modified, put_version)
