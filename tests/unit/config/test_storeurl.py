"""`s3://BACKEND/BUCKET/REST`, read one way for every setting and argument that takes it."""

from __future__ import annotations

import pytest

from s3router_proxy.commands.migratefiles import StoreFile, parse_file_location
from s3router_proxy.config.journal import JournalPlace, journal_place
from s3router_proxy.config.storeurl import StoreUrl, parse_store_url


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("s3://minio/bucket/a/b.csv", StoreUrl("minio", "bucket", "a/b.csv")),
        ("s3://minio/bucket/", StoreUrl("minio", "bucket", "")),
        ("s3://minio/bucket", StoreUrl("minio", "bucket", "")),
        ("s3://minio", StoreUrl("minio", "", "")),
        ("s3:///bucket/k", StoreUrl("", "bucket", "k")),
    ],
)
def test_the_parts_of_a_store_url(text: str, parts: StoreUrl) -> None:
    assert parse_store_url(text) == parts


@pytest.mark.parametrize("text", ["journal.jsonl", "/var/lib/j", "S3://minio/b/k", "s3:/x/y"])
def test_anything_else_is_not_a_store_url(text: str) -> None:
    assert parse_store_url(text) is None


def test_the_journal_and_migrate_read_it_alike() -> None:
    backends = {"minio": object()}
    assert journal_place("s3://minio/journal/mirror") == JournalPlace("minio", "journal", "mirror/")
    assert parse_file_location("s3://minio/lists/keys.csv", backends) == StoreFile(
        "minio", "lists", "keys.csv"
    )
    with pytest.raises(ValueError, match="BACKEND/BUCKET"):
        journal_place("s3://minio")
    with pytest.raises(ValueError, match="expected s3://<backend>/<bucket>/<key>"):
        parse_file_location("s3://minio/lists/", backends)
