"""Key grants hold for every way a request can name a key, not only its path: DeleteObjects
names its keys in the body, ListMultipartUploads lists the keys of uploads in flight. What a
client may not touch is refused before any backend request, and stays in the store."""

from __future__ import annotations

import contextlib

import pytest
from botocore.exceptions import ClientError
from harness import (
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    StartProxy,
    unique_bucket_name,
)

PLAIN = unique_bucket_name("grants")  # forwarded as it is: one backend, names unchanged
MAPPED = unique_bucket_name("grantsmap")  # answered by the fan-out path: names mapped
STORED = unique_bucket_name("grantsstore")  # where MAPPED's keys live, under "tenant/"
KEYS = ("team/a", "protected/b", "other/c")


@pytest.fixture
def proxy(start_proxy: StartProxy, moto_plain: MotoBackend) -> ProxyProcess:
    direct = moto_plain.client()
    for bucket in (PLAIN, STORED):
        with contextlib.suppress(ClientError):
            direct.create_bucket(Bucket=bucket)
    for key in KEYS:
        direct.put_object(Bucket=PLAIN, Key=key, Body=key.encode())
        direct.put_object(Bucket=STORED, Key=f"tenant/{key}", Body=key.encode())
    return start_proxy(
        f"""
        backends:
          store:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
        clients:
          - name: guarded
            access_key_id: AKIAGUARDED
            secret_access_key: guarded-secret
            deny:
              - {{buckets: ["{PLAIN}", "{MAPPED}"], keys: ["protected/*"], operations: [delete]}}
          - name: team
            access_key_id: AKIATEAM
            secret_access_key: team-secret
            allow:
              - {{buckets: ["{PLAIN}", "{MAPPED}"], keys: ["team/*"],
                  operations: [read, write, list, delete]}}
          - name: csv
            access_key_id: AKIACSV
            secret_access_key: csv-secret
            allow:
              - {{buckets: ["{PLAIN}", "{MAPPED}"], keys: ["*.csv"], operations: [read, list]}}
        routing:
          rules:
            - {{pattern: "{MAPPED}", target: store, mapped_bucket: "{STORED}",
                mapped_prefix: tenant}}
          default_target: store
        """
    )


def stored_keys(moto: MotoBackend, bucket: str, prefix: str = "") -> list[str]:
    listing = moto.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"][len(prefix) :] for o in listing.get("Contents", []))


def delete_objects(client, bucket: str, keys: list[str]) -> dict:
    return client.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": False}
    )


@pytest.mark.parametrize(("bucket", "prefix"), [(PLAIN, ""), (MAPPED, "tenant/")])
def test_delete_objects_cannot_name_a_denied_key(
    proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str, prefix: str
) -> None:
    stored = STORED if bucket == MAPPED else PLAIN
    guarded = proxy.client("AKIAGUARDED", "guarded-secret")
    with pytest.raises(ClientError, match="protected/b") as caught:
        mark = moto_plain.request_count()
        delete_objects(guarded, bucket, ["other/c", "protected/b"])
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    assert moto_plain.requests_since(mark) == []
    assert stored_keys(moto_plain, stored, prefix) == sorted(KEYS)
    # The same client's own DeleteObject is refused the same way (the grant itself works).
    with pytest.raises(ClientError) as single:
        guarded.delete_object(Bucket=bucket, Key="protected/b")
    assert single.value.response["Error"]["Code"] == "AccessDenied"
    # Keys outside the deny are deleted as before.
    answer = delete_objects(guarded, bucket, ["other/c"])
    assert [d["Key"] for d in answer.get("Deleted", [])] == ["other/c"]
    assert stored_keys(moto_plain, stored, prefix) == ["protected/b", "team/a"]


@pytest.mark.parametrize(("bucket", "prefix"), [(PLAIN, ""), (MAPPED, "tenant/")])
def test_delete_objects_stays_inside_a_key_grant(
    proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str, prefix: str
) -> None:
    stored = STORED if bucket == MAPPED else PLAIN
    team = proxy.client("AKIATEAM", "team-secret")
    mark = moto_plain.request_count()
    with pytest.raises(ClientError) as caught:
        delete_objects(team, bucket, ["team/a", "other/c"])
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    assert moto_plain.requests_since(mark) == []
    assert stored_keys(moto_plain, stored, prefix) == sorted(KEYS)
    # A client confined to its keys can still delete them in bulk (aws s3 rm --recursive).
    answer = delete_objects(team, bucket, ["team/a"])
    assert [d["Key"] for d in answer.get("Deleted", [])] == ["team/a"]
    assert stored_keys(moto_plain, stored, prefix) == ["other/c", "protected/b"]


@pytest.mark.parametrize(("bucket", "prefix"), [(PLAIN, ""), (MAPPED, "tenant/")])
def test_upload_listings_show_only_the_keys_a_client_may_see(
    proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str, prefix: str
) -> None:
    stored = STORED if bucket == MAPPED else PLAIN
    direct = moto_plain.client()
    uploads = {
        key: direct.create_multipart_upload(Bucket=stored, Key=prefix + key)["UploadId"]
        for key in ("team/report.csv", "team/salaries.bin")
    }
    try:
        csv = proxy.client("AKIACSV", "csv-secret")
        listed = csv.list_multipart_uploads(Bucket=bucket)
        assert [u["Key"] for u in listed.get("Uploads", [])] == ["team/report.csv"]
        assert b"salaries" not in str(listed).encode()
    finally:
        for key, upload_id in uploads.items():
            direct.abort_multipart_upload(Bucket=stored, Key=prefix + key, UploadId=upload_id)
