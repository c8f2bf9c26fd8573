"""Browser form uploads (PostObject) through the proxy to a signature-checking moto backend.

Forms are made by boto3's `generate_presigned_post` (or signed by hand for SigV2 and for
policies boto3 would not write) and posted with `requests`, as a web page's script would;
the broken ones are written byte by byte on a socket. What landed is read from the backend
directly.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import pytest
import requests
from botocore.exceptions import ClientError
from harness import LOOPBACK, MotoBackend, ProxyProcess, unique_bucket_name, write_config

CLIENT_KEY = "AKIAPOSTTESTER000001"
CLIENT_SECRET = "post-tester-secret-key-0000000000000001"
LIMITED_KEY = "AKIAPOSTLIMITED00001"
TEMPORARY_KEY = "ASIAPOSTTEMPORARY001"
TOKEN = "post-session-token-0001"
MAPPED_STORE = unique_bucket_name("post-store")
DOMAIN = "s3.test"


@pytest.fixture(scope="module")
def proxy(
    moto_auth: MotoBackend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    directory = tmp_path_factory.mktemp("post-object")
    moto_auth.client().create_bucket(Bucket=MAPPED_STORE)
    config = write_config(
        directory,
        f"""
        router:
          listen_address: "127.0.0.1:0"
          virtual_host_domains: ["{DOMAIN}"]
        backends:
          lake:
            endpoint: "{moto_auth.endpoint}"
            access_key_id: "{moto_auth.access_key_id}"
            secret_access_key: "{moto_auth.secret_access_key}"
            read_timeout: 120
        clients:
          - name: "tester"
            access_key_id: "{CLIENT_KEY}"
            secret_access_key: "{CLIENT_SECRET}"
          - name: "temporary"
            access_key_id: "{TEMPORARY_KEY}"
            secret_access_key: "{CLIENT_SECRET}"
            session_token: "{TOKEN}"
          - name: "limited"
            access_key_id: "{LIMITED_KEY}"
            secret_access_key: "{CLIENT_SECRET}"
            allow:
              - buckets: ["*"]
                keys: ["mine/*"]
                operations: [write]
        routing:
          rules:
            - pattern: "postmapped-*"
              key_pattern: "in/*"
              target: "lake"
              mapped_bucket: "{MAPPED_STORE}"
              mapped_prefix: "stored/"
          default_target: "lake"
        """,
    )
    with ProxyProcess(config, directory, log_level="info") as process:
        yield process


@pytest.fixture(scope="module")
def client(proxy: ProxyProcess) -> Any:
    # SigV4 forms; boto3 signs a presigned POST with SigV2 unless told otherwise.
    return proxy.client(CLIENT_KEY, CLIENT_SECRET, signature_version="s3v4")


@pytest.fixture
def bucket(client: Any) -> str:
    name = unique_bucket_name("post")
    client.create_bucket(Bucket=name)
    return name


def presigned(client: Any, bucket: str, key: str, **options: Any) -> dict[str, Any]:
    return client.generate_presigned_post(Bucket=bucket, Key=key, ExpiresIn=600, **options)


def post(
    proxy: ProxyProcess, bucket: str, fields: dict[str, str], data: bytes, **options: Any
) -> requests.Response:
    return requests.post(
        f"{proxy.endpoint}/{bucket}",
        data=fields,
        files={"file": ("upload.bin", data)},
        allow_redirects=False,
        timeout=300,
        **options,
    )


def error_code(response: requests.Response) -> str:
    return ElementTree.fromstring(response.content).findtext("Code") or ""


def stored(moto: MotoBackend, bucket: str, key: str) -> bytes | None:
    try:
        return moto.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        assert error.response["Error"]["Code"] in ("NoSuchKey", "404")
        return None


def test_a_presigned_post_stores_the_file(proxy, client, bucket) -> None:
    form = presigned(
        client,
        bucket,
        "docs/${filename}",
        Fields={"Content-Type": "text/plain", "x-amz-meta-owner": "ann"},
        Conditions=[
            ["starts-with", "$key", "docs/"],
            {"Content-Type": "text/plain"},
            {"x-amz-meta-owner": "ann"},
            ["content-length-range", 1, 1024],
        ],
    )
    answer = post(proxy, bucket, form["fields"], b"hello form")
    assert answer.status_code == 204, answer.text
    assert answer.headers["ETag"] == '"' + hashlib.md5(b"hello form").hexdigest() + '"'
    assert answer.headers["Location"] == f"{proxy.endpoint}/{bucket}/docs/upload.bin"
    got = client.get_object(Bucket=bucket, Key="docs/upload.bin")
    assert got["Body"].read() == b"hello form"
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"owner": "ann"}
    line = next(x for x in proxy.log_text().splitlines() if "backend_key=docs/upload.bin" in x)
    assert (
        "operation=PostObject" in line and "status=204" in line and f"client={CLIENT_KEY}" in line
    )


def test_a_large_file_streams_with_bounded_memory(proxy, client, bucket) -> None:
    data = os.urandom(64 * 1024 * 1024)
    form = presigned(client, bucket, "big", Conditions=[["content-length-range", 0, 1 << 30]])
    answer = post(proxy, bucket, form["fields"], data)
    assert answer.status_code == 204, answer.text
    back = hashlib.sha256()
    for piece in client.get_object(Bucket=bucket, Key="big")["Body"].iter_chunks(1 << 20):
        back.update(piece)
    assert back.hexdigest() == hashlib.sha256(data).hexdigest()
    peak = proxy.peak_rss_mib()
    print(f"\nproxy peak RSS after a 64 MiB form upload: {peak:.1f} MiB")
    assert peak < 100  # the file held whole would add its 64 MiB to a ~50 MiB process


def test_a_mapped_name_lands_where_the_rule_says(proxy, client, moto_auth) -> None:
    bucket = unique_bucket_name("postmapped")
    form = presigned(
        client,
        bucket,
        "in/photo.jpg",
        Fields={"success_action_status": "201"},
        Conditions=[{"success_action_status": "201"}],
    )
    answer = post(proxy, bucket, form["fields"], b"pixels")
    assert answer.status_code == 201, answer.text
    document = ElementTree.fromstring(answer.content)
    assert document.tag == "PostResponse"
    assert document.findtext("Bucket") == bucket
    assert document.findtext("Key") == "in/photo.jpg"
    assert document.findtext("Location") == f"{proxy.endpoint}/{bucket}/in/photo.jpg"
    assert document.findtext("ETag") == answer.headers["ETag"]
    assert stored(moto_auth, MAPPED_STORE, "stored/photo.jpg") == b"pixels"


def test_success_action_status_200_and_redirect(proxy, client, bucket) -> None:
    form = presigned(
        client,
        bucket,
        "ok",
        Fields={"success_action_status": "200"},
        Conditions=[{"success_action_status": "200"}],
    )
    answer = post(proxy, bucket, form["fields"], b"x")
    assert (answer.status_code, answer.content) == (200, b"")
    target = "https://example.test/done?from=form"
    form = presigned(
        client,
        bucket,
        "a b",
        Fields={"success_action_redirect": target},
        Conditions=[{"success_action_redirect": target}],
    )
    answer = post(proxy, bucket, form["fields"], b"y")
    assert answer.status_code == 303, answer.text
    etag = hashlib.md5(b"y").hexdigest()
    assert answer.headers["Location"] == f"{target}&bucket={bucket}&key=a%20b&etag=%22{etag}%22"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ("expired", 403, "AccessDenied"),
        ("bad-signature", 403, "SignatureDoesNotMatch"),
        ("unknown-key", 403, "InvalidAccessKeyId"),
        ("key-outside-prefix", 403, "AccessDenied"),
        ("extra-field", 403, "AccessDenied"),
        ("too-big", 400, "EntityTooLarge"),
        ("too-small", 400, "EntityTooSmall"),
    ],
)
def test_a_form_outside_its_policy_writes_nothing(
    proxy, client, bucket, moto_auth, change, status, code
) -> None:
    conditions: list[Any] = [["starts-with", "$key", "up/"], ["content-length-range", 2, 10]]
    form = presigned(client, bucket, "up/k", Conditions=conditions)
    fields = dict(form["fields"])
    data = b"12345"
    if change == "expired":
        fields = _signed_v4(fields, bucket, "up/k", conditions, expires_in=-60)
    elif change == "bad-signature":
        fields["x-amz-signature"] = "0" * 64
    elif change == "unknown-key":
        fields["x-amz-credential"] = "AKIANOBODY" + fields["x-amz-credential"][20:]
    elif change == "key-outside-prefix":
        fields["key"] = "elsewhere/k"
    elif change == "extra-field":
        fields["x-amz-meta-sneaky"] = "1"
    elif change == "too-big":
        data = b"x" * 11
    elif change == "too-small":
        data = b"x"
    answer = post(proxy, bucket, fields, data)
    assert (answer.status_code, error_code(answer)) == (status, code), answer.text
    assert CLIENT_SECRET not in answer.text
    assert stored(moto_auth, bucket, fields["key"]) is None


def _signed_v4(
    fields: dict[str, str], bucket: str, key: str, conditions: list[Any], expires_in: int
) -> dict[str, str]:
    """The fields re-signed over a policy that expires `expires_in` seconds from now."""
    now = datetime.datetime.now(datetime.UTC)
    expiration = (now + datetime.timedelta(seconds=expires_in)).strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions = [
        *conditions,
        {"bucket": bucket},
        {"key": key},
        {"x-amz-algorithm": fields["x-amz-algorithm"]},
        {"x-amz-credential": fields["x-amz-credential"]},
        {"x-amz-date": fields["x-amz-date"]},
    ]
    policy = base64.b64encode(
        json.dumps({"expiration": expiration, "conditions": conditions}).encode()
    ).decode()
    date, region = fields["x-amz-credential"].split("/")[1:3]
    signing = ("AWS4" + CLIENT_SECRET).encode()
    for part in (date, region, "s3", "aws4_request"):
        signing = hmac.digest(signing, part.encode(), "sha256")
    signature = hmac.new(signing, policy.encode(), "sha256").hexdigest()
    return {**fields, "policy": policy, "x-amz-signature": signature}


def test_sigv2_form(proxy, client, bucket) -> None:
    expiration = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    document = {
        "expiration": expiration,
        "conditions": [{"bucket": bucket}, ["starts-with", "$key", "v2/"], {"acl": "private"}],
    }
    policy = base64.b64encode(json.dumps(document).encode()).decode()
    signature = base64.b64encode(
        hmac.digest(CLIENT_SECRET.encode(), policy.encode(), "sha1")
    ).decode()
    fields = {
        "key": "v2/k",
        "acl": "private",
        "AWSAccessKeyId": CLIENT_KEY,
        "policy": policy,
        "signature": signature,
    }
    answer = post(proxy, bucket, fields, b"two")
    assert answer.status_code == 204, answer.text
    assert client.get_object(Bucket=bucket, Key="v2/k")["Body"].read() == b"two"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_form_with_expect_100_continue(proxy, client, bucket, tmp_path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    fields = presigned(client, bucket, "curl/${filename}")["fields"]
    argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect: 100-continue"]
    for name, value in fields.items():
        argv += ["--form-string", f"{name}={value}"]
    argv += ["-F", f"file=@{path}", f"{proxy.endpoint}/{bucket}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout == "204", done.stderr
    got = client.get_object(Bucket=bucket, Key="curl/upload.bin")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_virtual_hosted_post(proxy, client, bucket) -> None:
    form = presigned(client, bucket, "vh")
    answer = requests.post(
        f"{proxy.endpoint}/",
        data=form["fields"],
        files={"file": ("f", b"virtual")},
        headers={"Host": f"{bucket}.{DOMAIN}"},
        timeout=60,
    )
    assert answer.status_code == 204, answer.text
    assert client.get_object(Bucket=bucket, Key="vh")["Body"].read() == b"virtual"


# -- forms broken on the wire -------------------------------------------------------------------


def raw_post(
    proxy: ProxyProcess, bucket: str, body: bytes, boundary: str = "XyZ"
) -> tuple[int, bytes]:
    head = (
        f"POST /{bucket} HTTP/1.1\r\nHost: {LOOPBACK}:{proxy.port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((LOOPBACK, proxy.port), timeout=30) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while piece := sock.recv(65536):
            answer += piece
    status = int(answer.split(b" ", 2)[1])
    return status, answer.partition(b"\r\n\r\n")[2]


def form_bytes(
    fields: dict[str, str], file: bytes, *, boundary: str = "XyZ", tail: bytes = b""
) -> bytes:
    out = b""
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    out += f"--{boundary}\r\nContent-Disposition: form-data; ".encode()
    out += b'name="file"; filename="f"\r\n\r\n'
    return out + file + (tail or f"\r\n--{boundary}--\r\n".encode())


def test_the_raw_form_helper_is_accepted(proxy, client, bucket) -> None:
    fields = presigned(client, bucket, "raw")["fields"]
    status, body = raw_post(proxy, bucket, form_bytes(fields, b"--XyZ inside, no CRLF"))
    assert status == 204, body
    assert client.get_object(Bucket=bucket, Key="raw")["Body"].read() == b"--XyZ inside, no CRLF"


@pytest.mark.parametrize(
    ("shape", "code"),
    [
        ("boundary-in-file", "MalformedPOSTRequest"),
        ("no-closing-boundary", "MalformedPOSTRequest"),
        ("field-after-file", "MalformedPOSTRequest"),
        ("part-without-name", "MalformedPOSTRequest"),
        ("crlf-in-filename", "MalformedPOSTRequest"),
        ("no-file", "IncorrectNumberOfFilesInPostRequest"),
        ("policy-after-file", "InvalidArgument"),
        ("huge-field", "MaxPostPreDataLengthExceeded"),
    ],
)
def test_a_broken_form_writes_nothing(proxy, client, bucket, moto_auth, shape, code) -> None:
    fields = presigned(client, bucket, "broken")["fields"]
    data = b"A" * 100_000
    body = form_bytes(fields, data)
    if shape == "boundary-in-file":
        body = form_bytes(fields, data[:50_000] + b"\r\n--XyZ" + data[50_000:])
    elif shape == "no-closing-boundary":
        body = form_bytes(fields, data, tail=b"\r\n--XyZ\r\n")
    elif shape == "field-after-file":
        body = form_bytes(
            fields,
            data,
            tail=b'\r\n--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--XyZ--\r\n',
        )
    elif shape == "part-without-name":
        body = b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nv\r\n" + form_bytes(fields, data)
    elif shape == "crlf-in-filename":
        body = form_bytes(fields, data).replace(b'filename="f"', b'filename="a\r\nb"')
    elif shape == "no-file":
        body = (
            form_bytes(fields, b"").partition(
                b'--XyZ\r\nContent-Disposition: form-data; name="file"'
            )[0]
            + b"--XyZ--\r\n"
        )
    elif shape == "policy-after-file":
        rest = {k: v for k, v in fields.items() if k != "policy"}
        tail = b'\r\n--XyZ\r\nContent-Disposition: form-data; name="policy"\r\n\r\n'
        tail += fields["policy"].encode() + b"\r\n--XyZ--\r\n"
        body = form_bytes(rest, data, tail=tail)
    elif shape == "huge-field":
        body = form_bytes({**fields, "x-ignore-pad": "p" * 1_000_000}, data)
    status, answer = raw_post(proxy, bucket, body)
    assert (status, ElementTree.fromstring(answer).findtext("Code")) == (400, code), answer
    assert stored(moto_auth, bucket, "broken") is None


def test_the_clients_grants_apply_as_to_a_put_object(proxy, bucket, moto_auth) -> None:
    limited = proxy.client(LIMITED_KEY, CLIENT_SECRET, signature_version="s3v4")
    answer = post(proxy, bucket, presigned(limited, bucket, "mine/a")["fields"], b"ok")
    assert answer.status_code == 204, answer.text
    answer = post(proxy, bucket, presigned(limited, bucket, "theirs/a")["fields"], b"no")
    assert (answer.status_code, error_code(answer)) == (403, "AccessDenied")
    assert stored(moto_auth, bucket, "theirs/a") is None


def test_a_temporary_clients_form_carries_its_token(proxy, bucket, moto_auth) -> None:
    temporary = proxy.client(
        TEMPORARY_KEY, CLIENT_SECRET, session_token=TOKEN, signature_version="s3v4"
    )
    fields = presigned(temporary, bucket, "t")["fields"]
    assert fields["x-amz-security-token"] == TOKEN
    assert post(proxy, bucket, fields, b"token").status_code == 204
    answer = post(proxy, bucket, {**fields, "key": "u", "x-amz-security-token": "forged"}, b"u")
    assert (answer.status_code, error_code(answer)) == (400, "InvalidToken")
    assert TOKEN not in answer.text
    assert stored(moto_auth, bucket, "t") == b"token"
    assert stored(moto_auth, bucket, "u") is None


def test_a_checksum_field_is_checked_before_the_object_is_written(
    proxy, client, bucket, moto_auth
) -> None:
    data = b"checked bytes"
    good = base64.b64encode(hashlib.sha256(data).digest()).decode()
    bad = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    for key, value, status in (("good", good, 204), ("bad", bad, 400)):
        fields = {**presigned(client, bucket, key)["fields"], "x-amz-checksum-sha256": value}
        answer = post(proxy, bucket, fields, data)
        assert answer.status_code == status, answer.text
    assert stored(moto_auth, bucket, "good") == data
    assert error_code(answer) == "BadDigest"
    assert stored(moto_auth, bucket, "bad") is None


def test_a_missing_bucket_is_the_backends_answer(proxy, client) -> None:
    bucket = unique_bucket_name("post-missing")
    answer = post(proxy, bucket, presigned(client, bucket, "k")["fields"], b"x" * 100_000)
    assert (answer.status_code, error_code(answer)) == (404, "NoSuchBucket")
    assert f"<BucketName>{bucket}</BucketName>" in answer.text


def test_a_client_that_goes_away_mid_file_writes_nothing(proxy, client, bucket, moto_auth) -> None:
    body = form_bytes(presigned(client, bucket, "gone")["fields"], b"G" * 2_000_000)
    head = (
        f"POST /{bucket} HTTP/1.1\r\nHost: {LOOPBACK}:{proxy.port}\r\n"
        f"Content-Type: multipart/form-data; boundary=XyZ\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((LOOPBACK, proxy.port), timeout=30) as sock:
        sock.sendall(head + body[:1_500_000])
        time.sleep(0.5)
    deadline = time.monotonic() + 10
    while "error_code=IncompleteBody" not in proxy.log_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "error_code=IncompleteBody" in proxy.log_text()
    assert stored(moto_auth, bucket, "gone") is None


def test_anonymous_form_is_refused_without_anonymous_access(proxy, bucket) -> None:
    answer = post(proxy, bucket, {"key": "anon"}, b"x")
    assert (answer.status_code, error_code(answer)) == (403, "AccessDenied")
