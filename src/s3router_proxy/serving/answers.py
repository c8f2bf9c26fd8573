"""The answers of requests that span stores, each named for what it does: ListBuckets and a
bucket split over stores (`BUCKET_ANSWERS`, picked by `bucket_answer` before routing) and a
copy whose source is on another store. Every other request is forwarded (`forwarder.py`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from ..auth.anonymous import refuse_unsigned
from ..backends.transfer import StoredObject
from ..body.payload import plan_payload
from ..http.messages import Response
from ..multi.copyacross import answer_copy_across
from ..multi.mirrorcopy import then_mirror
from ..multi.mirrorwrite import MirroredWrite
from ..multi.splitbucket import (
    SplitListing,
    bucket_on_every_part,
    list_buckets,
    merged_listing,
    split_delete_objects,
)
from ..multi.uploadlisting import merged_upload_listing
from ..routing.bucketparts import Part, listing_is_plain, routes_for_bucket
from ..routing.facts import RequestFacts
from ..routing.location import client_location
from ..routing.rules import Route, match_route
from ..s3.errors import S3Error
from ..s3.operationsets import (
    KEY_LISTINGS,
    OBJECT_LISTINGS,
    SPLIT_BUCKET_OPERATIONS,
)
from ..telemetry.accessrecord import RequestRecord
from .exchange import Exchange


async def answer_list_buckets(exchange: Exchange) -> Response | None:
    """ListBuckets: every store's buckets the client may see, in one listing."""
    if exchange.request.operation != "ListBuckets":
        return None
    refuse_unsigned(exchange.auth, "ListBuckets asks every store with its keys")
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
    refuse_unsigned(
        exchange.auth, "the proxy answers this one by asking the stores with their keys"
    )
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
            virtual = request.addressing == "virtual"
            base = f"{exchange.http.scheme}://{request.host}" if virtual else ""
            headers["Location"] = client_location(base, request.bucket, bucket_in_host=virtual)
        return Response(status=status, headers=headers)
    if request.operation == "ListMultipartUploads":
        body = await merged_upload_listing(
            SplitListing(
                request, parts, state.backends, config.sealing_keys(), visible_keys(exchange)
            )
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
            SplitListing(
                request, parts, state.backends, config.sealing_keys(), visible_keys(exchange)
            )
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
    refuse_unsigned(exchange.auth, "a copy across stores reads and writes with their keys")
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
    stored = StoredObject(
        state.backends[source_route.backend],
        source_route.bucket,
        source_route.key,
        source.version_id,
    )
    return await answer_copy_across(exchange, stored, then=then)
