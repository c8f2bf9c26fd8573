"""Key lists as AWS writes them: an S3 Inventory manifest and its CSV records, a Batch
Operations CSV; URL-encoded keys, quoted fields, records cut anywhere by the arrival of bytes."""

from __future__ import annotations

import json

import pytest

from s3router_proxy.commands.migratekeys import (
    InventoryColumns,
    RecordReader,
    batch_key,
    decode_key,
    inventory_key,
    parse_manifest,
)

MANIFEST = {
    "sourceBucket": "example-source-bucket",
    "destinationBucket": "arn:aws:s3:::example-inventory-destination-bucket",
    "version": "2016-11-30",
    "creationTimestamp": "1514944800000",
    "fileFormat": "CSV",
    "fileSchema": "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag",
    "files": [
        {
            "key": "example-source-bucket/config-ID/data/939c6d46.csv.gz",
            "size": 2147483647,
            "MD5checksum": "f11166069f1990abeb9c97ace9cdfabc",
        }
    ],
}


def test_manifest_names_columns_and_data_files() -> None:
    manifest = parse_manifest(json.dumps(MANIFEST).encode())
    assert manifest.source_bucket == "example-source-bucket"
    assert manifest.columns[:4] == ("Bucket", "Key", "VersionId", "IsLatest")
    assert manifest.files == ("example-source-bucket/config-ID/data/939c6d46.csv.gz",)
    assert InventoryColumns.of(manifest) == InventoryColumns(1, 3, 4)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"fileFormat": "Parquet"}, "only CSV"),
        ({"fileSchema": "Bucket, Size"}, "no Key column"),
        ({"files": [{"size": 1}]}, "needs a key"),
        ({"files": None}, "files list"),
    ],
)
def test_a_manifest_migrate_cannot_read_says_why(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_manifest(json.dumps({**MANIFEST, **change}).encode())
    with pytest.raises(ValueError, match="not an S3 Inventory"):
        parse_manifest(b"[1, 2]")


def test_keys_are_url_decoded_as_aws_encodes_them() -> None:
    assert decode_key("a+b%2Bc%20d") == "a b+c d"
    assert decode_key("caf%C3%A9/%E6%97%A5.txt") == "café/日.txt"
    assert decode_key("a%2Fb%2C%22q%22") == 'a/b,"q"'
    with pytest.raises(UnicodeDecodeError):
        decode_key("%FF")


def test_inventory_records_leave_out_old_versions_and_delete_markers() -> None:
    columns = InventoryColumns.of(parse_manifest(json.dumps(MANIFEST).encode()))
    current = ["b", "dir/my+file%2B1.csv", "v1", "true", "false", "7"]
    assert inventory_key(current, columns) == "dir/my file+1.csv"
    assert inventory_key(["b", "k", "v0", "false", "false", "7"], columns) is None
    assert inventory_key(["b", "k", "v2", "true", "true", ""], columns) is None
    # An inventory of current versions only has no IsLatest column at all.
    assert inventory_key(["b", "k%3Dv"], InventoryColumns(1)) == "k=v"
    with pytest.raises(ValueError, match="has no Key"):
        inventory_key(["b"], columns)


def test_batch_records_are_key_or_bucket_key_version() -> None:
    assert batch_key(["a%20b"]) == "a b"
    assert batch_key(["bucket", "dir/x%2Cy"]) == "dir/x,y"
    assert batch_key(["bucket", "k", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"]) == "k"
    with pytest.raises(ValueError, match="4 fields"):
        batch_key(["a", "b", "c", "d"])


def _fed(text: str, size: int) -> list[list[str]]:
    reader = RecordReader()
    records = []
    for start in range(0, len(text), size):
        records += reader.feed(text[start : start + size])
    return records + reader.close()


TEXT = (
    '"bucket","plain","v","true"\n'
    '"bucket","with,comma","","true"\r\n'
    '"bucket","quote ""inside""\nand a line break","","true"\n'
    "\n"
    "bucket,unquoted,,false"
)
RECORDS = [
    ["bucket", "plain", "v", "true"],
    ["bucket", "with,comma", "", "true"],
    ["bucket", 'quote "inside"\nand a line break', "", "true"],
    ["bucket", "unquoted", "", "false"],
]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_records_are_the_same_however_the_text_arrives(size: int) -> None:
    assert _fed(TEXT, size) == RECORDS


def test_a_quoted_field_that_never_ends_is_an_error() -> None:
    reader = RecordReader()
    assert reader.feed('b,"open\nstill open\n') == []
    with pytest.raises(ValueError, match="quoted field"):
        reader.close()
