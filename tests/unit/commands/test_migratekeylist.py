"""Key lists read from local files, as `--keys` reads them: gzip (several members, cut
anywhere), a byte-order mark, a local inventory's data files found where `aws s3 sync` puts
them, and errors that name the file. Lists on a store: tests/e2e/test_migrate_shards.py."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path

import pytest

from s3router_proxy.commands import migratefiles
from s3router_proxy.commands.migratefiles import StoreFile, parse_file_location
from s3router_proxy.commands.migratekeylist import data_file, listed_keys
from s3router_proxy.s3.errors import S3Error


def keys_of(path: Path) -> list[str]:
    async def collect() -> list[str]:
        return [key async for key in listed_keys({}, path)]

    return asyncio.run(collect())


def test_a_batch_csv_gzipped_in_several_members_read_in_small_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migratefiles, "PIECE", 7)  # pieces and members cut mid-record
    lines = [f"bucket,dir/key+{n}%2B.csv\n".encode() for n in range(50)]
    path = tmp_path / "keys.csv.gz"
    path.write_bytes(gzip.compress(b"".join(lines[:20])) + gzip.compress(b"".join(lines[20:])))
    assert keys_of(path) == [f"dir/key {n}+.csv" for n in range(50)]


def test_a_byte_order_mark_and_bare_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.csv"
    path.write_bytes('\ufeffa%20b\r\n"c,d"\r\n'.encode())
    assert keys_of(path) == ["a b", "c,d"]


def test_a_local_inventory_finds_its_data_files(tmp_path: Path) -> None:
    synced = tmp_path / "inventory-bucket"
    data_key = "src/daily/data/part-0.csv.gz"
    (synced / "src/daily/data").mkdir(parents=True)
    (synced / data_key).write_bytes(gzip.compress(b'"src","a%2Fb","true"\n"src","old","false"\n'))
    manifest = synced / "src/daily/2026-12-01T01-00Z/manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(
        json.dumps(
            {
                "fileFormat": "CSV",
                "fileSchema": "Bucket, Key, IsLatest",
                "files": [{"key": data_key, "size": 1, "MD5checksum": "x"}],
            }
        )
    )
    assert data_file(manifest, data_key) == synced / data_key
    assert keys_of(manifest) == ["a/b"]
    # Beside the manifest by name, when not found at its key.
    alone = tmp_path / "alone" / "manifest.json"
    assert data_file(alone, "x/y/part-1.csv.gz") == tmp_path / "alone" / "part-1.csv.gz"
    assert data_file(StoreFile("s3", "inv", "a/manifest.json"), "b/c.gz") == StoreFile(
        "s3", "inv", "b/c.gz"
    )


def test_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(gzip.compress(b"bucket,key\n")[:-6])
    with pytest.raises(S3Error, match=r"broken\.csv\.gz: the gzip data ends early"):
        keys_of(broken)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"bucket,%FF\n")
    with pytest.raises(ValueError, match=r"key list .*bad\.csv"):
        keys_of(bad)
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"fileFormat": "ORC", "fileSchema": "Key", "files": []}')
    with pytest.raises(ValueError, match=r"manifest\.json: .*only CSV"):
        keys_of(manifest)


def test_store_locations_name_a_configured_backend() -> None:
    assert parse_file_location("s3://s3/bucket/a/b.csv", {"s3": 1}) == StoreFile(
        "s3", "bucket", "a/b.csv"
    )
    assert parse_file_location("local/keys.csv", {}) == Path("local/keys.csv")
    with pytest.raises(ValueError, match="no backend 'nope'"):
        parse_file_location("s3://nope/bucket/key", {"s3": 1})
    with pytest.raises(ValueError, match="expected s3://<backend>/<bucket>/<key>"):
        parse_file_location("s3://s3/bucket", {"s3": 1})
