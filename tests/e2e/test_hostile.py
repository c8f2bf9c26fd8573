"""Hostile clients: every request here is refused with the S3 error, and no backend sees it.

One proxy in front of plain moto (`store`) with a split logical bucket `datalake` (raw/* and
curated/* mapped to other buckets, the rest to `datalake`), so the proxy itself parses
DeleteObjects bodies, seals upload ids and signs listing continuation tokens. Each test marks
the backend's request count before it acts and checks it after. Requests SDKs never send are
made with `rawclient` (botocore's signer) or written byte by byte to a socket.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from unittest import mock
from urllib.parse import urlsplit

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from harness import (
    LOOPBACK,
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    unique_bucket_name,
    write_config,
)
from rawclient import RawResponse, send, sign

KEY, SECRET = "AKIAHOSTILE", "hostile-secret"
SPLIT = "datalake"


@pytest.fixture(scope="module")
def stray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoBackend]:
    """A moto the proxy is NOT configured with: it must never get a request."""
    with MotoBackend(tmp_path_factory.mktemp("moto-stray"), name="moto-stray") as backend:
        yield backend


@pytest.fixture(scope="module")
def proxy(
    moto_plain: MotoBackend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    direct = moto_plain.client()
    for bucket in (SPLIT, "lake-repo", "curated"):
        try:
            direct.create_bucket(Bucket=bucket)
        except ClientError as err:
            if err.response["Error"]["Code"] not in (
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            ):
                raise
    directory = tmp_path_factory.mktemp("hostile-proxy")
    config = write_config(
        directory,
        f"""
        router:
          keepalive_timeout: 2
          header_timeout: 2
        backends:
          store:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
            read_timeout: 30
        clients:
          - name: "tester"
            access_key_id: "{KEY}"
            secret_access_key: "{SECRET}"
        routing:
          rules:
            - pattern: "{SPLIT}"
              key_pattern: "raw/*"
              target: store
              mapped_bucket: "lake-repo"
              mapped_prefix: "main"
            - pattern: "{SPLIT}"
              key_pattern: "curated/*"
              target: store
              mapped_bucket: "curated"
              mapped_prefix: "{SPLIT}"
            - pattern: "{SPLIT}"
              target: store
          default_target: store
        """,
    )
    with ProxyProcess(config, directory, log_level="info") as process:
        yield process


@pytest.fixture(scope="module")
def client(proxy: ProxyProcess):
    return proxy.client(KEY, SECRET)


@pytest.fixture(scope="module")
def bucket(client) -> str:
    name = unique_bucket_name("hostile")
    client.create_bucket(Bucket=name)
    client.put_object(Bucket=name, Key="exists", Body=b"original")
    return name


class Untouched:
    """`with Untouched(backend):` fails if the backend served any request inside the block."""

    def __init__(self, *backends: MotoBackend) -> None:
        self.backends = backends
        self.marks: list[int] = []

    def __enter__(self) -> Untouched:
        self.marks = [backend.request_count() for backend in self.backends]
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            return
        time.sleep(0.2)  # werkzeug logs a request as it answers; give a stray one time to show
        for backend, mark in zip(self.backends, self.marks, strict=True):
            seen = backend.requests_since(mark)
            assert not seen, f"{backend.name} saw {[entry.line for entry in seen]}"


def url(proxy: ProxyProcess, path: str) -> str:
    return proxy.endpoint + path


def signed(
    method: str,
    target: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    payload_hash: str | None = None,
    when: dt.datetime | None = None,
) -> dict[str, str]:
    return sign(
        method,
        target,
        KEY,
        SECRET,
        headers=headers,
        body=body,
        payload_hash=payload_hash,
        when=when,
    )


def presign(target: str, *, expires: int = 60, when: dt.datetime | None = None) -> str:
    request = AWSRequest(method="GET", url=target)
    signer = botocore.auth.S3SigV4QueryAuth(
        Credentials(KEY, SECRET), "s3", "us-east-1", expires=expires
    )
    moment = (when or dt.datetime.now(dt.UTC)).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=moment):
        signer.add_auth(request)
    return request.url


def assert_error(response: RawResponse, status: int, code: str) -> None:
    assert (response.status, response.error_code) == (status, code), response.body[:500]


def raw_exchange(
    port: int, data: bytes, *, timeout: float = 5.0, half_close: bool = False
) -> bytes:
    """Write `data` to a fresh connection and read the first answer: status line, headers, body.

    Returns b"" if the proxy closed the connection without answering. With `half_close` the
    write side is shut after `data`, as a client that sent all it ever will.
    """
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        try:
            response.begin()
        except (http.client.RemoteDisconnected, ConnectionResetError, http.client.BadStatusLine):
            return b""
        head = f"HTTP/1.1 {response.status} {response.reason}\r\n".encode()
        head += b"".join(f"{k}: {v}\r\n".encode() for k, v in response.getheaders())
        try:
            body = response.read()
        except (http.client.IncompleteRead, ConnectionResetError) as exc:
            body = getattr(exc, "partial", b"")
        return head + b"\r\n" + body


def status_of(answer: bytes) -> int | None:
    if not answer.startswith(b"HTTP/1."):
        return None
    return int(answer.split(b" ", 2)[1])


def signed_raw_head(
    proxy: ProxyProcess, method: str, path: str, extra: dict[str, str] | None = None, **kwargs
) -> tuple[bytes, dict[str, str]]:
    headers = signed(method, url(proxy, path), headers=extra, **kwargs)
    headers.setdefault("Host", f"{LOOPBACK}:{proxy.port}")
    return path.encode(), headers


def render(method: str, target: bytes, headers: dict[str, str], extra: bytes = b"") -> bytes:
    lines = [method.encode() + b" " + target + b" HTTP/1.1"]
    lines += [f"{name}: {value}".encode() for name, value in headers.items()]
    return b"\r\n".join(lines) + b"\r\n\r\n" + extra


# -- tampering -----------------------------------------------------------------------------------


def test_tampered_signature(proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str) -> None:
    target = url(proxy, f"/{bucket}/exists")
    headers = signed("GET", target)
    signature = headers["Authorization"][-64:]
    flipped = ("1" if signature[0] != "1" else "2") + signature[1:]
    headers["Authorization"] = headers["Authorization"][:-64] + flipped
    with Untouched(moto_plain):
        assert_error(send("GET", target, headers=headers), 403, "SignatureDoesNotMatch")


def test_tampered_signed_header(proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str) -> None:
    target = url(proxy, f"/{bucket}/new-object")
    headers = signed("PUT", target, headers={"x-amz-acl": "private"}, body=b"x")
    headers["x-amz-acl"] = "public-read-write"
    with Untouched(moto_plain):
        assert_error(send("PUT", target, headers=headers, body=b"x"), 403, "SignatureDoesNotMatch")


def test_tampered_query(proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str) -> None:
    headers = signed("GET", url(proxy, f"/{bucket}?list-type=2&prefix=a"))
    with Untouched(moto_plain):
        response = send("GET", url(proxy, f"/{bucket}?list-type=2&prefix=b"), headers=headers)
        assert_error(response, 403, "SignatureDoesNotMatch")


def test_tampered_path(proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str) -> None:
    headers = signed("GET", url(proxy, f"/{bucket}/exists"))
    with Untouched(moto_plain):
        response = send("GET", url(proxy, f"/{bucket}/other"), headers=headers)
        assert_error(response, 403, "SignatureDoesNotMatch")


def test_tampered_body(proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str) -> None:
    target = url(proxy, f"/{bucket}/tampered-body")
    headers = signed("PUT", target, body=b"the body that was signed")
    with Untouched(moto_plain):
        response = send("PUT", target, headers=headers, body=b"the body that was SENT!!")
        assert_error(response, 400, "XAmzContentSHA256Mismatch")
    with pytest.raises(ClientError):
        moto_plain.client().head_object(Bucket=bucket, Key="tampered-body")


# -- time and replay -----------------------------------------------------------------------------


def test_expired_presigned_url(proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    presigned = presign(url(proxy, f"/{bucket}/exists"), expires=3600, when=past)
    with Untouched(moto_plain):
        response = send("GET", presigned, headers={})
        assert_error(response, 403, "AccessDenied")
        assert b"expired" in response.body


def test_presigned_url_from_the_future(
    proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str
) -> None:
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    presigned = presign(url(proxy, f"/{bucket}/exists"), expires=3600, when=future)
    with Untouched(moto_plain):
        response = send("GET", presigned, headers={})
        assert_error(response, 403, "AccessDenied")
        assert b"not valid yet" in response.body


def test_skewed_header_clock(proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str) -> None:
    target = url(proxy, f"/{bucket}/exists")
    headers = signed("GET", target, when=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20))
    with Untouched(moto_plain):
        assert_error(send("GET", target, headers=headers), 403, "RequestTimeTooSkewed")


def test_valid_presigned_url_works(proxy: ProxyProcess, bucket: str) -> None:
    response = send("GET", presign(url(proxy, f"/{bucket}/exists")), headers={})
    assert (response.status, response.body) == (200, b"original")


def test_presigned_url_replayed_against_another_key(
    proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str
) -> None:
    presigned = presign(url(proxy, f"/{bucket}/exists"))
    parts = urlsplit(presigned)
    other = f"{proxy.endpoint}/{bucket}/secret-object?{parts.query}"
    other_bucket = f"{proxy.endpoint}/{SPLIT}/exists?{parts.query}"
    with Untouched(moto_plain):
        assert_error(send("GET", other, headers={}), 403, "SignatureDoesNotMatch")
        assert_error(send("GET", other_bucket, headers={}), 403, "SignatureDoesNotMatch")
        assert_error(send("DELETE", presigned, headers={}), 403, "SignatureDoesNotMatch")


def test_unsigned_amz_header(proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str) -> None:
    target = url(proxy, f"/{bucket}/copy-target")
    headers = signed("PUT", target)
    headers["x-amz-copy-source"] = f"/{bucket}/exists"
    with Untouched(moto_plain):
        response = send("PUT", target, headers=headers)
        assert_error(response, 403, "AccessDenied")
        assert b"x-amz-copy-source" in response.body


# -- framing: CRLF, NUL, oversized headers, lying lengths -----------------------------------------


@pytest.mark.parametrize(
    "value", [b"a\r\nx-amz-copy-source: /b/k", b"a\x00b", b"a\rb", b"a\nX-Injected: 1"]
)
def test_control_characters_in_header_values(
    proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str, value: bytes
) -> None:
    path, headers = signed_raw_head(proxy, "GET", f"/{bucket}/exists", {"x-amz-meta-a": "a"})
    request = render("GET", path, headers).replace(b"x-amz-meta-a: a", b"x-amz-meta-a: " + value)
    with Untouched(moto_plain):
        answer = raw_exchange(proxy.port, request)
        assert status_of(answer) in (None, 400, 403), answer[:300]


@pytest.mark.parametrize("raw_key", [b"a\r\nb", b"a\x00b", b"a b", b"a\nb"])
def test_control_characters_in_the_key(
    proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str, raw_key: bytes
) -> None:
    _path, headers = signed_raw_head(proxy, "GET", f"/{bucket}/ab")
    request = render("GET", f"/{bucket}/".encode() + raw_key, headers)
    with Untouched(moto_plain):
        answer = raw_exchange(proxy.port, request)
        assert status_of(answer) in (None, 400, 403), answer[:300]


@pytest.mark.parametrize("encoded", ["a%0D%0Ab", "a%00b"])
def test_percent_encoded_control_characters_in_a_key_round_trip(
    client, moto_plain: MotoBackend, bucket: str, encoded: str
) -> None:
    """S3 keys may hold CR, LF and NUL; the proxy stores exactly that key, or refuses it (4xx)."""
    key = encoded.replace("%0D", "\r").replace("%0A", "\n").replace("%00", "\x00")
    try:
        client.put_object(Bucket=bucket, Key=key, Body=b"ctl")
    except ClientError as err:
        assert 400 <= err.response["ResponseMetadata"]["HTTPStatusCode"] < 500
        return
    assert moto_plain.client().get_object(Bucket=bucket, Key=key)["Body"].read() == b"ctl"


def test_oversized_header_line(proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str) -> None:
    path, headers = signed_raw_head(proxy, "GET", f"/{bucket}/exists")
    headers["x-big"] = "v" * (17 * 1024)
    with Untouched(moto_plain):
        answer = raw_exchange(proxy.port, render("GET", path, headers))
        status = status_of(answer)
        assert status is None or 400 <= status < 500, answer[:300]


def test_oversized_request_line(proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str) -> None:
    request = render("GET", f"/{bucket}/{'k' * (17 * 1024)}".encode(), {"Host": "x"})
    with Untouched(moto_plain):
        answer = raw_exchange(proxy.port, request)
        status = status_of(answer)
        assert status is None or 400 <= status < 500, answer[:300]


def test_many_headers(proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str) -> None:
    path, headers = signed_raw_head(proxy, "GET", f"/{bucket}/exists")
    for index in range(2000):
        headers[f"x-pad-{index}"] = "v" * 100
    with Untouched(moto_plain):
        answer = raw_exchange(proxy.port, render("GET", path, headers))
        status = status_of(answer)
        assert status is None or 400 <= status < 500, answer[:300]


def test_content_length_shorter_than_the_body_sent(
    proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str
) -> None:
    """The client promises 100000 bytes, sends 1000 and half-closes: nothing may be stored."""
    key = "short-body"
    path, headers = signed_raw_head(
        proxy,
        "PUT",
        f"/{bucket}/{key}",
        {"Content-Length": "100000"},
        payload_hash="UNSIGNED-PAYLOAD",
    )
    answer = raw_exchange(
        proxy.port, render("PUT", path, headers) + b"x" * 1000, timeout=20, half_close=True
    )
    status = status_of(answer)
    assert status is None or 400 <= status < 500, answer[:300]
    if status is not None:
        assert b"IncompleteBody" in answer or b"RequestTimeout" in answer, answer[:500]
    with pytest.raises(ClientError):
        moto_plain.client().head_object(Bucket=bucket, Key=key)


def test_content_length_longer_than_the_body_sent(
    proxy: ProxyProcess, moto_plain: MotoBackend, bucket: str
) -> None:
    """Extra bytes after Content-Length are the next request, never part of the object."""
    key = "long-body"
    body = b"a" * 100
    path, headers = signed_raw_head(
        proxy, "PUT", f"/{bucket}/{key}", {"Content-Length": "100"}, body=body
    )
    trailing = b"GARBAGE-" * 20
    answer = raw_exchange(proxy.port, render("PUT", path, headers) + body + trailing, timeout=20)
    # aiohttp parses the pipelined garbage in the same read and may refuse the connection (400)
    # before the PUT is handled; either way the stored object is never longer than promised.
    assert status_of(answer) in (200, 400), answer[:300]
    try:
        stored = moto_plain.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError:
        assert status_of(answer) == 400
    else:
        assert stored == body


# -- no open proxying ----------------------------------------------------------------------------


def test_host_header_for_an_unconfigured_backend(
    proxy: ProxyProcess, moto_plain: MotoBackend, stray: MotoBackend, bucket: str
) -> None:
    host = f"{LOOPBACK}:{stray.port}"
    target = f"http://{host}/{bucket}/exists"
    headers = signed("GET", target)  # signed for the stray host, sent to the proxy
    with Untouched(stray):
        answer = raw_exchange(proxy.port, render("GET", f"/{bucket}/exists".encode(), headers))
        assert status_of(answer) in (200, 400, 403, 404), answer[:300]


def test_absolute_form_request_target(proxy: ProxyProcess, stray: MotoBackend, bucket: str) -> None:
    host = f"{LOOPBACK}:{stray.port}"
    stray.client().create_bucket(Bucket="stray-bucket")
    headers = signed("GET", f"http://{host}/stray-bucket")
    with Untouched(stray):
        for target in (f"http://{host}/stray-bucket", f"{host}"):
            method = "GET" if target.startswith("http") else "CONNECT"
            answer = raw_exchange(proxy.port, render(method, target.encode(), headers))
            status = status_of(answer)
            assert status is None or status != 200 or b"stray-bucket" not in answer


# -- forged ids and tokens -----------------------------------------------------------------------


def test_forged_upload_id(client, moto_plain: MotoBackend) -> None:
    created = client.create_multipart_upload(Bucket=SPLIT, Key="raw/forge.bin")
    real = created["UploadId"]
    forged = [
        "forged-upload-id",
        real[:-2] + ("AA" if not real.endswith("AA") else "BB"),
        base64.urlsafe_b64encode(b"{}" * 20).decode(),
    ]
    with Untouched(moto_plain):
        for upload_id in forged:
            for call in (
                lambda u: client.upload_part(
                    Bucket=SPLIT, Key="raw/forge.bin", UploadId=u, PartNumber=1, Body=b"x"
                ),
                lambda u: client.list_parts(Bucket=SPLIT, Key="raw/forge.bin", UploadId=u),
                lambda u: client.abort_multipart_upload(
                    Bucket=SPLIT, Key="raw/forge.bin", UploadId=u
                ),
            ):
                with pytest.raises(ClientError) as caught:
                    call(upload_id)
                assert caught.value.response["Error"]["Code"] == "NoSuchUpload"
        # A real id used for another key of the same logical bucket is forged too.
        with pytest.raises(ClientError) as caught:
            client.list_parts(Bucket=SPLIT, Key="raw/other.bin", UploadId=real)
        assert caught.value.response["Error"]["Code"] == "NoSuchUpload"
    client.abort_multipart_upload(Bucket=SPLIT, Key="raw/forge.bin", UploadId=real)


def test_forged_continuation_token(client, moto_plain: MotoBackend) -> None:
    for index in range(3):
        client.put_object(Bucket=SPLIT, Key=f"raw/token-{index}", Body=b"t")
        client.put_object(Bucket=SPLIT, Key=f"curated/token-{index}", Body=b"t")
    page = client.list_objects_v2(Bucket=SPLIT, MaxKeys=2)
    real = page["NextContinuationToken"]
    forged = [
        "forged",
        real[:-3] + ("AAA" if not real.endswith("AAA") else "BBB"),
        base64.urlsafe_b64encode(b'{"b":"datalake","d":"","k":"zzz","p":""}' + b"\0" * 32)
        .decode()
        .rstrip("="),
    ]
    with Untouched(moto_plain):
        for token in forged:
            with pytest.raises(ClientError) as caught:
                client.list_objects_v2(Bucket=SPLIT, ContinuationToken=token)
            assert caught.value.response["Error"]["Code"] == "InvalidArgument"
        with pytest.raises(ClientError) as caught:  # a real token for another prefix
            client.list_objects_v2(Bucket=SPLIT, ContinuationToken=real, Prefix="raw/")
        assert caught.value.response["Error"]["Code"] == "InvalidArgument"


# -- XML bombs and oversized XML -----------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Delete><Object><Key>raw/&lol9;</Key></Object><Object><Key>curated/&lol9;</Key></Object></Delete>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Delete><Object><Key>raw/&xxe;</Key></Object><Object><Key>curated/x</Key></Object></Delete>
"""


def _post_xml(proxy: ProxyProcess, target: str, body: bytes) -> RawResponse:
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    headers = signed("POST", url(proxy, target), headers={"Content-MD5": md5}, body=body)
    return send("POST", url(proxy, target), headers=headers, body=body)


def test_xml_bomb_in_delete_objects(proxy: ProxyProcess, moto_plain: MotoBackend) -> None:
    rss_before = proxy.rss_mib()
    with Untouched(moto_plain):
        response = _post_xml(proxy, f"/{SPLIT}?delete", BILLION_LAUGHS)
        assert_error(response, 400, "MalformedXML")
    assert proxy.rss_mib() < rss_before + 50


def test_external_entity_in_delete_objects(proxy: ProxyProcess, moto_plain: MotoBackend) -> None:
    with Untouched(moto_plain):
        response = _post_xml(proxy, f"/{SPLIT}?delete", EXTERNAL_ENTITY)
        assert b"root:" not in response.body
        assert_error(response, 400, "MalformedXML")


def test_oversized_delete_objects(proxy: ProxyProcess, moto_plain: MotoBackend) -> None:
    objects = b"".join(
        b"<Object><Key>raw/" + b"k" * 900 + str(index).encode() + b"</Key></Object>"
        for index in range(5000)
    )
    body = b"<Delete>" + objects + b"</Delete>"
    assert len(body) > 4 * 1024 * 1024
    with Untouched(moto_plain):
        response = _post_xml(proxy, f"/{SPLIT}?delete", body)
        assert response.status == 400, response.body[:300]
        assert response.error_code in ("MalformedXML", "EntityTooLarge", "MaxMessageLengthExceeded")


def test_delete_objects_with_too_many_keys(proxy: ProxyProcess, moto_plain: MotoBackend) -> None:
    body = b"<Delete>" + b"<Object><Key>raw/k</Key></Object>" * 1001 + b"</Delete>"
    with Untouched(moto_plain):
        response = _post_xml(proxy, f"/{SPLIT}?delete", body)
        assert response.status == 400, response.body[:300]
        assert response.error_code == "MalformedXML"


@pytest.mark.parametrize("body", [BILLION_LAUGHS, b"<C" * (5 * 1024 * 1024)], ids=["laughs", "big"])
def test_xml_bomb_in_complete_multipart_upload(
    proxy: ProxyProcess, client, moto_plain: MotoBackend, body: bytes
) -> None:
    key = "raw/bomb.bin"
    upload_id = client.create_multipart_upload(Bucket=SPLIT, Key=key)["UploadId"]
    try:
        rss_before = proxy.rss_mib()
        target = f"/{SPLIT}/{key}?uploadId={upload_id}"
        with Untouched(moto_plain):
            response = _post_xml(proxy, target, body)
            assert 400 <= response.status < 500, (response.status, response.body[:300])
            assert response.error_code == "MalformedXML"
        assert proxy.rss_mib() < rss_before + 50
        with pytest.raises(ClientError):
            moto_plain.client().head_object(Bucket="lake-repo", Key="main/bomb.bin")
    finally:
        client.abort_multipart_upload(Bucket=SPLIT, Key=key, UploadId=upload_id)


# -- slowloris -----------------------------------------------------------------------------------


def test_slowloris_does_not_starve_other_clients(proxy: ProxyProcess, client, bucket: str) -> None:
    stop = threading.Event()
    sockets: list[socket.socket] = []
    closed_by_proxy: list[bool] = []

    def slow_client() -> None:
        sock = socket.create_connection((LOOPBACK, proxy.port), timeout=10)
        sockets.append(sock)
        sock.sendall(b"GET /" + bucket.encode() + b"/exists HTTP/1.1\r\nHost: x\r\n")
        try:
            while not stop.is_set():
                sock.sendall(b"X-Slow: a\r\n")
                stop.wait(0.5)
        except OSError:
            closed_by_proxy.append(True)

    threads = [threading.Thread(target=slow_client, daemon=True) for _ in range(50)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        for _ in range(5):
            started = time.monotonic()
            assert client.get_object(Bucket=bucket, Key="exists")["Body"].read() == b"original"
            assert time.monotonic() - started < 3.0
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        for sock in sockets:
            sock.close()


def _closed_within(sock: socket.socket, seconds: float, trickle: bytes | None) -> bool:
    """Whether the proxy closes `sock` within `seconds`, the client sending `trickle` each 0.5 s."""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            if trickle is not None:
                sock.sendall(trickle)
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


def test_idle_connection_is_closed(proxy: ProxyProcess) -> None:
    """A connection that never sends a byte is closed (keepalive_timeout: 2 here; 75 s default)."""
    with socket.create_connection((LOOPBACK, proxy.port), timeout=3) as sock:
        assert _closed_within(sock, 5.0, None)


def test_slowloris_connection_is_closed(proxy: ProxyProcess) -> None:
    """A client trickling header lines is closed by router.header_timeout (2 s here, 20 s by
    default), whatever the keep-alive timeout."""
    with socket.create_connection((LOOPBACK, proxy.port), timeout=3) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        assert _closed_within(sock, 5.0, b"X-Slow: a\r\n")
