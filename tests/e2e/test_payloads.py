"""Every payload framing a real client sends, through the proxy into real backends.

aws-chunked bodies (signed, signed with trailer, unsigned with trailer) are decoded and verified
by the proxy; a corrupted byte anywhere means the client gets the S3 error and the backend
holds nothing new. Backend `lake` takes checksum trailers as sent (`checksum_trailers: true`),
backend `store` gets plain bodies. boto3 runs with its current defaults over plain HTTP (hex
payload hash plus a CRC32 header) and over HTTPS (aws-chunked with a CRC trailer).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import trustme
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError
from harness import (
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    unique_bucket_name,
    write_config,
)
from rawclient import aws_chunked, send, sign

from s3router_proxy.auth.signingkey import signing_key
from s3router_proxy.s3.checksums import new_checksum

KEY, SECRET = "AKIAPAYLOADS", "payload-secret"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key, ca_file = directory / "chain.pem", directory / "key.pem", directory / "ca.pem"
    cert.private_key_pem.write_to_path(str(key))
    cert.cert_chain_pems[0].write_to_path(str(chain))
    ca.cert_pem.write_to_path(str(ca_file))
    return chain, key, ca_file


@pytest.fixture(scope="module")
def proxy(
    moto_auth: MotoBackend,
    moto_plain: MotoBackend,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyProcess]:
    directory = tmp_path_factory.mktemp("payload-proxy")
    config = write_config(
        directory,
        f"""
        backends:
          lake:
            endpoint: "{moto_auth.endpoint}"
            access_key_id: "{moto_auth.access_key_id}"
            secret_access_key: "{moto_auth.secret_access_key}"
            checksum_trailers: true
          store:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
        clients:
          - {{name: payloads, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          rules:
            - {{pattern: "trail-*", target: lake}}
          default_target: store
        """,
    )
    with ProxyProcess(config, directory, log_level="info") as process:
        yield process


@pytest.fixture(scope="module")
def tls_proxy(
    moto_plain: MotoBackend,
    tls_files: tuple[Path, Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyProcess]:
    chain, key, _ = tls_files
    directory = tmp_path_factory.mktemp("tls-proxy")
    config = write_config(
        directory,
        f"""
        router:
          tls: {{cert_file: "{chain}", key_file: "{key}"}}
        backends:
          store:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
        clients:
          - {{name: payloads, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          default_target: store
        """,
    )
    with ProxyProcess(config, directory, log_level="info") as process:
        process.endpoint = process.endpoint.replace("http://", "https://")
        yield process


def backend_for(bucket: str, moto_auth: MotoBackend, moto_plain: MotoBackend) -> MotoBackend:
    return moto_auth if bucket.startswith("trail-") else moto_plain


def streaming_put(
    proxy: ProxyProcess,
    bucket: str,
    key: str,
    data: bytes,
    *,
    payload: str,
    trailer: str | None = None,
    corrupt_at: int | None = None,
    chunk_size: int = 64 * 1024,
    claimed_length: int | None = None,
) -> tuple[int, str | None]:
    """PUT `data` as aws-chunked with the given x-amz-content-sha256 mode; (status, code).

    `claimed_length` is a signed x-amz-decoded-content-length other than the data's."""
    url = f"{proxy.endpoint}/{bucket}/{key}"
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(
            len(data) if claimed_length is None else claimed_length
        ),
    }
    trailers: dict[str, str] = {}
    if trailer:
        checksum = new_checksum(trailer)
        checksum.update(data)
        name = f"x-amz-checksum-{trailer.lower()}"
        headers["x-amz-trailer"] = name
        trailers[name] = checksum.b64digest()
    signed = payload.startswith("STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    # The framed length depends only on sizes, so it is known before signing.
    dummy = aws_chunked(
        data,
        chunk_size=chunk_size,
        seed="0" * 64 if signed else None,
        signing_key=b"k" if signed else None,
        trailers=trailers,
    )
    extra = 0
    if payload.endswith("-TRAILER") and signed:
        extra = len("x-amz-trailer-signature:") + 64 + 2
    headers["Content-Length"] = str(len(dummy) + extra)
    all_headers = sign("PUT", url, KEY, SECRET, headers=headers, payload_hash=payload)
    body = dummy
    if signed:
        seed = re.search(r"Signature=([0-9a-f]{64})", all_headers["Authorization"])[1]  # type: ignore[index]
        amz_date = all_headers["X-Amz-Date"]
        scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
        key_bytes = signing_key(SECRET, amz_date[:8], "us-east-1")
        body = aws_chunked(
            data,
            chunk_size=chunk_size,
            seed=seed,
            signing_key=key_bytes,
            amz_date=amz_date,
            scope=scope,
        )
        if payload.endswith("-TRAILER"):
            final_signature = re.findall(rb"chunk-signature=([0-9a-f]{64})", body)[-1].decode()
            trailer_lines = "".join(f"{n}:{v}\n" for n, v in trailers.items())
            import hmac

            to_sign = "\n".join(
                [
                    "AWS4-HMAC-SHA256-TRAILER",
                    amz_date,
                    scope,
                    final_signature,
                    hashlib.sha256(trailer_lines.encode()).hexdigest(),
                ]
            )
            trailer_signature = hmac.new(key_bytes, to_sign.encode(), hashlib.sha256).hexdigest()
            body = (
                body[:-2]
                + b"".join(f"{n}:{v}\r\n".encode() for n, v in trailers.items())
                + f"x-amz-trailer-signature:{trailer_signature}\r\n\r\n".encode()
            )
    assert len(body) == int(headers["Content-Length"])
    if corrupt_at is not None:
        mutable = bytearray(body)
        # Flip a payload byte: skip the first chunk's header line.
        offset = body.index(b"\r\n") + 2 + corrupt_at
        mutable[offset] ^= 0x01
        body = bytes(mutable)
    response = send("PUT", url, headers=all_headers, body=body)
    return response.status, response.error_code


MODES = [
    ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", "CRC32"),
    ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", "CRC32C"),
    ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", "CRC64NVME"),
    ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", "SHA256"),
    ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", None),
    ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", "CRC32C"),
    ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", "SHA1"),
]


@pytest.mark.parametrize("prefix", ["trail", "plain"])
@pytest.mark.parametrize(("payload", "trailer"), MODES)
def test_aws_chunked_bodies_are_stored_decoded(
    proxy: ProxyProcess,
    moto_auth: MotoBackend,
    moto_plain: MotoBackend,
    prefix: str,
    payload: str,
    trailer: str | None,
) -> None:
    bucket = unique_bucket_name(prefix)
    backend = backend_for(bucket, moto_auth, moto_plain)
    backend.client().create_bucket(Bucket=bucket)
    data = os.urandom(200_000)
    status, code = streaming_put(proxy, bucket, "obj", data, payload=payload, trailer=trailer)
    assert (status, code) == (200, None)
    stored = backend.client().get_object(Bucket=bucket, Key="obj")["Body"].read()
    assert sha256(stored) == sha256(data)


@pytest.mark.parametrize("prefix", ["trail", "plain"])
@pytest.mark.parametrize(
    ("payload", "trailer", "code"),
    [
        ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", "CRC32", "BadDigest"),
        ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", None, "SignatureDoesNotMatch"),
        ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", "CRC32C", "SignatureDoesNotMatch"),
    ],
)
def test_one_corrupted_byte_commits_nothing(
    proxy: ProxyProcess,
    moto_auth: MotoBackend,
    moto_plain: MotoBackend,
    prefix: str,
    payload: str,
    trailer: str | None,
    code: str,
) -> None:
    bucket = unique_bucket_name(prefix)
    backend = backend_for(bucket, moto_auth, moto_plain)
    direct = backend.client()
    direct.create_bucket(Bucket=bucket)
    direct.put_object(Bucket=bucket, Key="old", Body=b"old bytes")
    data = os.urandom(300_000)
    for key, corrupt_at in (("new", 10), ("old", 150_000), ("last", len(data) - 70_000)):
        status, error = streaming_put(
            proxy, bucket, key, data, payload=payload, trailer=trailer, corrupt_at=corrupt_at
        )
        assert error == code, (key, status, error)
    listed = [o["Key"] for o in direct.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert listed == ["old"]
    assert direct.get_object(Bucket=bucket, Key="old")["Body"].read() == b"old bytes"


@pytest.mark.parametrize(("payload", "trailer"), [MODES[0], MODES[4], MODES[5]])
@pytest.mark.parametrize("lie", [-1, +1, -70_000])
def test_a_decoded_length_lie_commits_nothing(
    proxy: ProxyProcess, moto_plain: MotoBackend, payload: str, trailer: str | None, lie: int
) -> None:
    """x-amz-decoded-content-length is signed; a body that does not carry exactly that many
    bytes (fewer, or more: a longer object than the client announced) is refused whole."""
    bucket = unique_bucket_name("plain")
    direct = moto_plain.client()
    direct.create_bucket(Bucket=bucket)
    direct.put_object(Bucket=bucket, Key="old", Body=b"old bytes")
    data = os.urandom(300_000)
    for key in ("new", "old"):
        status, error = streaming_put(
            proxy,
            bucket,
            key,
            data,
            payload=payload,
            trailer=trailer,
            claimed_length=len(data) + lie,
        )
        assert (status, error) == (400, "IncompleteBody"), key
    listed = [o["Key"] for o in direct.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert listed == ["old"]
    assert direct.get_object(Bucket=bucket, Key="old")["Body"].read() == b"old bytes"


def test_checksum_and_md5_headers_are_verified_by_the_proxy(
    proxy: ProxyProcess, moto_plain: MotoBackend
) -> None:
    bucket = unique_bucket_name("plain")
    direct = moto_plain.client()
    direct.create_bucket(Bucket=bucket)
    body = os.urandom(100_000)
    url = f"{proxy.endpoint}/{bucket}/checked"
    wrong_crc = crc32_b64(body + b"x")
    wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    for headers, code in (
        ({"x-amz-checksum-crc32": wrong_crc}, "BadDigest"),
        ({"Content-MD5": wrong_md5}, "BadDigest"),
        ({"Content-MD5": "not base64!"}, "InvalidDigest"),
        ({"x-amz-checksum-crc32": "AAAA"}, "InvalidRequest"),
    ):
        signed = sign(
            "PUT", url, KEY, SECRET, headers=headers, body=body, payload_hash="UNSIGNED-PAYLOAD"
        )
        response = send("PUT", url, headers=signed, body=body)
        assert (response.status, response.error_code) == (400, code), headers
    assert direct.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    good = {
        "x-amz-checksum-crc32": crc32_b64(body),
        "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
    }
    signed = sign("PUT", url, KEY, SECRET, headers=good, body=body, payload_hash="UNSIGNED-PAYLOAD")
    assert send("PUT", url, headers=signed, body=body).status == 200
    assert sha256(direct.get_object(Bucket=bucket, Key="checked")["Body"].read()) == sha256(body)


@pytest.mark.parametrize("calculation", ["when_supported", "when_required"])
def test_boto3_over_http_with_both_checksum_settings(
    proxy: ProxyProcess, moto_plain: MotoBackend, calculation: str
) -> None:
    client = proxy.client(KEY, SECRET, request_checksum_calculation=calculation)
    bucket = unique_bucket_name("plain")
    client.create_bucket(Bucket=bucket)
    body = os.urandom(300_000)
    client.put_object(Bucket=bucket, Key="one", Body=body)
    client.upload_fileobj(
        io.BytesIO(body * 40),
        bucket,
        "multi",
        Config=TransferConfig(
            multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024
        ),
    )
    direct = moto_plain.client()
    assert sha256(direct.get_object(Bucket=bucket, Key="one")["Body"].read()) == sha256(body)
    assert sha256(direct.get_object(Bucket=bucket, Key="multi")["Body"].read()) == sha256(body * 40)
    if calculation == "when_supported":
        got = client.get_object(Bucket=bucket, Key="one", ChecksumMode="ENABLED")
        assert got["ChecksumCRC32"] == crc32_b64(body)
        assert sha256(got["Body"].read()) == sha256(body)


def test_boto3_over_https_uses_trailers_and_works(
    tls_proxy: ProxyProcess, tls_files: tuple[Path, Path, Path], moto_plain: MotoBackend
) -> None:
    _, _, ca_file = tls_files
    client = boto3.session.Session(
        aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name="us-east-1"
    ).client(
        "s3",
        endpoint_url=tls_proxy.endpoint,
        verify=str(ca_file),
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
    )
    bucket = unique_bucket_name("tls")
    client.create_bucket(Bucket=bucket)
    body = os.urandom(1_000_000)
    response = client.put_object(Bucket=bucket, Key="over-tls", Body=body)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    client.upload_fileobj(
        io.BytesIO(body * 12),
        bucket,
        "multi-over-tls",
        Config=TransferConfig(
            multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024
        ),
    )
    direct = moto_plain.client()
    assert sha256(direct.get_object(Bucket=bucket, Key="over-tls")["Body"].read()) == sha256(body)
    stored = direct.get_object(Bucket=bucket, Key="multi-over-tls")["Body"].read()
    assert sha256(stored) == sha256(body * 12)
    assert client.get_object(Bucket=bucket, Key="over-tls")["Body"].read() == body
    # boto3 really sent aws-chunked bodies with a checksum trailer over HTTPS.
    assert "payload=STREAMING-UNSIGNED-PAYLOAD-TRAILER" in tls_proxy.log_text()
    with pytest.raises(ClientError) as caught:
        client.get_object(Bucket=bucket, Key="missing")
    assert caught.value.response["Error"]["Code"] == "NoSuchKey"
