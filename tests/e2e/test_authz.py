"""Per-client authorization through the real proxy: what a client may not do never reaches a
backend; ListBuckets shows only what a client may see; anonymous access only where allowed;
temporary credentials need their session token."""

from __future__ import annotations

import contextlib

import pytest
import urllib3
from botocore.exceptions import ClientError
from harness import (
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    StartProxy,
    boto3_client,
    unique_bucket_name,
)

SHARED = unique_bucket_name("shared")
SECRET_BUCKET = unique_bucket_name("secret")
PUBLIC = unique_bucket_name("public")


@pytest.fixture
def proxy(start_proxy: StartProxy, moto_plain: MotoBackend) -> ProxyProcess:
    direct = moto_plain.client()
    for bucket in (SHARED, SECRET_BUCKET, PUBLIC):
        with contextlib.suppress(ClientError):
            direct.create_bucket(Bucket=bucket)
    direct.put_object(Bucket=SHARED, Key="team/report.csv", Body=b"numbers")
    direct.put_object(Bucket=SECRET_BUCKET, Key="k", Body=b"hidden")
    direct.put_object(Bucket=PUBLIC, Key="index.html", Body=b"<h1>hi</h1>")
    return start_proxy(
        f"""
        backends:
          store:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
        clients:
          - name: reader
            access_key_id: AKIAREADER
            secret_access_key: reader-secret
            allow:
              - {{buckets: ["shared-*"], operations: [read, list]}}
          - name: writer
            access_key_id: AKIAWRITER
            secret_access_key: writer-secret
            allow:
              - {{buckets: ["shared-*"], keys: ["team/*"], operations: [read, write, list]}}
          - name: admin
            access_key_id: AKIAADMIN
            secret_access_key: admin-secret
            deny:
              - {{buckets: ["secret-*"]}}
          - name: csv-only
            access_key_id: AKIACSV
            secret_access_key: csv-secret
            allow:
              - {{buckets: ["shared-*"], keys: ["*.csv"], operations: [read, list]}}
          - name: temporary
            access_key_id: ASIATEMP
            secret_access_key: temp-secret
            session_token: "the-session-token"
        anonymous:
          allow:
            - {{buckets: ["public-*"], operations: [GetObject, HeadObject]}}
        routing:
          default_target: store
        """
    )


def code_of(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


def test_reader_reads_but_never_writes(proxy: ProxyProcess, moto_plain: MotoBackend) -> None:
    reader = proxy.client("AKIAREADER", "reader-secret")
    assert reader.get_object(Bucket=SHARED, Key="team/report.csv")["Body"].read() == b"numbers"
    assert [o["Key"] for o in reader.list_objects_v2(Bucket=SHARED)["Contents"]] == [
        "team/report.csv"
    ]
    mark = moto_plain.request_count()
    assert code_of(lambda: reader.put_object(Bucket=SHARED, Key="x", Body=b"x")) == "AccessDenied"
    assert code_of(lambda: reader.delete_object(Bucket=SHARED, Key="team/report.csv")) == (
        "AccessDenied"
    )
    assert code_of(lambda: reader.get_object(Bucket=SECRET_BUCKET, Key="k")) == "AccessDenied"
    assert moto_plain.requests_since(mark) == []
    buckets = [b["Name"] for b in reader.list_buckets()["Buckets"]]
    assert SHARED in buckets
    assert SECRET_BUCKET not in buckets and PUBLIC not in buckets


def test_writer_is_confined_to_its_keys(proxy: ProxyProcess, moto_plain: MotoBackend) -> None:
    writer = proxy.client("AKIAWRITER", "writer-secret")
    writer.put_object(Bucket=SHARED, Key="team/new.csv", Body=b"new")
    assert moto_plain.client().get_object(Bucket=SHARED, Key="team/new.csv")["Body"].read() == (
        b"new"
    )
    mark = moto_plain.request_count()
    assert code_of(lambda: writer.put_object(Bucket=SHARED, Key="other/x", Body=b"x")) == (
        "AccessDenied"
    )
    assert code_of(lambda: writer.list_objects_v2(Bucket=SHARED)) == "AccessDenied"
    assert (
        code_of(
            lambda: writer.copy_object(
                Bucket=SHARED, Key="team/copy", CopySource={"Bucket": SECRET_BUCKET, "Key": "k"}
            )
        )
        == "AccessDenied"
    )
    assert moto_plain.requests_since(mark) == []
    listed = writer.list_objects_v2(Bucket=SHARED, Prefix="team/")
    assert "team/new.csv" in [o["Key"] for o in listed["Contents"]]


def test_deny_wins_for_an_otherwise_unrestricted_client(proxy: ProxyProcess) -> None:
    admin = proxy.client("AKIAADMIN", "admin-secret")
    assert admin.get_object(Bucket=SHARED, Key="team/report.csv")["Body"].read() == b"numbers"
    assert code_of(lambda: admin.get_object(Bucket=SECRET_BUCKET, Key="k")) == "AccessDenied"
    assert SECRET_BUCKET not in [b["Name"] for b in admin.list_buckets()["Buckets"]]


def test_anonymous_only_where_allowed(proxy: ProxyProcess, moto_plain: MotoBackend) -> None:
    http = urllib3.PoolManager(retries=False)
    page = http.request("GET", f"{proxy.endpoint}/{PUBLIC}/index.html")
    assert (page.status, page.data) == (200, b"<h1>hi</h1>")
    mark = moto_plain.request_count()
    for method, path in (
        ("GET", f"/{SHARED}/team/report.csv"),
        ("PUT", f"/{PUBLIC}/index.html"),
        ("GET", f"/{PUBLIC}"),
    ):
        response = http.request(
            method, f"{proxy.endpoint}{path}", body=b"x" if method == "PUT" else None
        )
        assert response.status == 403, (method, path)
        assert b"<Code>AccessDenied</Code>" in response.data
    assert moto_plain.requests_since(mark) == []


def test_temporary_credentials_need_their_token(proxy: ProxyProcess) -> None:
    good = boto3_client(
        proxy.endpoint, "ASIATEMP", "temp-secret", session_token="the-session-token"
    )
    assert good.get_object(Bucket=SHARED, Key="team/report.csv")["Body"].read() == b"numbers"
    missing = proxy.client("ASIATEMP", "temp-secret")
    assert code_of(lambda: missing.list_buckets()) == "InvalidToken"
    wrong = boto3_client(proxy.endpoint, "ASIATEMP", "temp-secret", session_token="other")
    assert code_of(lambda: wrong.list_buckets()) == "InvalidToken"
    stray = boto3_client(proxy.endpoint, "AKIAADMIN", "admin-secret", session_token="x")
    assert code_of(lambda: stray.list_buckets()) == "InvalidToken"


def test_listings_show_only_the_keys_a_client_may_see(
    proxy: ProxyProcess, moto_plain: MotoBackend
) -> None:
    moto_plain.client().put_object(Bucket=SHARED, Key="team/notes.txt", Body=b"private")
    csv = proxy.client("AKIACSV", "csv-secret")
    for listing in (
        csv.list_objects_v2(Bucket=SHARED),
        csv.list_objects(Bucket=SHARED),
        csv.list_objects_v2(Bucket=SHARED, Prefix="team/"),
    ):
        keys = [o["Key"] for o in listing.get("Contents", [])]
        assert "team/report.csv" in keys
        assert "team/notes.txt" not in keys
    assert code_of(lambda: csv.get_object(Bucket=SHARED, Key="team/notes.txt")) == "AccessDenied"
