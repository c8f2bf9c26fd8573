"""Which keys one shard of `lakefs-s3-router migrate --shard I/N` takes.

A key belongs to shard `int(first 8 bytes of sha256(key)) mod N`, the key being the source's
logical key as UTF-8, prefix included. The value depends on nothing but the key and N (not on
Python's per-process `hash()` salt, the listing order or the machine), so N processes started
with `--shard 0/N` … `--shard N-1/N` over the same source split it with no key left out and
none taken twice, whether they list the source or read the same key list.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_SHARD = re.compile(r"(\d{1,9})/(\d{1,9})")


def shard_of(key: str, shards: int) -> int:
    """The shard (0 … shards-1) that `key` belongs to."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % shards


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` of `count`; `Shard(0, 1)` is the whole key space."""

    index: int = 0
    count: int = 1

    def holds(self, key: str) -> bool:
        return self.count == 1 or shard_of(key, self.count) == self.index

    @property
    def whole(self) -> bool:
        return self.count == 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """`I/N` with 0 <= I < N, as `--shard` takes it."""
    match = _SHARD.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"--shard {text!r}: expected I/N, e.g. 0/4 (shard 0 of 4)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text!r}: I must be at least 0 and below N (N at least 1)")
    return Shard(index, count)
