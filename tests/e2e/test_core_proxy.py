"""The core proxy end to end: real moto backends, the proxy as a process, real clients.

Backend `lake` is moto with signature checking on (a wrong re-signature fails loudly); backend
`store` is plain moto. Every object written through the proxy is read back directly from the
backend its rule names, and compared by sha256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from harness import (
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    aws_cli,
    boto3_client,
    free_port,
    unique_bucket_name,
    write_config,
)
from rawclient import send, sign, signed_request

CLIENT_KEY = "AKIACLIENTEXAMPLE"
CLIENT_SECRET = "client/secret+with/special=chars"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def proxy(
    moto_auth: MotoBackend, moto_plain: MotoBackend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    directory = tmp_path_factory.mktemp("core-proxy")
    config = write_config(
        directory,
        f"""
        router:
          listen_address: "127.0.0.1:0"
        backends:
          lake:
            endpoint: "{moto_auth.endpoint}"
            access_key_id: "{moto_auth.access_key_id}"
            secret_access_key: "{moto_auth.secret_access_key}"
            read_timeout: 120
          store:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
            read_timeout: 120
          down:
            endpoint: "http://127.0.0.1:{free_port()}"
            access_key_id: "x"
            secret_access_key: "y"
            connect_timeout: 2
        clients:
          - name: "tester"
            access_key_id: "{CLIENT_KEY}"
            secret_access_key: "{CLIENT_SECRET}"
        routing:
          rules:
            - pattern: "lakefs-*"
              target: "lake"
            - pattern: "mixed-*"
              target: "lake"
              operations: ["GET", "HEAD"]
            - pattern: "unreachable-*"
              target: "down"
          default_target: "store"
        """,
    )
    with ProxyProcess(config, directory, log_level="info") as process:
        yield process


@pytest.fixture(scope="module")
def client(proxy: ProxyProcess):
    return proxy.client(CLIENT_KEY, CLIENT_SECRET)


def test_startup_banner_names_backends_and_rules(proxy: ProxyProcess) -> None:
    log = proxy.log_text()
    assert f"listening on http://127.0.0.1:{proxy.port}" in log
    for name in ("lake", "store", "down"):
        assert f"backend {name}:" in log
    assert "3 routing rule(s), default target: store" in log
    assert CLIENT_SECRET not in log


def test_objects_land_in_the_backend_the_rule_names(
    client, moto_auth: MotoBackend, moto_plain: MotoBackend
) -> None:
    lake_bucket = unique_bucket_name("lakefs")
    store_bucket = unique_bucket_name("plain")
    client.create_bucket(Bucket=lake_bucket)
    client.create_bucket(Bucket=store_bucket)
    lake, store = moto_auth.client(), moto_plain.client()
    assert lake_bucket in [b["Name"] for b in lake.list_buckets()["Buckets"]]
    assert store_bucket in [b["Name"] for b in store.list_buckets()["Buckets"]]
    assert lake_bucket not in [b["Name"] for b in store.list_buckets()["Buckets"]]

    for bucket, direct in ((lake_bucket, lake), (store_bucket, store)):
        body = os.urandom(100_000)
        put = client.put_object(Bucket=bucket, Key="main/data.bin", Body=body)
        stored = direct.get_object(Bucket=bucket, Key="main/data.bin")
        assert sha256(stored["Body"].read()) == sha256(body)
        assert stored["ETag"] == put["ETag"]

        got = client.get_object(Bucket=bucket, Key="main/data.bin")
        assert sha256(got["Body"].read()) == sha256(body)
        assert got["ETag"] == put["ETag"]
        assert got["ContentLength"] == len(body)
        head = client.head_object(Bucket=bucket, Key="main/data.bin")
        assert head["ContentLength"] == len(body)
        assert head["ETag"] == put["ETag"]
        assert head["LastModified"] == stored["LastModified"]
        assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]

        client.delete_object(Bucket=bucket, Key="main/data.bin")
        with pytest.raises(ClientError) as caught:
            direct.head_object(Bucket=bucket, Key="main/data.bin")
        assert caught.value.response["Error"]["Code"] == "404"


def test_operations_rule_sends_reads_and_writes_to_different_backends(
    client, moto_auth: MotoBackend, moto_plain: MotoBackend
) -> None:
    bucket = unique_bucket_name("mixed")
    lake, store = moto_auth.client(), moto_plain.client()
    lake.create_bucket(Bucket=bucket)
    store.create_bucket(Bucket=bucket)
    lake.put_object(Bucket=bucket, Key="k", Body=b"from the lake")
    client.put_object(Bucket=bucket, Key="k", Body=b"written through the proxy")  # PUT -> store
    assert store.get_object(Bucket=bucket, Key="k")["Body"].read() == b"written through the proxy"
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"from the lake"  # GET


def test_backend_errors_pass_through(client) -> None:
    bucket = unique_bucket_name("lakefs")
    client.create_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as caught:
        client.get_object(Bucket=bucket, Key="missing")
    assert caught.value.response["Error"]["Code"] == "NoSuchKey"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as caught:
        client.head_object(Bucket=bucket, Key="missing")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as caught:
        client.list_objects_v2(Bucket=unique_bucket_name("lakefs"))
    assert caught.value.response["Error"]["Code"] == "NoSuchBucket"


def test_multipart_upload_25_mib(client, moto_auth: MotoBackend) -> None:
    bucket = unique_bucket_name("lakefs")
    client.create_bucket(Bucket=bucket)
    body = os.urandom(25 * 1024 * 1024)
    config = TransferConfig(
        multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024
    )
    mark = moto_auth.request_count()
    client.upload_fileobj(io.BytesIO(body), bucket, "main/big.bin", Config=config)
    seen = [e.query for e in moto_auth.requests_since(mark)]
    assert sum("partNumber=" in q for q in seen) == 4  # a real multipart upload, 4 parts
    stored = moto_auth.client().get_object(Bucket=bucket, Key="main/big.bin")["Body"].read()
    assert sha256(stored) == sha256(body)


def test_range_get(client) -> None:
    bucket = unique_bucket_name("plain")
    client.create_bucket(Bucket=bucket)
    body = bytes(range(256)) * 40
    client.put_object(Bucket=bucket, Key="r", Body=body)
    part = client.get_object(Bucket=bucket, Key="r", Range="bytes=100-1123")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["ContentRange"] == f"bytes 100-1123/{len(body)}"
    assert part["Body"].read() == body[100:1124]


def test_list_with_prefix_and_delimiter(client) -> None:
    bucket = unique_bucket_name("lakefs")
    client.create_bucket(Bucket=bucket)
    keys = ["main/a.txt", "main/b/c.txt", "main/b/d.txt", "main/e/f.txt", "other/g.txt"]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    page = client.list_objects_v2(Bucket=bucket, Prefix="main/", Delimiter="/")
    assert [o["Key"] for o in page["Contents"]] == ["main/a.txt"]
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["main/b/", "main/e/"]
    paginator = client.get_paginator("list_objects_v2")
    listed = [
        o["Key"]
        for p in paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 2})
        for o in p.get("Contents", [])
    ]
    assert listed == sorted(keys)
    v1 = client.list_objects(Bucket=bucket, Prefix="main/b/")
    assert [o["Key"] for o in v1["Contents"]] == ["main/b/c.txt", "main/b/d.txt"]


@pytest.mark.parametrize(
    "key",
    [
        "with space.txt",
        "plus+sign.txt",
        "percent%20literal.txt",
        "tilde~and:colon.txt",
        "unicode/ünïcødé/日本語.txt",
        "double//slash",
        "dot/./segment",
        "dot/../segment",
        "q?mark#hash&amp=1",
        "k" * 1024,
    ],
)
def test_keys_stay_what_the_client_meant(client, moto_auth: MotoBackend, key: str) -> None:
    bucket = unique_bucket_name("lakefs")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    direct = moto_auth.client()
    assert [o["Key"] for o in direct.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == [key]


def test_presigned_get_and_put_through_a_plain_http_client(client, moto_plain: MotoBackend) -> None:
    bucket = unique_bucket_name("plain")
    client.create_bucket(Bucket=bucket)
    presigner = boto3_client(
        client.meta.endpoint_url, CLIENT_KEY, CLIENT_SECRET, signature_version="s3v4"
    )
    body = os.urandom(50_000)
    put_url = presigner.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "pre signed+key"}, ExpiresIn=300
    )
    assert "X-Amz-Signature=" in put_url
    http = urllib3.PoolManager(retries=False)
    assert http.request("PUT", put_url, body=body).status == 200
    stored = moto_plain.client().get_object(Bucket=bucket, Key="pre signed+key")["Body"].read()
    assert sha256(stored) == sha256(body)

    get_url = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "pre signed+key"}, ExpiresIn=300
    )
    response = http.request("GET", get_url)
    assert response.status == 200
    assert sha256(response.data) == sha256(body)

    tampered = get_url.replace("pre%20signed", "pre%20signeD")
    response = http.request("GET", tampered)
    assert response.status == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in response.data


def test_expired_presigned_url_is_refused(client, moto_plain: MotoBackend) -> None:
    bucket = unique_bucket_name("plain")
    client.create_bucket(Bucket=bucket)
    presigner = boto3_client(
        client.meta.endpoint_url, CLIENT_KEY, CLIENT_SECRET, signature_version="s3v4"
    )
    url = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=1
    )
    time.sleep(2.1)
    mark = moto_plain.request_count()
    response = urllib3.PoolManager(retries=False).request("GET", url)
    assert response.status == 403
    assert b"<Code>AccessDenied</Code>" in response.data
    assert b"expired" in response.data
    assert moto_plain.requests_since(mark) == []


def test_aws_cli_high_level_commands(
    proxy: ProxyProcess, moto_auth: MotoBackend, tmp_path: Path
) -> None:
    bucket = unique_bucket_name("lakefs")
    small = tmp_path / "small file.txt"
    small.write_bytes(b"hello through the proxy\n")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 * 1024 * 1024))  # above aws-cli's 8 MiB multipart threshold

    def cli(*args: str) -> str:
        result = aws_cli(proxy.endpoint, CLIENT_KEY, CLIENT_SECRET, *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return result.stdout

    cli("s3", "mb", f"s3://{bucket}")
    cli("s3", "cp", str(small), f"s3://{bucket}/main/small file.txt")
    cli("s3", "cp", str(big), f"s3://{bucket}/main/big.bin")
    listing = cli("s3", "ls", f"s3://{bucket}/main/")
    assert "small file.txt" in listing
    assert "big.bin" in listing
    direct = moto_auth.client()
    stored = direct.get_object(Bucket=bucket, Key="main/big.bin")["Body"].read()
    assert sha256(stored) == sha256(big.read_bytes())
    cli("s3", "cp", f"s3://{bucket}/main/big.bin", str(tmp_path / "back.bin"))
    assert sha256((tmp_path / "back.bin").read_bytes()) == sha256(big.read_bytes())
    head = cli("s3api", "head-object", "--bucket", bucket, "--key", "main/small file.txt")
    assert '"ContentLength": 24' in head
    cli("s3", "rm", "--recursive", f"s3://{bucket}/main/")
    assert direct.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    cli("s3", "rb", f"s3://{bucket}")


# -- refused requests never reach a backend ------------------------------------------------------


def _counts(*backends: MotoBackend) -> list[int]:
    return [b.request_count() for b in backends]


def test_wrong_secret_is_refused_before_any_backend(
    proxy: ProxyProcess, moto_auth: MotoBackend, moto_plain: MotoBackend
) -> None:
    before = _counts(moto_auth, moto_plain)
    wrong = proxy.client(CLIENT_KEY, "not-the-secret")
    for call in (
        lambda: wrong.list_buckets(),
        lambda: wrong.put_object(Bucket="lakefs-x", Key="k", Body=b"data"),
        lambda: wrong.get_object(Bucket="plain-x", Key="k"),
    ):
        with pytest.raises(ClientError) as caught:
            call()
        assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert "not-the-secret" not in str(caught.value.response)
    assert _counts(moto_auth, moto_plain) == before


def test_auth_failures_carry_the_s3_code(
    proxy: ProxyProcess, moto_auth: MotoBackend, moto_plain: MotoBackend
) -> None:
    before = _counts(moto_auth, moto_plain)
    with pytest.raises(ClientError) as caught:
        proxy.client("AKIAUNKNOWN", CLIENT_SECRET).list_buckets()
    assert caught.value.response["Error"]["Code"] == "InvalidAccessKeyId"

    url = f"{proxy.endpoint}/plain-x/k"
    anonymous = send("GET", url, headers={})
    assert (anonymous.status, anonymous.error_code) == (403, "AccessDenied")
    assert anonymous.headers["Content-Type"] == "application/xml"
    assert b"<RequestId>" in anonymous.body and b"<Resource>/plain-x/k</Resource>" in anonymous.body

    skewed = signed_request(
        "GET",
        url,
        CLIENT_KEY,
        CLIENT_SECRET,
        when=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16),
    )
    assert (skewed.status, skewed.error_code) == (403, "RequestTimeTooSkewed")
    ok_skew = signed_request(
        "GET",
        f"{proxy.endpoint}/",
        CLIENT_KEY,
        CLIENT_SECRET,
        when=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=14),
    )
    assert ok_skew.status == 200
    headers = sign("GET", url, CLIENT_KEY, CLIENT_SECRET)
    headers["x-amz-meta-smuggled"] = "yes"
    unsigned = send("GET", url, headers=headers)
    assert (unsigned.status, unsigned.error_code) == (403, "AccessDenied")
    # Only the accepted ListBuckets reached the backends (each lists its buckets once).
    assert _counts(moto_auth, moto_plain) == [before[0] + 1, before[1] + 1]


def test_payload_hash_mismatch_commits_nothing(
    proxy: ProxyProcess, client, moto_auth: MotoBackend
) -> None:
    bucket = unique_bucket_name("lakefs")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="old", Body=b"the old object")
    direct = moto_auth.client()
    body = os.urandom(3 * 1024 * 1024)
    corrupted = bytearray(body)
    corrupted[-1] ^= 0xFF
    for key in ("new", "old"):
        response = signed_request(
            "PUT",
            f"{proxy.endpoint}/{bucket}/{key}",
            CLIENT_KEY,
            CLIENT_SECRET,
            body=bytes(corrupted),
            payload_hash=sha256(body),
        )
        assert (response.status, response.error_code) == (400, "XAmzContentSHA256Mismatch")
    with pytest.raises(ClientError):
        direct.head_object(Bucket=bucket, Key="new")
    assert direct.get_object(Bucket=bucket, Key="old")["Body"].read() == b"the old object"
    # The same request with the right body goes through.
    response = signed_request(
        "PUT", f"{proxy.endpoint}/{bucket}/new", CLIENT_KEY, CLIENT_SECRET, body=body
    )
    assert response.status == 200
    assert sha256(direct.get_object(Bucket=bucket, Key="new")["Body"].read()) == sha256(body)


def test_unreachable_backend_is_a_fast_service_unavailable(client) -> None:
    started = time.monotonic()
    with pytest.raises(ClientError) as caught:
        client.get_object(Bucket="unreachable-bucket", Key="k")
    assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert time.monotonic() - started < 5


@pytest.mark.slow
def test_one_gib_streams_with_bounded_memory(
    proxy: ProxyProcess, client, moto_plain: MotoBackend, tmp_path: Path
) -> None:
    bucket = unique_bucket_name("plain")
    client.create_bucket(Bucket=bucket)
    size = 1024 * 1024 * 1024
    path = tmp_path / "one-gib.bin"
    digest = hashlib.sha256()
    block = os.urandom(1024 * 1024)
    with path.open("wb") as out:
        for index in range(size // len(block)):
            piece = index.to_bytes(8, "big") + block[8:]
            digest.update(piece)
            out.write(piece)
    key = f"big-{uuid.uuid4().hex}"
    big_client = proxy.client(CLIENT_KEY, CLIENT_SECRET, read_timeout=300)
    with path.open("rb") as source:
        big_client.put_object(Bucket=bucket, Key=key, Body=source)
    path.unlink()
    got = big_client.get_object(Bucket=bucket, Key=key)
    assert got["ContentLength"] == size
    back = hashlib.sha256()
    for piece in got["Body"].iter_chunks(1024 * 1024):
        back.update(piece)
    assert back.hexdigest() == digest.hexdigest()
    peak = proxy.peak_rss_mib()
    print(f"\nproxy peak RSS after streaming 1 GiB up and down: {peak:.1f} MiB")
    assert peak < 150
    moto_plain.client().delete_object(Bucket=bucket, Key=key)
