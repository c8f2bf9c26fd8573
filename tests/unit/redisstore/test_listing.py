"""Listing pages from a sorted index, against an in-memory index in the same byte order: the
page boundaries, common prefixes, markers and continuation tokens S3 gives."""

from __future__ import annotations

import bisect

import pytest

from s3router_proxy.redisstore.listing import (
    ListQuery,
    from_token,
    list_page,
    query_of,
    resume_after,
    token,
)
from s3router_proxy.s3.errors import S3Error

KEYS = sorted(
    k.encode()
    for k in ["a", "a/1", "a/2", "a/b/1", "b", "b/c", "c d/é", "c d/~x", "logs/2026/01", "z", "é"]
)


class Index:
    """ZRANGEBYLEX over a sorted list, counting the fetches."""

    def __init__(self, keys: list[bytes]) -> None:
        self.keys = keys
        self.fetches = 0

    async def __call__(
        self, bound: bytes, inclusive: bool, upper: bytes | None, count: int
    ) -> list[bytes]:
        self.fetches += 1
        start = (bisect.bisect_left if inclusive else bisect.bisect_right)(self.keys, bound)
        found = [k for k in self.keys[start:] if upper is None or k < upper]
        return found[:count]


async def everything(query: ListQuery) -> tuple[list[str], list[str], int]:
    """Every page's keys and prefixes, in order, and how many pages."""
    keys: list[str] = []
    prefixes: list[str] = []
    pages = 0
    while True:
        page = await list_page(Index(KEYS), query)
        pages += 1
        keys += page.keys
        prefixes += page.prefixes
        assert len(page.keys) + len(page.prefixes) <= query.max_keys
        if not page.truncated:
            return keys, prefixes, pages
        query = ListQuery(query.prefix, query.delimiter, page.resume, query.max_keys)


async def test_a_whole_listing_in_byte_order() -> None:
    page = await list_page(Index(KEYS), ListQuery())
    assert page.keys == [k.decode() for k in KEYS]
    assert page.keys[-1] == "é"  # UTF-8 sorts it after "z", as S3 does
    assert not page.truncated


@pytest.mark.parametrize("max_keys", [1, 2, 3, 1000])
async def test_pages_add_up_to_the_whole(max_keys: int) -> None:
    whole = await list_page(Index(KEYS), ListQuery(delimiter="/"))
    keys, prefixes, _ = await everything(ListQuery(delimiter="/", max_keys=max_keys))
    assert (keys, prefixes) == (whole.keys, whole.prefixes)
    assert whole.prefixes == ["a/", "b/", "c d/", "logs/"]
    assert whole.keys == ["a", "b", "z", "é"]


async def test_a_common_prefix_is_skipped_in_one_fetch() -> None:
    keys = [*sorted(b"big/%05d" % i for i in range(5000)), b"c"]
    index = Index(keys)
    page = await list_page(index, ListQuery(delimiter="/"))
    assert (page.prefixes, page.keys) == (["big/"], ["c"])
    assert index.fetches == 2


async def test_prefix_and_delimiter() -> None:
    page = await list_page(Index(KEYS), ListQuery(prefix="a/", delimiter="/"))
    assert (page.keys, page.prefixes) == (["a/1", "a/2"], ["a/b/"])
    page = await list_page(Index(KEYS), ListQuery(prefix="c d/"))
    assert page.keys == ["c d/~x", "c d/é"]
    page = await list_page(Index(KEYS), ListQuery(prefix="nothing"))
    assert (page.keys, page.prefixes, page.truncated) == ([], [], False)


async def test_a_full_last_page_is_not_truncated() -> None:
    page = await list_page(Index(KEYS), ListQuery(max_keys=len(KEYS)))
    assert not page.truncated
    page = await list_page(Index(KEYS), ListQuery(max_keys=len(KEYS) - 1))
    assert page.truncated
    assert page.last == KEYS[-2].decode()


async def test_max_keys_zero_lists_nothing() -> None:
    page = await list_page(Index(KEYS), ListQuery(max_keys=0))
    assert (page.keys, page.prefixes, page.truncated) == ([], [], False)


async def test_a_marker_inside_a_common_prefix_resumes_after_it() -> None:
    query = ListQuery(delimiter="/")
    after = resume_after("a/", query)
    page = await list_page(Index(KEYS), ListQuery("", "/", after))
    assert page.prefixes[0] == "b/"
    assert page.keys[0] == "b"
    # Without a delimiter a marker is just a key.
    page = await list_page(Index(KEYS), ListQuery(after=resume_after("a/", ListQuery())))
    assert page.keys[0] == "a/1"


def test_tokens_round_trip_and_junk_is_refused() -> None:
    assert from_token(token(b"a/\xff")) == b"a/\xff"
    with pytest.raises(S3Error) as caught:
        from_token("not base64!")
    assert caught.value.code == "InvalidArgument"


def test_the_query_of_a_request() -> None:
    query = query_of({"prefix": "p/", "delimiter": "/", "max-keys": "5000"}, v2=True)
    assert (query.prefix, query.delimiter, query.max_keys, query.after) == ("p/", "/", 1000, None)
    assert query_of({"start-after": "p/x"}, v2=True).after == b"p/x"
    assert query_of({"marker": "m"}, v2=False).after == b"m"
    assert query_of({"continuation-token": token(b"k"), "start-after": "a"}, v2=True).after == b"k"
    for bad in ("-1", "ten"):
        with pytest.raises(S3Error):
            query_of({"max-keys": bad}, v2=False)
