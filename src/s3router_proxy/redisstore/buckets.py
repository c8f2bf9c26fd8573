"""Buckets and what spans a bucket's keys: CreateBucket, HeadBucket, DeleteBucket, ListBuckets,
GetBucketLocation, GetBucketVersioning (never enabled), ListObjects(V2) and DeleteObjects."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from ..s3.deleteobjects import MAX_DELETE_OBJECTS_BYTES, delete_objects_keys
from ..s3.errors import S3Error
from ..s3.xml import child_text, parse_xml
from .answers import OWNER, XMLNS, StoredAnswer, element, empty_answer, iso_time, store_error
from .answers import xml_answer as xml
from .listing import list_page, listing_document, query_of
from .objects import read_capped
from .store import RedisStore

# S3's rules for new bucket names (general purpose buckets).
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")


async def create_bucket(store: RedisStore, bucket: str) -> StoredAnswer:
    if (
        not _BUCKET_NAME.fullmatch(bucket)
        or ".." in bucket
        or _IP_ADDRESS.fullmatch(bucket)
        or bucket.startswith("xn--")
    ):
        raise S3Error("InvalidBucketName", details={"BucketName": bucket})
    if not await store.create_bucket(bucket, time.time()):
        raise store_error("BucketAlreadyOwnedByYou", BucketName=bucket)
    return empty_answer(200, [("Location", f"/{bucket}")])


async def existing(store: RedisStore, bucket: str) -> None:
    if not await store.has_bucket(bucket):
        raise S3Error("NoSuchBucket", details={"BucketName": bucket})


async def delete_bucket(store: RedisStore, bucket: str) -> StoredAnswer:
    result = await store.delete_bucket(bucket)
    if result == "NoSuchBucket":
        raise S3Error("NoSuchBucket", details={"BucketName": bucket})
    if result != "OK":
        raise store_error(result, BucketName=bucket)
    return empty_answer(204)


async def list_buckets(store: RedisStore) -> StoredAnswer:
    found = await store.buckets()
    entries = "".join(
        "<Bucket>" + element("Name", name) + element("CreationDate", iso_time(at)) + "</Bucket>"
        for name, at in sorted(found.items())
    )
    return xml(
        f'<ListAllMyBucketsResult xmlns="{XMLNS}">{OWNER}'
        f"<Buckets>{entries}</Buckets></ListAllMyBucketsResult>"
    )


def location() -> StoredAnswer:
    return xml(f'<LocationConstraint xmlns="{XMLNS}"/>')


def versioning() -> StoredAnswer:
    return xml(f'<VersioningConfiguration xmlns="{XMLNS}"/>')


async def list_objects(
    store: RedisStore, bucket: str, args: Mapping[str, str], v2: bool
) -> StoredAnswer:
    query = query_of(args, v2)
    await existing(store, bucket)
    await store.prune(bucket)

    async def fetch(bound: bytes, inclusive: bool, upper: bytes | None, count: int) -> list[bytes]:
        return await store.keys_after(bucket, bound, inclusive, upper, count)

    page = await list_page(fetch, query)
    metas = await store.metas(bucket, page.keys)
    return listing_document(bucket, args, page, metas, v2)


async def delete_objects(store: RedisStore, bucket: str, body: Any) -> StoredAnswer:
    """DeleteObjects: each key deleted (absent ones too, as S3 answers), Quiet honoured."""
    document = await read_capped(body, MAX_DELETE_OBJECTS_BYTES)
    keys = delete_objects_keys(document)
    quiet = (child_text(parse_xml(document, request=True), "Quiet") or "").lower() == "true"
    await existing(store, bucket)
    deleted = []
    for key in keys:
        result = await store.delete(bucket, key)
        if result != "OK":
            raise S3Error("NoSuchBucket", details={"BucketName": bucket})
        if not quiet:
            deleted.append(f"<Deleted>{element('Key', key)}</Deleted>")
    return xml(f'<DeleteResult xmlns="{XMLNS}">{"".join(deleted)}</DeleteResult>')
