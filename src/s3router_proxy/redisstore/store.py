"""Every Redis command the store sends, and how its data is laid out.

    s3r:buckets            hash    bucket -> creation time (ms)
    s3r:o:BUCKET/KEY       string  the object's bytes
    s3r:m:BUCKET/KEY       string  its metadata (JSON: etag, size, mtime, headers, checksums)
    s3r:i:BUCKET           zset    every key, score 0: ZRANGEBYLEX lists in S3's byte order
    s3r:x:BUCKET           zset    keys that expire, scored by when (ms, Redis's own clock)

A bucket name has no `/`, so BUCKET/KEY is unambiguous. Writes and deletes are Lua scripts, so
the bytes, the metadata and both indexes change together, and a write to a bucket being deleted
either lands before the delete (which then finds the bucket not empty) or finds no bucket.

An object with a TTL expires by Redis's EXPIRE (its bytes and metadata carry the same PXAT,
taken from Redis's clock inside the script); the sorted index cannot expire members, so every
listing first prunes the keys whose time has come (`PRUNE`, same clock). A listing therefore
never names an expired object, and no periodic sweep is needed: each write also drops up to 16
of its bucket's expired keys, so an index that is written to but never listed stays as small as
its live keys plus a backlog that every write shrinks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.maint_notifications import MaintNotificationsConfig

from ..config.model import BackendConfig, RedisSettings
from ..http.client import ConnectFailed

BUCKETS = b"s3r:buckets"

_NOW_MS = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "

# KEYS: buckets, data, meta, index, expiry. ARGV: bucket, key, body, meta, ttl ms ("" none),
# if-none-match ("*" or ""), if-match etag ("" none).
PUT = (
    _NOW_MS
    + """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 'NoSuchBucket' end
local old = redis.call('GET', KEYS[3])
if ARGV[6] == '*' and old then return 'PreconditionFailed' end
if ARGV[7] ~= '' then
  if not old then return 'NoSuchKey' end
  if cjson.decode(old)['etag'] ~= ARGV[7] then return 'PreconditionFailed' end
end
if ARGV[5] == '' then
  redis.call('SET', KEYS[2], ARGV[3])
  redis.call('SET', KEYS[3], ARGV[4])
  redis.call('ZREM', KEYS[5], ARGV[2])
else
  local at = now + tonumber(ARGV[5])
  redis.call('SET', KEYS[2], ARGV[3], 'PXAT', at)
  redis.call('SET', KEYS[3], ARGV[4], 'PXAT', at)
  redis.call('ZADD', KEYS[5], at, ARGV[2])
end
redis.call('ZADD', KEYS[4], 0, ARGV[2])
local gone = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, 16)
if #gone > 0 then
  redis.call('ZREM', KEYS[4], unpack(gone))
  redis.call('ZREM', KEYS[5], unpack(gone))
end
return 'OK'
"""
)

# KEYS: buckets, source data, source meta, data, meta, index, expiry.
# ARGV: bucket, key, meta, ttl ms ("" none), the source's etag as it was read.
COPY = (
    _NOW_MS
    + """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 'NoSuchBucket' end
local source = redis.call('GET', KEYS[3])
if not source then return 'NoSuchKey' end
if cjson.decode(source)['etag'] ~= ARGV[5] then return 'Changed' end
if KEYS[2] ~= KEYS[4] then redis.call('COPY', KEYS[2], KEYS[4], 'REPLACE') end
if ARGV[4] == '' then
  redis.call('PERSIST', KEYS[4])
  redis.call('SET', KEYS[5], ARGV[3])
  redis.call('ZREM', KEYS[7], ARGV[2])
else
  local at = now + tonumber(ARGV[4])
  redis.call('PEXPIREAT', KEYS[4], at)
  redis.call('SET', KEYS[5], ARGV[3], 'PXAT', at)
  redis.call('ZADD', KEYS[7], at, ARGV[2])
end
redis.call('ZADD', KEYS[6], 0, ARGV[2])
return 'OK'
"""
)

# KEYS: buckets, data, meta, index, expiry. ARGV: bucket, key.
DELETE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 'NoSuchBucket' end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('ZREM', KEYS[5], ARGV[2])
return 'OK'
"""

# KEYS: meta, data. ARGV: first, last byte.
SPAN = """
return {redis.call('GET', KEYS[1]), redis.call('GETRANGE', KEYS[2], ARGV[1], ARGV[2])}
"""

# KEYS: index, expiry. Drops the keys whose time has come from both.
PRUNE = (
    _NOW_MS
    + """
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for i = 1, #gone, 500 do
  local batch = {unpack(gone, i, math.min(i + 499, #gone))}
  redis.call('ZREM', KEYS[1], unpack(batch))
  redis.call('ZREM', KEYS[2], unpack(batch))
end
return #gone
"""
)

# KEYS: buckets, index, expiry. ARGV: bucket. Empty buckets only.
DELETE_BUCKET = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 'NoSuchBucket' end
if redis.call('ZCARD', KEYS[2]) > 0 then return 'BucketNotEmpty' end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3])
return 'OK'
"""


def _object(prefix: bytes, bucket: str, key: str) -> bytes:
    return prefix + bucket.encode() + b"/" + key.encode()


def _keys(bucket: str, key: str) -> list[bytes]:
    """buckets, data, meta, index, expiry: what a write or delete of one object touches."""
    return [
        BUCKETS,
        _object(b"s3r:o:", bucket, key),
        _object(b"s3r:m:", bucket, key),
        b"s3r:i:" + bucket.encode(),
        b"s3r:x:" + bucket.encode(),
    ]


def _ttl_ms(ttl: float | None) -> str:
    return "" if ttl is None else str(max(1, int(ttl * 1000)))


def client_for(config: BackendConfig) -> aioredis.Redis:
    """A client with its own pool: `max_connections` at most; more callers wait their turn."""
    settings = config.redis or RedisSettings(url=config.endpoint)
    url = settings.url
    if settings.tls and url.startswith("redis://"):
        url = "rediss://" + url[len("redis://") :]
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        password=settings.password,
        max_connections=config.max_connections,
        timeout=config.connect_timeout,
        socket_connect_timeout=config.connect_timeout,
        socket_timeout=config.read_timeout,
        # Not a managed cloud Redis: no round trip per connection to ask for notices.
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
    )
    return aioredis.Redis(connection_pool=pool)


class StoreUnreachable(ConnectFailed):
    """Redis could not be reached: the client's ServiceUnavailable, as for any backend."""


class RedisStore:
    """One Redis database as a set of buckets."""

    def __init__(self, config: BackendConfig) -> None:
        self.settings = config.redis or RedisSettings(url=config.endpoint)
        self.region = config.region
        self.redis = client_for(config)
        self._put = self.redis.register_script(PUT)
        self._copy = self.redis.register_script(COPY)
        self._delete = self.redis.register_script(DELETE)
        self._prune = self.redis.register_script(PRUNE)
        self._span = self.redis.register_script(SPAN)
        self._delete_bucket = self.redis.register_script(DELETE_BUCKET)

    async def close(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> None:
        await self.redis.ping()

    async def buckets(self) -> dict[str, float]:
        found = await self.redis.hgetall(BUCKETS)
        return {name.decode(): int(ms) / 1000 for name, ms in found.items()}

    async def has_bucket(self, bucket: str) -> bool:
        return bool(await self.redis.hexists(BUCKETS, bucket.encode()))

    async def create_bucket(self, bucket: str, now: float) -> bool:
        """False when it exists already."""
        return bool(await self.redis.hsetnx(BUCKETS, bucket.encode(), int(now * 1000)))

    async def delete_bucket(self, bucket: str) -> str:
        name = bucket.encode()
        await self._prune(keys=[b"s3r:i:" + name, b"s3r:x:" + name])
        result = await self._delete_bucket(
            keys=[BUCKETS, b"s3r:i:" + name, b"s3r:x:" + name], args=[name]
        )
        return result.decode()

    async def put(
        self, bucket: str, key: str, body: bytes, meta: dict[str, Any], **if_: str
    ) -> str:
        """'OK', or why not: NoSuchBucket, NoSuchKey, PreconditionFailed. `if_` holds
        `none_match` ("*") and `match` (an ETag) for a conditional write."""
        return (
            await self._put(
                keys=_keys(bucket, key),
                args=[
                    bucket,
                    key,
                    body,
                    json.dumps(meta),
                    _ttl_ms(self.settings.ttl),
                    if_.get("none_match", ""),
                    if_.get("match", ""),
                ],
            )
        ).decode()

    async def copy(
        self, source: tuple[str, str], target: tuple[str, str], meta: dict[str, Any], etag: str
    ) -> str:
        """'OK', or NoSuchBucket, NoSuchKey, or Changed (the source was written meanwhile)."""
        buckets, data, meta_key, index, expiry = _keys(*target)
        source_keys = _keys(*source)
        return (
            await self._copy(
                keys=[buckets, source_keys[1], source_keys[2], data, meta_key, index, expiry],
                args=[target[0], target[1], json.dumps(meta), _ttl_ms(self.settings.ttl), etag],
            )
        ).decode()

    async def delete(self, bucket: str, key: str) -> str:
        return (await self._delete(keys=_keys(bucket, key), args=[bucket, key])).decode()

    async def meta(self, bucket: str, key: str) -> dict[str, Any] | None:
        found = await self.redis.get(_object(b"s3r:m:", bucket, key))
        return None if found is None else json.loads(found)

    async def whole(self, bucket: str, key: str) -> tuple[dict[str, Any] | None, bytes]:
        """(metadata, bytes) of one object in one MGET, so an overwrite cannot mix two."""
        meta, body = await self.redis.mget(
            _object(b"s3r:m:", bucket, key), _object(b"s3r:o:", bucket, key)
        )
        return (None if meta is None else json.loads(meta)), body or b""

    async def span(
        self, bucket: str, key: str, first: int, last: int
    ) -> tuple[dict[str, Any] | None, bytes]:
        """(metadata, bytes `first` to `last`) in one script: a range never loads the whole
        value, and the metadata is the one of the bytes read."""
        meta, body = await self._span(
            keys=[_object(b"s3r:m:", bucket, key), _object(b"s3r:o:", bucket, key)],
            args=[first, last],
        )
        return (json.loads(meta) if meta else None), body or b""

    async def metas(self, bucket: str, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        if not keys:
            return []
        found = await self.redis.mget([_object(b"s3r:m:", bucket, key) for key in keys])
        return [None if meta is None else json.loads(meta) for meta in found]

    async def prune(self, bucket: str) -> None:
        name = bucket.encode()
        await self._prune(keys=[b"s3r:i:" + name, b"s3r:x:" + name])

    async def keys_after(
        self, bucket: str, after: bytes, inclusive: bool, upper: bytes | None, count: int
    ) -> list[bytes]:
        """Up to `count` keys from `after` on, below `upper` (exclusive), in byte order."""
        low = (b"[" if inclusive else b"(") + after if after or not inclusive else b"-"
        high = b"(" + upper if upper is not None else b"+"
        return await self.redis.zrangebylex(
            b"s3r:i:" + bucket.encode(), low, high, start=0, num=count
        )


def unreachable_store(exc: RedisError) -> Exception:
    """A Redis failure as the backend errors the proxy already answers: unreachable or slow
    is the client's ServiceUnavailable (`backends/call.unreachable`)."""
    if isinstance(exc, RedisTimeoutError):
        return TimeoutError("redis did not answer in time")
    if isinstance(exc, RedisConnectionError):
        return StoreUnreachable("redis could not be reached")
    return exc
