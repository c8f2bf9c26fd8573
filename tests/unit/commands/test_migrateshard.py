"""The shard a key belongs to: pinned values (a change would split a running migration's key
space differently between its old and new processes), an even spread, and `--shard I/N`."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from s3router_proxy.commands.migrateshard import Shard, parse_shard, shard_of


def test_shard_values_are_pinned() -> None:
    # first 8 bytes of sha256(key) as a big-endian integer, mod N
    assert [shard_of(key, 3) for key in ("a", "b", "dir/key.csv", "é", "")] == [
        int.from_bytes(hashlib.sha256(k.encode()).digest()[:8], "big") % 3
        for k in ("a", "b", "dir/key.csv", "é", "")
    ]
    assert [shard_of(key, 7) for key in ("a", "b", "dir/key.csv", "é", "")] == [4, 0, 0, 3, 1]
    assert shard_of("logs/2024/01/01/part-00000.parquet", 1000) == 924


def test_every_key_is_in_exactly_one_shard() -> None:
    shards = [Shard(i, 5) for i in range(5)]
    for n in range(2000):
        key = f"k/{n}"
        assert sum(shard.holds(key) for shard in shards) == 1


def test_keys_spread_evenly() -> None:
    counts = Counter(shard_of(f"data/{n:06d}.bin", 8) for n in range(80_000))
    assert set(counts) == set(range(8))
    assert all(abs(count - 10_000) < 400 for count in counts.values()), counts  # ~4 sigma


def test_one_shard_is_everything() -> None:
    assert Shard().whole and Shard().holds("anything")
    assert all(shard_of(f"{n}", 1) == 0 for n in range(100))


@pytest.mark.parametrize(
    "text, shard", [("0/1", Shard(0, 1)), ("2/3", Shard(2, 3)), (" 9/10 ", Shard(9, 10))]
)
def test_parse_shard(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard
    assert str(shard) == text.strip()


@pytest.mark.parametrize("text", ["3/3", "-1/3", "1/0", "1", "a/3", "1/3/4", "", "$(INDEX)/4"])
def test_parse_shard_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="--shard"):
        parse_shard(text)
