"""Requests one logical bucket answers from several backends: merged listings, split deletes.

When key rules split a bucket over backends (or map its names), the proxy cannot pass such a
request through: it asks each part itself (`backend_exchange`, signed per backend) and
builds the one answer S3 would give, in the client's names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from lxml import etree

from ..backends.backend import Backend
from ..backends.call import backend_exchange
from ..body.payload import BodyOutcome, PayloadPlan, upstream_body
from ..http.messages import Body
from ..routing.bucketparts import Part, visible_buckets
from ..routing.names import NameMapping
from ..routing.rules import Route, route_on
from ..s3.checksums import body_integrity_headers
from ..s3.deleteobjects import (
    delete_objects_keys,
    group_delete_objects,
    merge_delete_results,
    rewrite_delete_objects,
)
from ..s3.errors import S3Error
from ..s3.request import S3Request
from ..s3.xml import S3_NS, child_text, local_name, parse_xml, serialize_xml
from .journal import Divergence, record_divergence
from .listing import merged_list
from .partcursor import ListingSource

log = logging.getLogger("s3router_proxy.fanout")


def backend_error(status: int, body: bytes) -> S3Error:
    """A backend's error answer as the S3Error it carries (its code and message)."""
    code, message = "InternalError", None
    try:
        root = parse_xml(body)
        if local_name(root) == "Error":
            code = root.findtext("Code") or root.findtext("{*}Code") or code
            message = root.findtext("Message") or root.findtext("{*}Message")
    except S3Error:
        pass
    return S3Error(code, message, status=status)


@dataclass(frozen=True, slots=True)
class SplitListing:
    """A listing of a split or mapped bucket, as one client request asks for it."""

    request: S3Request
    parts: Sequence[Part]
    backends: dict
    keys: Sequence[bytes]  # sealing keys: the current secret first, then previous ones accepted
    keep: Callable[[str], bool] | None = None  # the keys the client may see (None: every key)


async def merged_listing(listing: SplitListing) -> bytes:
    """The client's listing of a split or mapped bucket, from every part; with `keep`, only
    the keys it accepts (a client's key grants)."""
    backends, request = listing.backends, listing.request

    async def fetch(part: Part, query: list[tuple[str, str]]) -> bytes:
        status, _, body = await backend_exchange(
            backends[part.backend], "GET", part.bucket, "", query
        )
        if status != 200:
            raise backend_error(status, body)
        return body

    source = ListingSource(listing.parts, fetch, keep=listing.keep)
    return await merged_list(request.operation, request.bucket, request.query, source, listing.keys)


async def read_small_body(content: Body, plan: PayloadPlan, limit: int) -> bytes:
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
    body: bytes,
    route_key: object,
    backends: dict,
    journal: str | None = None,
) -> bytes:
    """DeleteObjects whose keys route to several places: one request per place, one answer.

    `body` is the client's document, read and verified (and its keys authorized) already.
    `route_key(key) -> Route` routes one client key as DeleteObject would. A rule's mirrors
    get the same deletes: before its target in strict mode (a mirror that fails fails the
    request, the target untouched), after it in best_effort (what a mirror missed is journaled).
    """
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
        mirrors = route.rule.mirror if route.rule is not None else ()
        strict = route.rule is not None and route.rule.mirror_mode == "strict"
        if mirrors and strict:
            await _delete_on_mirrors(route, group_body, backends, journal, strict=True)
        status, answer = await _post_deletes(backends[route.backend], route.bucket, group_body)
        if status != 200:
            raise backend_error(status, answer)
        if mirrors and not strict:
            await _delete_on_mirrors(route, group_body, backends, journal, strict=False)
        results.append((answer, route.names))
    return merge_delete_results(results)


async def _post_deletes(backend: Backend, bucket: str, body: bytes) -> tuple[int, bytes]:
    """One DeleteObjects request to one store, with the integrity header it demands."""
    headers = {"content-type": "application/xml"}
    headers.update(body_integrity_headers(body, {"content-md5": ""}))
    status, _, answer = await backend_exchange(
        backend, "POST", bucket, "", [("delete", "")], body=body, headers=headers
    )
    return status, answer


async def _delete_on_mirrors(
    route: Route,
    body: bytes,
    backends: dict,
    journal: str | None,
    *,
    strict: bool,
) -> None:
    """The deletes of one target's group, sent to each of its rule's mirrors (their names)."""
    assert route.rule is not None
    for mirror in route.rule.mirror:

        def mirror_route(backend_key: str, mirror: str = mirror) -> Route:
            client_key = route.names.to_client_key(backend_key) or backend_key
            return route_on(route, mirror, client_key)

        there = mirror_route("")
        mirror_body = rewrite_delete_objects(body, lambda key: mirror_route(key).key)
        try:
            status, answer = await _post_deletes(backends[mirror], there.bucket, mirror_body)
        except S3Error as error:
            status, answer = 503, error.code.encode()
        if status != 200 and strict:
            raise S3Error(
                "ServiceUnavailable",
                f"Mirror backend {mirror!r} did not take the deletes (status {status}); the "
                "target was left as it was. Please retry.",
            )
        if status != 200:
            missed = delete_objects_keys(mirror_body)
        else:
            root = parse_xml(answer)
            missed = [child_text(e, "Key") or "" for e in root if local_name(e) == "Error"]
        to_target = {mirror_route(key).key: key for key in delete_objects_keys(body)}
        for key in missed:
            await record_divergence(
                journal,
                Divergence(
                    route.backend,
                    mirror,
                    route.bucket,
                    to_target.get(key, key),
                    "DeleteObjects",
                    f"status {status}",
                    mirror_bucket=there.bucket,
                    mirror_key=key,
                ),
                backends,
            )


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
        if backend.signing_credentials() is None:
            continue  # a backend without keys for this client cannot be asked; it shows nothing
        try:
            status, _, body = await backend_exchange(backend, "GET", "", "", [])
        except S3Error as error:
            if error.code != "ServiceUnavailable":
                raise
            # One store being down should not hide every other store's buckets.
            log.warning("ListBuckets: backend %s is unreachable; its buckets are left out", name)
            continue
        if status != 200:
            raise backend_error(status, body)
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
        status, _, body = await backend_exchange(
            backends[part.backend], method, part.bucket, "", query
        )
        if method == "PUT" and status == 409:
            continue  # already there (owned by the proxy's credentials): nothing to create
        if status >= 300:
            if method == "HEAD":
                raise S3Error("NoSuchBucket" if status == 404 else "AccessDenied", status=status)
            error = backend_error(status, body)
            if done:
                # Which stores and buckets is for the operator's log: clients never learn
                # the backends' names for a bucket.
                log.warning(
                    "%s %s: refused by %s:%s after %s",
                    method,
                    parts[0].mapping.client_bucket,
                    part.backend,
                    part.bucket,
                    ", ".join(done),
                )
                error.message += f" (already done on {len(done)} other part(s) of this bucket)"
            raise error
        done.append(f"{part.backend}:{part.bucket}")
    return 204 if method == "DELETE" else 200
