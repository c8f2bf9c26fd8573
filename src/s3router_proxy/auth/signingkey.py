"""SigV4 signing keys and signatures, for both directions.

A signing key is four chained HMACs of the secret; it is kept, per secret, day, region and
service, in a bounded cache with its HMAC pads already hashed, so a signature costs two copies
of primed SHA-256 states instead of a fresh HMAC. The cache is keyed by a fingerprint of the
secret, never the secret itself.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
from typing import Protocol

from .canonical import utf8

ALGORITHM = "AWS4-HMAC-SHA256"


class _Hash(Protocol):
    def copy(self) -> _Hash: ...
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...


# A signing key with its HMAC pads already hashed: HMAC(key, m) = H(opad || H(ipad || m)), and
# copying two primed SHA-256 states is several times cheaper than a fresh HMAC per signature.
PrimedKey = tuple[bytes, _Hash, _Hash]
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
_KEY_CACHE: dict[tuple[bytes, str, str, str], PrimedKey] = {}
_KEY_CACHE_SIZE = 1024


def _derive(secret: str, date: str, region: str, service: str) -> PrimedKey:
    key = hmac.digest(("AWS4" + secret).encode("utf-8"), date.encode("utf-8"), "sha256")
    for part in (region, service, "aws4_request"):
        key = hmac.digest(key, part.encode("utf-8"), "sha256")
    block = key.ljust(64, b"\0")  # a 32-byte key fits SHA-256's 64-byte block as is
    return key, hashlib.sha256(block.translate(_IPAD)), hashlib.sha256(block.translate(_OPAD))


@functools.lru_cache(maxsize=256)
def _fingerprint(secret: str) -> bytes:
    # Secrets are few (one per client and backend): hash each once, not twice per request.
    return hashlib.sha256(secret.encode("utf-8")).digest()


def cached_key(secret: str, date: str, region: str, service: str) -> PrimedKey:
    """The derived key from a bounded LRU cache keyed by a SHA-256 fingerprint of the secret.

    The fingerprint makes a rotated secret miss the cache, and keeps the raw secret out of
    anything that lists the cache's keys.
    """
    cache_key = (_fingerprint(secret), date, region, service)
    entry = _KEY_CACHE.pop(cache_key, None)
    if entry is None:
        entry = _derive(secret, date, region, service)
        if len(_KEY_CACHE) >= _KEY_CACHE_SIZE:
            # The oldest entry; another thread may have taken it already.
            with contextlib.suppress(KeyError, StopIteration, RuntimeError):
                del _KEY_CACHE[next(iter(_KEY_CACHE))]
    _KEY_CACHE[cache_key] = entry  # re-inserting moves the entry to the young end
    return entry


def signing_key(secret: str, date: str, region: str, service: str = "s3") -> bytes:
    """The SigV4 signing key (four chained HMACs), cached; see `cached_key`."""
    return cached_key(secret, date, region, service)[0]


def string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    """`AWS4-HMAC-SHA256`, the timestamp, the credential scope and the canonical request's hash."""
    digest = hashlib.sha256(utf8(canonical_request)).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def signature(key: PrimedKey, string_to_sign: str) -> str:
    """Hex HMAC-SHA256 of the string to sign, from the key's primed pad states."""
    inner = key[1].copy()
    inner.update(string_to_sign.encode("utf-8"))
    outer = key[2].copy()
    outer.update(inner.digest())
    return outer.hexdigest()
