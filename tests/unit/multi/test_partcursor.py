"""One part's entries: backend names mapped back, foreign keys dropped, pages followed."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from s3router_proxy.multi.listparams import parse_list_params
from s3router_proxy.multi.partcursor import ListingSource, PartCursor
from s3router_proxy.routing.bucketparts import Part
from s3router_proxy.routing.names import NameMapping
from s3router_proxy.s3.errors import S3Error

SECRET = b"test-secret"
TEAM = Part("minio", NameMapping("lb", "minio-bucket", "team2/", "data/team2/"), None)


class Store:
    """One backend bucket answering ListObjectsV2 pages (start-after, max-keys, url-encoded)."""

    def __init__(self, keys: list[str] | None) -> None:
        self.keys = keys  # None: the bucket does not exist
        self.queries: list[dict[str, str]] = []

    async def fetch(self, part: Part, query: list[tuple[str, str]]) -> bytes:
        q = dict(query)
        self.queries.append(q)
        if self.keys is None:
            raise S3Error("NoSuchBucket")
        prefix, after, size = q.get("prefix", ""), q.get("start-after", ""), int(q["max-keys"])
        matching = sorted(k for k in self.keys if k.startswith(prefix) and k > after)
        page = "".join(f"<Contents><Key>{quote(k)}</Key></Contents>" for k in matching[:size])
        truncated = "true" if len(matching) > size else "false"
        return (
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<EncodingType>url</EncodingType><IsTruncated>{truncated}</IsTruncated>{page}"
            "</ListBucketResult>"
        ).encode()


def entries(cursor: PartCursor) -> list[str]:
    async def drain() -> list[str]:
        names = []
        while (entry := await cursor.head()) is not None:
            names.append(entry.name)
            cursor.pop()
        return names

    return asyncio.run(drain())


def cursor_over(store: Store, query: dict[str, str], *, page_size: int = 1000, keep=None):  # type: ignore[no-untyped-def]
    params = parse_list_params("ListObjectsV2", "lb", query, (SECRET,))
    return PartCursor(TEAM, params, ListingSource([TEAM], store.fetch, keep=keep), page_size)


def test_backend_names_come_back_in_client_names_under_the_mapped_prefix() -> None:
    store = Store(["data/team2/a b", "data/team2/z", "data/other/x", "data/team2x"])
    assert entries(cursor_over(store, {})) == ["team2/a b", "team2/z"]
    assert store.queries[0]["prefix"] == "data/team2/"
    assert store.queries[0]["encoding-type"] == "url"


def test_pages_are_followed_from_the_last_backend_name() -> None:
    store = Store([f"data/team2/{i}" for i in range(5)])
    assert entries(cursor_over(store, {}, page_size=2)) == [f"team2/{i}" for i in range(5)]
    assert [q.get("start-after") for q in store.queries] == [None, "data/team2/1", "data/team2/3"]


def test_a_position_resumes_after_the_client_name() -> None:
    store = Store([f"data/team2/{i}" for i in range(3)])
    assert entries(cursor_over(store, {"start-after": "team2/0"})) == ["team2/1", "team2/2"]
    assert store.queries[0]["start-after"] == "data/team2/0"


def test_keep_hides_keys_the_client_may_not_see() -> None:
    store = Store(["data/team2/mine", "data/team2/theirs"])
    cursor = cursor_over(store, {}, keep=lambda key: key.endswith("mine"))
    assert entries(cursor) == ["team2/mine"]


def test_a_missing_backend_bucket_contributes_nothing() -> None:
    cursor = cursor_over(Store(None), {})
    assert entries(cursor) == []
    assert cursor.requested and cursor.missing


def test_a_prefix_outside_the_part_asks_the_backend_nothing() -> None:
    store = Store(["data/team2/a"])
    cursor = cursor_over(store, {"prefix": "team3/"})
    assert entries(cursor) == [] and not store.queries and not cursor.requested
