"""One request to the store, named as S3 names it and answered: the entry `backends/call.py`
takes for a `kind: redis` backend instead of an HTTP round trip.

What the store does not keep it refuses as S3 does for a feature it lacks, with
`NotImplemented` (501) and a message that says which: multipart uploads, versions, and every
bucket or object sub-resource (ACLs, tags, policies, …).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..s3.errors import S3Error
from ..s3.operations import operation_name
from ..s3.operationsets import MULTIPART_OPERATIONS, VERSION_OPERATIONS
from ..s3.request import parse_query
from . import buckets, objects
from .answers import StoredAnswer, empty_answer, error_answer
from .store import RedisStore, unreachable_store

log = logging.getLogger("s3router_proxy.redisstore")
SMALL_BODY = 1024 * 1024  # a CreateBucket document, read and let go


class Asked(Protocol):
    """The request as a backend receives it (`backends/backend.BackendRequest` is one): its
    query canonical, its headers lower-case."""

    @property
    def method(self) -> str: ...
    @property
    def bucket(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def query(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...


def _not_kept(operation: str) -> S3Error:
    if operation in MULTIPART_OPERATIONS:
        return S3Error(
            "NotImplemented",
            "This store keeps no multipart uploads: write objects in one PutObject.",
        )
    if operation in VERSION_OPERATIONS:
        return S3Error("NotImplemented", "This store keeps no versions of an object.")
    return S3Error("NotImplemented", f"This store does not implement {operation}.")


async def store_answer(
    store: RedisStore, asked: Asked, body: AsyncIterator[bytes] | bytes | None
) -> StoredAnswer:
    """The store's answer to `asked`, an S3 error answer included. A Redis that cannot be
    reached raises as an HTTP backend's connection would (see `store.unreachable_store`)."""
    try:
        return await _answer(store, asked, body)
    except S3Error as error:
        return error_answer(error, asked.method, _resource(asked))
    except (RedisConnectionError, RedisTimeoutError) as exc:
        raise unreachable_store(exc) from None
    except RedisError as exc:
        # Redis answered, and refused: a full store (maxmemory with noeviction) or another
        # refusal is the client's 503 to retry later, named by its kind only.
        log.warning("redis store refused %s: %s", asked.method, type(exc).__name__)
        full = isinstance(exc, OutOfMemoryError) or "maxmemory" in str(exc)
        error = S3Error(
            "SlowDown" if full else "ServiceUnavailable",
            "The store is full; please retry later." if full else None,
        )
        return error_answer(error, asked.method, _resource(asked))


def _resource(asked: Asked) -> str:
    return "/" + asked.bucket + ("/" + asked.key if asked.key else "")


async def _answer(
    store: RedisStore, asked: Asked, body: AsyncIterator[bytes] | bytes | None
) -> StoredAnswer:
    method, bucket, key, headers = asked.method, asked.bucket, asked.key, asked.headers
    query = dict(parse_query(asked.query))
    operation = operation_name(method, bucket, key, query, headers)
    if query.get("versionId", "null") != "null":
        raise S3Error("NotImplemented", "This store keeps no versions of an object.")
    match operation:
        case "ListBuckets":
            return await buckets.list_buckets(store)
        case "CreateBucket":
            await objects.read_capped(body, SMALL_BODY)
            return await buckets.create_bucket(store, bucket)
        case "HeadBucket":
            await buckets.existing(store, bucket)
            return empty_answer(200, [("x-amz-bucket-region", store.region)])
        case "DeleteBucket":
            return await buckets.delete_bucket(store, bucket)
        case "GetBucketLocation":
            await buckets.existing(store, bucket)
            return buckets.location()
        case "GetBucketVersioning":
            await buckets.existing(store, bucket)
            return buckets.versioning()
        case "ListObjects" | "ListObjectsV2":
            return await buckets.list_objects(store, bucket, query, operation == "ListObjectsV2")
        case "DeleteObjects":
            return await buckets.delete_objects(store, bucket, body)
        case "PutObject":
            return await objects.put_object(store, (bucket, key, headers), body)
        case "CopyObject":
            return await objects.copy_object(store, (bucket, key, headers))
        case "GetObject" | "HeadObject":
            return await objects.get_object(
                store, (bucket, key, headers), query, head=method == "HEAD"
            )
        case "DeleteObject":
            return await objects.delete_object(store, bucket, key)
    raise _not_kept(operation)
