"""The store against a real redis-server: each S3 operation through `store_answer`, the entry
`backends/call.py` takes, with what Redis holds read directly after writes, expiry and
failures."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis as sync_redis

from s3router_proxy.body.chunked import encode_unsigned_trailer
from s3router_proxy.body.payload import BodyAborted
from s3router_proxy.config.model import BackendConfig, RedisSettings
from s3router_proxy.http.client import ConnectFailed
from s3router_proxy.redisstore.service import store_answer
from s3router_proxy.redisstore.store import RedisStore
from s3router_proxy.s3 import checksums

LIMIT = 1000


@dataclass(frozen=True)
class Asked:
    method: str
    bucket: str
    key: str = ""
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)


def config(url: str, **settings: Any) -> BackendConfig:
    return BackendConfig(
        name="scratch",
        endpoint=url,
        kind="redis",
        redis=RedisSettings(url=url, max_object_size=LIMIT, **settings),
        connect_timeout=1,
        read_timeout=2,
    )


@pytest.fixture
def direct(redis_url: str) -> Iterator[sync_redis.Redis]:
    client = sync_redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
async def store(redis_url: str, direct: sync_redis.Redis) -> AsyncIterator[RedisStore]:
    made = RedisStore(config(redis_url))
    yield made
    await made.close()


async def ask(
    store: RedisStore, asked: Asked, body: Any = None
) -> tuple[int, dict[str, str], bytes]:
    answer = await store_answer(store, asked, body)
    data = await answer.read(1 << 20)
    answer.release()
    return answer.status, answer.header_map, data


async def pieces(*chunks: bytes, fail: bool = False) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
    if fail:
        raise BodyAborted


async def test_put_get_head_delete(store: RedisStore, direct: sync_redis.Redis) -> None:
    assert (await ask(store, Asked("PUT", "bkt")))[0] == 200
    headers = {"content-type": "text/plain", "x-amz-meta-colour": "blue", "content-length": "5"}
    status, answer, _ = await ask(
        store, Asked("PUT", "bkt", "k", "", headers), pieces(b"he", b"llo")
    )
    assert status == 200
    assert answer["etag"] == f'"{hashlib.md5(b"hello").hexdigest()}"'
    assert direct.get(b"s3r:o:bkt/k") == b"hello"
    assert direct.zrange(b"s3r:i:bkt", 0, -1) == [b"k"]
    status, answer, data = await ask(store, Asked("GET", "bkt", "k"))
    assert (status, data, answer["content-type"]) == (200, b"hello", "text/plain")
    assert answer["x-amz-meta-colour"] == "blue"
    status, answer, data = await ask(store, Asked("HEAD", "bkt", "k"))
    assert (status, data, answer["content-length"]) == (200, b"", "5")
    status, answer, data = await ask(store, Asked("GET", "bkt", "k", "", {"range": "bytes=1-3"}))
    assert (status, data, answer["content-range"]) == (206, b"ell", "bytes 1-3/5")
    assert (await ask(store, Asked("DELETE", "bkt", "k")))[0] == 204
    assert direct.exists(b"s3r:o:bkt/k", b"s3r:m:bkt/k") == 0
    assert direct.zcard(b"s3r:i:bkt") == 0
    status, _, data = await ask(store, Asked("GET", "bkt", "k"))
    assert status == 404 and b"<Code>NoSuchKey</Code>" in data


async def test_a_body_past_the_limit_is_refused_as_it_streams(
    store: RedisStore, direct: sync_redis.Redis
) -> None:
    await ask(store, Asked("PUT", "bkt"))
    consumed = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            consumed.append(400)
            yield b"x" * 400

    status, _, data = await ask(store, Asked("PUT", "bkt", "k"), endless())
    assert status == 400 and b"<Code>EntityTooLarge</Code>" in data
    assert sum(consumed) <= LIMIT + 400  # no more than the limit and one piece held
    assert direct.exists(b"s3r:o:bkt/k") == 0
    status, _, data = await ask(store, Asked("PUT", "bkt", "k", "", {"content-length": "1001"}))
    assert status == 400 and b"EntityTooLarge" in data


async def test_a_body_that_fails_its_checks_raises_and_writes_nothing(
    store: RedisStore, direct: sync_redis.Redis
) -> None:
    await ask(store, Asked("PUT", "bkt"))
    with pytest.raises(BodyAborted):
        await store_answer(store, Asked("PUT", "bkt", "k"), pieces(b"abc", fail=True))
    assert direct.exists(b"s3r:o:bkt/k", b"s3r:m:bkt/k") == 0


async def test_conditional_writes(store: RedisStore) -> None:
    await ask(store, Asked("PUT", "bkt"))
    absent = {"if-none-match": "*"}
    assert (await ask(store, Asked("PUT", "bkt", "k", "", absent), b"1"))[0] == 200
    assert (await ask(store, Asked("PUT", "bkt", "k", "", absent), b"2"))[0] == 412
    etag = hashlib.md5(b"1").hexdigest()
    assert (await ask(store, Asked("PUT", "bkt", "k", "", {"if-match": '"x"'}), b"3"))[0] == 412
    assert (await ask(store, Asked("PUT", "bkt", "k", "", {"if-match": f'"{etag}"'}), b"3"))[
        0
    ] == 200
    assert (await ask(store, Asked("PUT", "bkt", "new", "", {"if-match": f'"{etag}"'}), b"3"))[
        0
    ] == 404


async def test_copy_within_the_store_keeps_or_replaces_metadata(
    store: RedisStore, direct: sync_redis.Redis
) -> None:
    await ask(store, Asked("PUT", "bkt"))
    await ask(store, Asked("PUT", "bkt", "src", "", {"x-amz-meta-a": "1"}), b"data")
    copy = {"x-amz-copy-source": "/bkt/src"}
    status, _, document = await ask(store, Asked("PUT", "bkt", "dst", "", copy))
    assert status == 200 and b"<CopyObjectResult" in document
    assert direct.get(b"s3r:o:bkt/dst") == b"data"
    _, answer, _ = await ask(store, Asked("HEAD", "bkt", "dst"))
    assert answer["x-amz-meta-a"] == "1"
    replace = {**copy, "x-amz-metadata-directive": "REPLACE", "x-amz-meta-b": "2"}
    await ask(store, Asked("PUT", "bkt", "dst", "", replace))
    _, answer, _ = await ask(store, Asked("HEAD", "bkt", "dst"))
    assert "x-amz-meta-a" not in answer and answer["x-amz-meta-b"] == "2"
    status, _, _ = await ask(
        store, Asked("PUT", "bkt", "dst", "", {**copy, "x-amz-copy-source-if-match": '"no"'})
    )
    assert status == 412


async def test_listing_with_delimiter_and_pages(store: RedisStore) -> None:
    await ask(store, Asked("PUT", "bkt"))
    for key in ("a/1", "a/2", "b", "c/d/e"):
        await ask(store, Asked("PUT", "bkt", key), key.encode())
    _, _, document = await ask(
        store, Asked("GET", "bkt", "", "delimiter=%2F&list-type=2&max-keys=2")
    )
    assert b"<KeyCount>2</KeyCount>" in document
    assert b"<CommonPrefixes><Prefix>a/</Prefix></CommonPrefixes>" in document
    assert b"<Key>b</Key>" in document
    assert b"<IsTruncated>true</IsTruncated>" in document
    assert b"<NextContinuationToken>" in document


async def test_expiry_leaves_reads_and_the_index(redis_url: str, direct: sync_redis.Redis) -> None:
    store = RedisStore(config(redis_url, ttl=0.3))
    try:
        await ask(store, Asked("PUT", "bkt"))
        await ask(store, Asked("PUT", "bkt", "k"), b"1")
        assert 0 < direct.pttl(b"s3r:o:bkt/k") <= 300
        assert 0 < direct.pttl(b"s3r:m:bkt/k") <= 300
        assert direct.zcard(b"s3r:x:bkt") == 1
        await asyncio.sleep(0.4)
        assert (await ask(store, Asked("GET", "bkt", "k")))[0] == 404
        assert direct.zcard(b"s3r:i:bkt") == 1  # until a listing prunes it
        _, _, document = await ask(store, Asked("GET", "bkt", "", "list-type=2"))
        assert b"<Key>" not in document
        assert direct.zcard(b"s3r:i:bkt") == 0 and direct.zcard(b"s3r:x:bkt") == 0
        assert (await ask(store, Asked("DELETE", "bkt")))[0] == 204
    finally:
        await store.close()


async def test_buckets(store: RedisStore) -> None:
    assert (await ask(store, Asked("PUT", "bkt")))[0] == 200
    status, _, data = await ask(store, Asked("PUT", "bkt"))
    assert status == 409 and b"BucketAlreadyOwnedByYou" in data
    assert (await ask(store, Asked("PUT", "Bad_Name")))[0] == 400
    assert (await ask(store, Asked("HEAD", "bkt")))[0] == 200
    assert (await ask(store, Asked("HEAD", "nope")))[0] == 404
    await ask(store, Asked("PUT", "bkt", "k"), b"1")
    status, _, data = await ask(store, Asked("DELETE", "bkt"))
    assert status == 409 and b"BucketNotEmpty" in data
    _, _, data = await ask(store, Asked("GET", ""))
    assert b"<Name>bkt</Name>" in data
    status, _, data = await ask(store, Asked("POST", "bkt", "k", "uploads"))
    assert status == 501 and b"NotImplemented" in data


async def test_an_unreachable_redis_is_a_connect_failure(redis_url: str) -> None:
    store = RedisStore(config("redis://127.0.0.1:1/0"))
    try:
        with pytest.raises(ConnectFailed):
            await store_answer(store, Asked("GET", "bkt", "k"), None)
    finally:
        await store.close()


async def test_writes_prune_expired_keys_of_an_index_nobody_lists(
    redis_url: str, direct: sync_redis.Redis
) -> None:
    store = RedisStore(config(redis_url, ttl=0.2))
    try:
        await ask(store, Asked("PUT", "bkt"))
        for i in range(20):
            await ask(store, Asked("PUT", "bkt", f"old-{i}"), b"1")
        await asyncio.sleep(0.3)
        await ask(store, Asked("PUT", "bkt", "new-1"), b"1")
        assert direct.zcard(b"s3r:i:bkt") == 20 - 16 + 1
        await ask(store, Asked("PUT", "bkt", "new-2"), b"1")
        assert direct.zrange(b"s3r:i:bkt", 0, -1) == [b"new-1", b"new-2"]
        assert direct.zcard(b"s3r:x:bkt") == 2
    finally:
        await store.close()


async def test_a_full_redis_is_slow_down_and_reads_still_answer(
    store: RedisStore, direct: sync_redis.Redis
) -> None:
    await ask(store, Asked("PUT", "bkt"))
    await ask(store, Asked("PUT", "bkt", "k"), b"kept")
    direct.config_set("maxmemory-policy", "noeviction")
    direct.config_set("maxmemory", "1")
    try:
        status, _, data = await ask(store, Asked("PUT", "bkt", "k2"), b"more")
        assert status == 503 and b"<Code>SlowDown</Code>" in data
        assert (await ask(store, Asked("GET", "bkt", "k")))[2] == b"kept"
    finally:
        direct.config_set("maxmemory", "0")
    assert direct.exists(b"s3r:o:bkt/k2") == 0


def _chunked(pieces: AsyncIterator[bytes], crc: str) -> AsyncIterator[bytes]:
    return encode_unsigned_trailer(pieces, lambda: {"x-amz-checksum-crc32": crc})


async def test_an_aws_chunked_body_keeps_its_trailer_checksum(
    store: RedisStore, direct: sync_redis.Redis
) -> None:
    await ask(store, Asked("PUT", "bkt"))
    crc = checksums.new_checksum("CRC32")
    crc.update(b"hello world")
    headers = {
        "content-encoding": "aws-chunked,gzip",
        "x-amz-decoded-content-length": "11",
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    body = _chunked(pieces(b"hello ", b"world"), crc.b64digest())
    status, answer, _ = await ask(store, Asked("PUT", "bkt", "k", "", headers), body)
    assert status == 200 and answer["x-amz-checksum-crc32"] == crc.b64digest()
    assert direct.get(b"s3r:o:bkt/k") == b"hello world"
    _, answer, data = await ask(
        store, Asked("GET", "bkt", "k", "", {"x-amz-checksum-mode": "ENABLED"})
    )
    assert data == b"hello world"
    assert answer["x-amz-checksum-crc32"] == crc.b64digest()
    assert answer["content-encoding"] == "gzip"
    # A check the proxy failed upstream stays the proxy's failure, and nothing is written.
    failing = _chunked(pieces(b"hello ", fail=True), crc.b64digest())
    with pytest.raises(BodyAborted):
        await store_answer(store, Asked("PUT", "bkt", "k2", "", headers), failing)
    assert direct.exists(b"s3r:o:bkt/k2") == 0
