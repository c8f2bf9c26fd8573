"""Key grants hold for every way a request can name a key, not only its path: DeleteObjects
names its keys in the body, ListMultipartUploads lists the keys of uploads in flight. What a
client may not touch is refused before any backend request, and stays in the store."""

from __future__ import annotations

import base64
import contextlib
from urllib.parse import urlencode

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
from lxml import etree
from rawclient import signed_request

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


HIDDEN = ("team/a", "protected/b", "other/c")  # what the csv client may not see
LISTINGS = {
    "ListObjects": ([], "NextMarker", "marker"),
    "ListObjectsV2": ([("list-type", "2")], "NextContinuationToken", "continuation-token"),
    "ListObjectVersions": ([("versions", "")], "NextKeyMarker", "key-marker"),
}


def revealed(body: bytes) -> bytes:
    """The body with every continuation token decoded too: a token is only opaque to clients
    that do not try base64."""
    out = body
    for token in etree.fromstring(body).iter("{*}NextContinuationToken"):
        raw = (token.text or "").encode()
        with contextlib.suppress(ValueError):
            out += base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    return out


@pytest.mark.parametrize("operation", sorted(LISTINGS))
@pytest.mark.parametrize("bucket", [PLAIN, MAPPED])
def test_listing_pages_never_name_a_hidden_key(
    proxy: ProxyProcess, moto_plain: MotoBackend, operation: str, bucket: str
) -> None:
    """One key a page, the way a prober would list: the hidden keys sort between the visible
    ones, and no page, marker or token may name one."""
    stored, prefix = (STORED, "tenant/") if bucket == MAPPED else (PLAIN, "")
    for key in ("other/z.csv", "team/b.csv"):
        moto_plain.client().put_object(Bucket=stored, Key=prefix + key, Body=b"csv")
    base, next_element, parameter = LISTINGS[operation]
    shown: list[str] = []
    query = [*base, ("max-keys", "1")]
    for _ in range(20):
        url = f"{proxy.endpoint}/{bucket}?{urlencode(query)}"
        page = signed_request("GET", url, "AKIACSV", "csv-secret")
        assert page.status == 200, page.body
        for hidden in HIDDEN:
            assert hidden.encode() not in revealed(page.body), (hidden, page.body)
        root = etree.fromstring(page.body)
        shown += [k.text for k in root.iter("{*}Key")]
        if root.findtext("{*}IsTruncated") != "true":
            break
        marker = root.findtext("{*}" + next_element) or shown[-1]
        query = [*base, ("max-keys", "1"), (parameter, marker)]
    assert shown == ["other/z.csv", "team/b.csv"]
