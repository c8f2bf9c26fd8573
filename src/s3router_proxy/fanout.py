"""Requests one logical bucket answers from several backends: merged listings, split deletes.

When key rules split a bucket over backends (or map its names), the proxy cannot pass such a
request through: it asks each part itself (`proxy.backend_call`, signed per backend) and
builds the one answer S3 would give, in the client's names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence

from aiohttp import StreamReader
from lxml import etree

from .errors import S3Error
from .listing import merged_list
from .mapping import (
    MAX_DELETE_OBJECTS_BYTES,
    S3_NS,
    NameMapping,
    body_integrity_headers,
    group_delete_objects,
    local_name,
    merge_delete_results,
    parse_xml,
    serialize_xml,
)
from .payload import BodyOutcome, PayloadPlan, upstream_body
from .proxy import backend_call
from .routing import Part, Route, visible_buckets
from .s3request import S3Request

log = logging.getLogger("s3router_proxy.fanout")
MERGED_LISTINGS = frozenset({"ListObjects", "ListObjectsV2", "ListObjectVersions"})


def _backend_error(status: int, body: bytes) -> S3Error:
    code, message = "InternalError", None
    try:
        root = parse_xml(body)
        if local_name(root) == "Error":
            code = root.findtext("Code") or root.findtext("{*}Code") or code
            message = root.findtext("Message") or root.findtext("{*}Message")
    except S3Error:
        pass
    return S3Error(code, message, status=status)


async def merged_listing(
    request: S3Request, parts: Sequence[Part], backends: dict, secret: bytes
) -> bytes:
    """The client's listing of a split or mapped bucket, from every part."""

    async def fetch(part: Part, query: list[tuple[str, str]]) -> bytes:
        status, body = await backend_call(backends[part.backend], "GET", part.bucket, "", query)
        if status != 200:
            raise _backend_error(status, body)
        return body

    return await merged_list(request.operation, request.bucket, request.query, parts, fetch, secret)


async def read_small_body(content: StreamReader, plan: PayloadPlan, limit: int) -> bytes:
    """A small request body (XML), read whole and verified against the client's promises."""
    outcome = BodyOutcome()
    data = bytearray()
    try:
        async for piece in upstream_body(content, plan, outcome):
            data += piece
            if len(data) > limit:
                raise S3Error("MalformedXML", "The request body is larger than S3 accepts here.")
    except Exception:
        if outcome.failure is not None:
            raise outcome.failure from None
        raise
    return bytes(data)


async def split_delete_objects(
    request: S3Request,
    content: StreamReader,
    plan: PayloadPlan,
    route_key: object,
    backends: dict,
) -> bytes:
    """DeleteObjects whose keys route to several places: one request per place, one answer.

    `route_key(key) -> Route` routes one client key as DeleteObject would.
    """
    body = await read_small_body(content, plan, MAX_DELETE_OBJECTS_BYTES)
    routes: dict[Hashable, Route] = {}

    def target(key: str) -> tuple[Hashable, str]:
        route: Route = route_key(key)  # type: ignore[operator]
        group = (route.backend, route.bucket, route.names)
        routes[group] = route
        return group, route.key

    groups = group_delete_objects(body, target)
    results: list[tuple[bytes, NameMapping]] = []
    for group, group_body in groups.items():
        route = routes[group]
        headers = {"content-type": "application/xml"}
        headers.update(body_integrity_headers(group_body, {"content-md5": ""}))
        status, answer = await backend_call(
            backends[route.backend],
            "POST",
            route.bucket,
            "",
            [("delete", "")],
            body=group_body,
            headers=headers,
        )
        if status != 200:
            raise _backend_error(status, answer)
        results.append((answer, route.names))
    return merge_delete_results(results)


async def list_buckets(
    state_backends: dict,
    rules: Sequence,
    default_target: str | None,
    visible: Callable[[str], bool] = lambda _bucket: True,
) -> bytes:
    """ListBuckets: the client's bucket names across every backend, without duplicates."""
    held: dict[str, list[str]] = {}
    dates: dict[str, str] = {}
    for name, backend in state_backends.items():
        if backend.credentials.current is None:
            continue  # a backend without credentials cannot be asked; it shows nothing
        try:
            status, body = await backend_call(backend, "GET", "", "", [])
        except S3Error as error:
            if error.code != "ServiceUnavailable":
                raise
            # One store being down should not hide every other store's buckets.
            log.warning("ListBuckets: backend %s is unreachable; its buckets are left out", name)
            continue
        if status != 200:
            raise _backend_error(status, body)
        root = parse_xml(body)
        names = []
        for bucket in root.iter("{*}Bucket", "Bucket"):
            bucket_name = bucket.findtext("{*}Name") or bucket.findtext("Name") or ""
            names.append(bucket_name)
            created = bucket.findtext("{*}CreationDate") or bucket.findtext("CreationDate")
            if created:
                dates.setdefault(bucket_name, created)
        held[name] = names
    names = [b for b in visible_buckets(rules, default_target, held) if visible(b)]
    out = etree.Element(f"{{{S3_NS}}}ListAllMyBucketsResult", nsmap={None: S3_NS})
    owner = etree.SubElement(out, f"{{{S3_NS}}}Owner")
    etree.SubElement(owner, f"{{{S3_NS}}}ID").text = "s3router"
    etree.SubElement(owner, f"{{{S3_NS}}}DisplayName").text = "s3router"
    buckets = etree.SubElement(out, f"{{{S3_NS}}}Buckets")
    for bucket_name in names:
        element = etree.SubElement(buckets, f"{{{S3_NS}}}Bucket")
        etree.SubElement(element, f"{{{S3_NS}}}Name").text = bucket_name
        etree.SubElement(element, f"{{{S3_NS}}}CreationDate").text = dates.get(
            bucket_name, "2000-01-01T00:00:00.000Z"
        )
    return serialize_xml(out)


async def bucket_on_every_part(
    method: str, parts: Sequence[Part], backends: dict, query: list[tuple[str, str]]
) -> int:
    """CreateBucket / DeleteBucket / HeadBucket of a split bucket, applied to each part's
    backend bucket once. Returns the status to answer; the first failure is raised as S3 would
    answer it, with the buckets done before it left as they are (named in the message)."""
    done: list[str] = []
    seen: set[tuple[str, str]] = set()
    for part in parts:
        if (part.backend, part.bucket) in seen:
            continue
        seen.add((part.backend, part.bucket))
        status, body = await backend_call(backends[part.backend], method, part.bucket, "", query)
        if method == "PUT" and status == 409:
            continue  # already there (owned by the proxy's credentials): nothing to create
        if status >= 300:
            if method == "HEAD":
                raise S3Error("NoSuchBucket" if status == 404 else "AccessDenied", status=status)
            error = _backend_error(status, body)
            if done:
                error.message += f" (already done on: {', '.join(done)})"
            raise error
        done.append(f"{part.backend}:{part.bucket}")
    return 204 if method == "DELETE" else 200
