"""The I/O half of `lakefs-s3-router migrate`: the stores as logical names see them.

`Stores` routes a logical bucket and key exactly as the proxy would (`rules.match_route`,
`bucketparts.routes_for_bucket`) and holds one `Backend` per store. Listings are the proxy's own
merged listing (`listing.merged_list`), read a 1000-key page at a time; copies are a
server-side CopyObject within one store and `multi.copyacross.copy_object_across` between two.
Transient failures (unreachable, 5xx, SlowDown) are tried again, twice, after a pause.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ..auth.sigv4 import EMPTY_SHA256
from ..backends.backend import Backend, BackendRequest
from ..backends.call import backend_exchange, backend_response, unreachable
from ..backends.transfer import Progress, StoredObject
from ..config.model import Config
from ..multi.copyacross import CopyResult, copy_object_across
from ..multi.listing import merged_list
from ..multi.partcursor import ListingSource
from ..multi.splitbucket import backend_error
from ..routing.bucketparts import Part, routes_for_bucket
from ..routing.facts import RequestFacts
from ..routing.names import decode_url_value, format_copy_source
from ..routing.rules import Route, match_route
from ..s3.errors import S3Error
from ..s3.xml import child_text, children, local_name, parse_xml
from .migratereport import CHECKSUM_ALGORITHMS, Location, ObjectInfo, plain_etag

T = TypeVar("T")
PAGE = 1000
RETRYABLE = frozenset({"ServiceUnavailable", "SlowDown", "InternalError", "RequestTimeout"})
_CODE = re.compile(r"<Code>([A-Za-z0-9.]{1,64})</Code>")


@dataclass
class Stores:
    """The config's routing and one `Backend` per configured store."""

    config: Config
    backends: dict[str, Backend]
    secret: bytes
    attempts: int = 3

    def source_parts(self, location: Location) -> list[Part]:
        return self._parts(location, "GET", "GetObject")

    def dest_parts(self, location: Location) -> list[Part]:
        return self._parts(location, "PUT", "PutObject")

    def _parts(self, location: Location, method: str, operation: str) -> list[Part]:
        config = self.config
        facts = RequestFacts(method, location.bucket, "", operation=operation)
        return routes_for_bucket(config.rules, config.default_target, facts, location.prefix)

    def source_route(self, bucket: str, key: str) -> Route:
        config = self.config
        facts = RequestFacts("GET", bucket, key, operation="GetObject")
        return match_route(config.rules, config.default_target, facts)

    def dest_route(self, bucket: str, key: str, size: int) -> Route:
        config = self.config
        headers = {"content-length": str(size)}
        facts = RequestFacts("PUT", bucket, key, operation="PutObject", headers=headers)
        return match_route(config.rules, config.default_target, facts)

    async def retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """`call()`, again after a pause when it fails with a transient S3 error."""
        for attempt in range(1, self.attempts + 1):
            try:
                return await call()
            except S3Error as error:
                if attempt == self.attempts or error_code(error) not in RETRYABLE:
                    raise
            await asyncio.sleep(0.25 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def close(self) -> None:
        for backend in self.backends.values():
            await backend.close()


def error_code(error: S3Error) -> str:
    """The S3 code of a failure; a backend's own code when a wrapper quoted its answer."""
    if error.code == "InternalError" and (found := _CODE.search(error.message or "")):
        return found.group(1)
    return error.code


# -- reading --------------------------------------------------------------------------------------


async def list_objects(
    stores: Stores, location: Location, parts: list[Part]
) -> AsyncGenerator[ObjectInfo, None]:
    """Every object under `location`, in key order, in logical names, a page at a time."""

    async def fetch(part: Part, query: list[tuple[str, str]]) -> bytes:
        status, _, body = await backend_exchange(
            stores.backends[part.backend], "GET", part.bucket, "", query
        )
        if status != 200:
            raise backend_error(status, body)
        return body

    token: str | None = None
    while True:
        query = {"prefix": location.prefix, "encoding-type": "url", "max-keys": str(PAGE)}
        if token is not None:
            query["continuation-token"] = token
        try:
            body = await stores.retrying(
                lambda query=query: merged_list(
                    "ListObjectsV2",
                    location.bucket,
                    query,
                    ListingSource(parts, fetch),
                    (stores.secret,),
                )
            )
        except S3Error as error:
            error.message = f"listing {location}: {error.message or error.code}"
            raise
        root = parse_xml(body)
        for item in children(root, "Contents"):
            yield ObjectInfo(
                decode_url_value(child_text(item, "Key") or ""),
                int(child_text(item, "Size") or 0),
                child_text(item, "ETag") or "",
            )
        token = child_text(root, "NextContinuationToken")
        if child_text(root, "IsTruncated") != "true" or not token:
            return


async def paired(
    sources: AsyncGenerator[ObjectInfo, None],
    dests: AsyncGenerator[ObjectInfo, None],
    source: Location,
    dest: Location,
) -> AsyncGenerator[tuple[ObjectInfo | None, ObjectInfo | None], None]:
    """Both listings walked together: (source, dest) per key, None on the side without it."""
    src = await anext(sources, None)
    dst = await anext(dests, None)
    while src is not None or dst is not None:
        s = None if src is None else src.key[len(source.prefix) :]
        d = None if dst is None else dst.key[len(dest.prefix) :]
        if d is None or (s is not None and s < d):
            yield src, None
            src = await anext(sources, None)
        elif s is None or d < s:
            yield None, dst
            dst = await anext(dests, None)
        else:
            yield src, dst
            src, dst = await anext(sources, None), await anext(dests, None)


async def head_object(backend: Backend, route: Route, logical_key: str) -> ObjectInfo | None:
    """HEAD with checksums (`x-amz-checksum-mode`); None when there is no such object."""
    status, answer, _ = await backend_exchange(
        backend, "HEAD", route.bucket, route.key, [], headers={"x-amz-checksum-mode": "ENABLED"}
    )
    if status == 404:
        return None
    if status != 200:
        code = {403: "AccessDenied", 503: "SlowDown"}.get(status, "InternalError")
        raise S3Error(code, f"HEAD answered {status}", status=status)
    checksums = {
        name: answer[f"x-amz-checksum-{name}"]
        for name in CHECKSUM_ALGORITHMS
        if f"x-amz-checksum-{name}" in answer
    }
    return ObjectInfo(
        logical_key,
        int(answer.get("Content-Length", "-1")),
        answer.get("ETag", ""),
        checksums,
        answer.get("x-amz-version-id"),
    )


async def object_sha256(backend: Backend, route: Route) -> str:
    """The SHA-256 of an object's bytes, read as a stream."""
    digest = hashlib.sha256()
    try:
        request = BackendRequest("GET", route.bucket, route.key, "", {}, EMPTY_SHA256)
        response = await backend_response(backend, request)
        try:
            if response.status != 200:
                raise backend_error(response.status, (await response.next_piece())[:4096])
            while piece := await response.next_piece():
                digest.update(piece)
        finally:
            response.release()
    except (TimeoutError, OSError) as exc:
        raise unreachable(backend, exc) from None
    return digest.hexdigest()


# -- copying --------------------------------------------------------------------------------------


async def copy_key(
    stores: Stores, source: Route, dest: Route, etag: str, progress: Progress | None = None
) -> CopyResult:
    """Copy one object: server-side within a store, streamed across stores. `progress(n)` hears
    of the bytes of a streamed copy as they go; a server-side copy reports nothing until done."""
    conditions = {"x-amz-copy-source-if-match": f'"{plain_etag(etag)}"'} if etag else {}
    if source.backend != dest.backend:
        return await copy_object_across(
            StoredObject(stores.backends[source.backend], source.bucket, source.key),
            StoredObject(stores.backends[dest.backend], dest.bucket, dest.key),
            conditions,
            progress=progress,
        )
    headers = {"x-amz-copy-source": format_copy_source(source.bucket, source.key), **conditions}
    status, _, body = await backend_exchange(
        stores.backends[dest.backend], "PUT", dest.bucket, dest.key, [], headers=headers
    )
    if status != 200:
        raise backend_error(status, body)
    root = parse_xml(body)  # a CopyObject can fail after its 200: the body says so
    if local_name(root) == "Error":
        raise backend_error(500, body)
    return CopyResult(child_text(root, "ETag") or "", child_text(root, "LastModified") or "")
