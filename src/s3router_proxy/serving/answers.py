"""How a request that passed the stages is answered: most are forwarded to their backend
(asking the rule's fallbacks on a read miss); the operations that span stores each have an
answer named for them, picked by `bucket_answer` and the handler.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable

from ..backends.fallback import with_fallback
from ..backends.forward import Rewrite, forward
from ..body.payload import BodyOutcome, plan_payload
from ..http.server import Response
from ..multi.copyacross import answer_copy_across
from ..multi.mirror import MirroredWrite, mirrored, then_mirror
from ..multi.splitbucket import (
    SplitListing,
    bucket_on_every_part,
    list_buckets,
    merged_listing,
    merged_upload_listing,
    split_delete_objects,
)
from ..routing import uploadid
from ..routing.bucketparts import Part, listing_is_plain, routes_for_bucket
from ..routing.facts import RequestFacts
from ..routing.location import client_location, rewrite_location_header
from ..routing.responsexml import ClientRequest, rewrite_response_xml
from ..routing.rules import Route, match_route
from ..s3.errors import S3Error
from ..s3.operationsets import (
    KEY_LISTINGS,
    OBJECT_LISTINGS,
    SPLIT_BUCKET_OPERATIONS,
    XML_ANSWERS,
)
from ..telemetry.accessrecord import RequestRecord
from .contentmd5 import with_content_md5
from .exchange import Exchange


async def answer_list_buckets(exchange: Exchange) -> Response | None:
    """ListBuckets: every store's buckets the client may see, in one listing."""
    if exchange.request.operation != "ListBuckets":
        return None
    state = exchange.state
    body = await list_buckets(
        state.backends,
        state.config.rules,
        state.config.default_target,
        exchange.policy.sees_bucket,
    )
    return xml_answer(exchange.record, body)


async def answer_split_bucket(exchange: Exchange) -> Response | None:
    """Listings and deletes on a bucket split over backends or renamed: asked part by part."""
    request, config = exchange.request, exchange.state.config
    if not request.bucket or (
        request.operation not in OBJECT_LISTINGS
        and request.operation not in SPLIT_BUCKET_OPERATIONS
    ):
        return None
    facts = RequestFacts(
        request.method, request.bucket, "", operation=request.operation, headers=request.headers
    )
    parts = routes_for_bucket(
        config.rules, config.default_target, facts, request.query.get("prefix", "")
    )
    if not parts:
        raise S3Error("NoSuchBucket", details={"BucketName": request.bucket})
    mirrored_deletes = request.operation == "DeleteObjects" and any(
        part.rule is not None and part.rule.mirror for part in parts
    )
    if listing_is_plain(parts) and not mirrored_deletes and visible_keys(exchange) is None:
        return None
    exchange.record.backend = ",".join(sorted({p.backend for p in parts}))
    return await _fan_out(exchange, parts)


# Answers that take a request before it is routed by key, tried in order.
BUCKET_ANSWERS: tuple[Callable[[Exchange], Awaitable[Response | None]], ...] = (
    answer_list_buckets,
    answer_split_bucket,
)


async def bucket_answer(exchange: Exchange) -> Response | None:
    """The answer of the first of `BUCKET_ANSWERS` that takes this request, if one does."""
    for answer in BUCKET_ANSWERS:
        response = await answer(exchange)
        if response is not None:
            return response
    return None


async def _fan_out(exchange: Exchange, parts: list[Part]) -> Response:
    state, request, record = exchange.state, exchange.request, exchange.record
    config = state.config
    if request.operation in ("CreateBucket", "DeleteBucket", "HeadBucket"):
        status = await bucket_on_every_part(
            request.method, parts, state.backends, request.query_items
        )
        record.status = status
        headers = {"x-amz-request-id": record.request_id}
        if request.operation == "CreateBucket":
            headers["Location"] = client_location("", request.bucket)
        return Response(status=status, headers=headers)
    if request.operation == "ListMultipartUploads":
        body = await merged_upload_listing(
            SplitListing(request, parts, state.backends, config.secret, visible_keys(exchange))
        )
        return xml_answer(record, body)
    if request.operation == "DeleteObjects":
        assert exchange.keys_body is not None  # read and authorized key by key before routing

        def route_key(key: str) -> Route:
            facts = RequestFacts(
                "DELETE", request.bucket, key, operation="DeleteObject", headers=request.headers
            )
            return match_route(config.rules, config.default_target, facts)

        body = await split_delete_objects(
            exchange.keys_body[1],
            route_key,
            state.backends,
            config.mirror_journal,
        )
    else:
        body = await merged_listing(
            SplitListing(request, parts, state.backends, config.secret, visible_keys(exchange))
        )
    return xml_answer(record, body)


def visible_keys(exchange: Exchange) -> Callable[[str], bool] | None:
    """Which keys a listing may show a key-restricted client (None: every key).

    Such a listing is always built by the proxy (`_fan_out`), never passed through with keys
    dropped afterwards: a backend's markers and tokens name the last key of its page, which
    may be one the client must not see, and a page of hidden keys would end the listing."""
    request, policy = exchange.request, exchange.policy
    if request.operation not in KEY_LISTINGS or not policy.filters_keys(request.bucket):
        return None
    return lambda key: policy.lists_key(request.operation, request.bucket, key)


def xml_answer(record: RequestRecord, body: bytes) -> Response:
    record.status = 200
    record.bytes_out = len(body)
    return Response(
        body=body,
        content_type="application/xml",
        headers={"x-amz-request-id": record.request_id},
    )


async def answer_copy_across_stores(exchange: Exchange) -> Response:
    """A copy whose source is on another backend: the proxy copies, then the mirrors do."""
    assert exchange.copy is not None
    source, source_route = exchange.copy
    state, request = exchange.state, exchange.request
    then = None
    if exchange.mirrors.names:
        write = MirroredWrite(
            request,
            exchange.auth,
            plan_payload(request, exchange.auth, exchange.signing_key, backend_trailers=False),
            exchange.route,
            state.backends,
            exchange.mirrors,
            state.config.mirror_journal,
            exchange.copy_source,
        )
        then = functools.partial(then_mirror, write)
    return await answer_copy_across(
        exchange, source_route, state.backends[source_route.backend], source.version_id, then=then
    )


@with_content_md5
async def answer_mirrored(exchange: Exchange) -> Response:
    """A write that goes to the route's backend and to every mirror of its rule."""
    state, request, route, mirrors = (
        exchange.state,
        exchange.request,
        exchange.route,
        exchange.mirrors,
    )
    rewrite, rewrite_errors = response_rewriters(exchange, route, pin=exchange.pin)
    write = MirroredWrite(
        request,
        exchange.auth,
        exchange.plan,
        route,
        state.backends,
        mirrors,
        state.config.mirror_journal,
        exchange.copy_source,
    )

    async def primary(
        stream: tuple[AsyncIterator[bytes], BodyOutcome] | None = None,
        rewrite: Rewrite[bytes] | None = rewrite,
    ) -> Response:
        return await forward(
            exchange,
            route,
            exchange.backend,
            rewrite=rewrite,
            rewrite_errors=rewrite_errors,
            location=location_rewriter(exchange, route),
            stream=stream,
        )

    async def created(ids: tuple[tuple[str, str, str, str], ...]) -> Response:
        pinned = uploadid.UploadPin(route.backend, route.bucket, route.key, "", ids, mirrors.mode)
        wrap, _ = response_rewriters(exchange, route, pin=pinned)
        return await primary(None, wrap)

    return await mirrored(write, exchange.http.content, exchange.body_override, primary, created)


@with_content_md5
async def answer_forwarded(exchange: Exchange) -> Response:
    """The route's backend's answer; for a read it misses, the next fallback's."""
    request, record, route, state = (
        exchange.request,
        exchange.record,
        exchange.route,
        exchange.state,
    )
    own = response_rewriters(exchange, route, pin=exchange.pin)

    async def ask(asked: Route, name: str, try_next: Callable[[int], bool] | None) -> Response:
        # A fallback with names of its own maps its answer by them; one with the route's
        # names by the route's, whatever a fallback asked before it had.
        same = asked.names == route.names
        rewrite, rewrite_errors = own if same else response_rewriters(exchange, asked)
        return await forward(
            exchange,
            asked,
            state.backends[name],
            rewrite=rewrite,
            rewrite_errors=rewrite_errors,
            location=location_rewriter(exchange, asked),
            try_next=try_next,
        )

    response, name, asked = await with_fallback(ask, route, request.operation, request.key)
    # The access log names the backend that answered, and its names.
    record.backend, record.backend_bucket, record.backend_key = name, asked.bucket, asked.key
    return response


def response_rewriters(
    exchange: Exchange,
    route: Route,
    *,
    pin: uploadid.UploadPin | None = None,
) -> tuple[Rewrite[bytes] | None, Rewrite[bytes] | None]:
    """(rewrite of a 200 XML answer, rewrite of an error body) this request needs, if any.

    `pin` is the upload a ListParts is about (or a mirrored one being created): the id in the
    answer names its mirrors too."""
    request, record = exchange.request, exchange.record
    secret = exchange.state.config.secret
    names = route.names
    steps: list[Rewrite[bytes]] = []
    if request.operation in ("CreateMultipartUpload", "ListParts"):
        # The upload id is the answer's: the rest says where the upload lives.
        where = uploadid.UploadPin(
            route.backend,
            route.bucket,
            route.key,
            "",
            () if pin is None else pin.mirrors,
            "strict" if pin is None else pin.mirror_mode,
        )
        steps.append(
            lambda body: uploadid.wrap_in_response(
                body, secret, where, bucket=request.bucket, key=request.key
            )
        )
    elif request.operation == "ListMultipartUploads":
        steps.append(
            lambda body: uploadid.wrap_in_upload_listing(
                body,
                secret,
                backend=route.backend,
                backend_bucket=route.bucket,
                bucket=request.bucket,
                logical_key=lambda backend_key: names.to_client_key(backend_key) or backend_key,
            )
        )
    # Even where no name changes, answers are rewritten: a backend names itself in them
    # (CompleteMultipartUpload's Location, an error's Endpoint and HostId).

    client = ClientRequest(key=request.key, query=request.query, request_id=record.request_id)

    def to_client(body: bytes) -> bytes:
        return rewrite_response_xml(body, names, client)

    if request.operation in XML_ANSWERS:
        steps.append(to_client)
    return _chain(steps), to_client


def location_rewriter(exchange: Exchange, route: Route) -> Rewrite[str]:
    """A backend's Location header in the client's names and at the proxy's address (never
    the backend's, even where no name changes)."""
    request = exchange.request
    base = f"{exchange.http.scheme}://{request.host}"
    return lambda value: rewrite_location_header(
        value, route.names, client_base_url=base, client_key=request.key
    )


def _chain(steps: list[Rewrite[bytes]]) -> Rewrite[bytes] | None:
    if not steps:
        return None
    if len(steps) == 1:
        return steps[0]

    def chained(body: bytes) -> bytes:
        for step in steps:
            body = step(body)
        return body

    return chained
