"""Public buckets: `anonymous: {forward: unsigned}` sends an unsigned request to its store as it
came, names mapped and nothing added, so the store's own ACLs decide. Checked on the bytes a
`RawBackend` received (no Authorization, no x-amz-date, no payload hash, no token) and on
moto's public-read ACLs; what would take a store's keys is refused before any store is asked;
without the setting unsigned requests are refused; signed requests and presigned URLs are
signed by the proxy as ever. Every answer carries the proxy's request id alone."""

from __future__ import annotations

import hashlib
import http.client
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import urllib3
from harness import (
    LOOPBACK,
    MotoBackend,
    ProxyProcess,
    RawBackend,
    unique_bucket_name,
    write_config,
)
from lxml import etree

PUBLIC = unique_bucket_name("public")
PRIVATE_TEXT = b"not for everyone"
ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message><RequestId>RAW-REQUEST-ID</RequestId></Error>"
)
# Headers the proxy adds when it signs: none may reach a store for an unsigned request.
SIGNATURE_HEADERS = {"authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"}


def raw_answer(status: str, body: bytes, content_type: str = "text/plain") -> list[dict[str, Any]]:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        "x-amz-request-id: RAW-REQUEST-ID\r\nx-amzn-RequestId: RAW-AMZN-ID\r\n"
        "x-amz-id-2: RAW-HOST-ID\r\n\r\n"
    )
    return [{"send": head.encode() + body}]


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawBackend]:
    with RawBackend(tmp_path_factory.mktemp("raw")) as backend:
        backend.script(
            {
                "GET /www-site/index.html": raw_answer("200 OK", b"<h1>hi</h1>"),
                "GET /www-site/private.txt": raw_answer(
                    "403 Forbidden", ACCESS_DENIED, "application/xml"
                ),
            }
        )
        yield backend


def proxy_config(raw: RawBackend, moto: MotoBackend, anonymous: str) -> str:
    return f"""
        backends:
          raw:
            endpoint: "{raw.endpoint}"
            access_key_id: "RAWKEY"
            secret_access_key: "raw-secret"
          moto:
            endpoint: "{moto.endpoint}"
            access_key_id: "{moto.access_key_id}"
            secret_access_key: "{moto.secret_access_key}"
        clients:
          - {{name: writer, access_key_id: AKIAWRITER, secret_access_key: writer-secret}}
        {anonymous}
        routing:
          rules:
            - {{pattern: "site", target: raw, mapped_bucket: www-site}}
            - {{pattern: "mirrored", target: raw, mirror: [moto]}}
            - {{pattern: "split", key_pattern: "cold/*", target: moto}}
            - {{pattern: "split", target: raw}}
          default_target: moto
        """


@pytest.fixture(scope="module")
def proxy(
    raw: RawBackend, moto_plain: MotoBackend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    directory = tmp_path_factory.mktemp("proxy")
    text = proxy_config(raw, moto_plain, "anonymous: {forward: unsigned}")
    with ProxyProcess(write_config(directory, text), directory) as started:
        yield started


def unsigned_call(proxy: ProxyProcess, method: str, target: str, body: bytes = b"") -> Any:
    conn = http.client.HTTPConnection(LOOPBACK, proxy.port, timeout=60)
    try:
        conn.request(method, target, body=body or None, headers={"User-Agent": "curl/8"})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def header_names(seen: Mapping[str, Any]) -> set[str]:
    return {name.lower() for name, _ in seen["headers"]}


def code_and_request_id(body: bytes) -> tuple[str | None, str | None]:
    root = etree.fromstring(body)
    return root.findtext("Code"), root.findtext("RequestId")


def test_an_unsigned_read_reaches_the_store_unsigned(proxy: ProxyProcess, raw: RawBackend) -> None:
    mark = len(raw.requests())
    status, headers, body = unsigned_call(proxy, "GET", "/site/index.html")
    assert (status, body) == (200, b"<h1>hi</h1>")
    [seen] = raw.requests()[mark:]
    assert (seen["method"], seen["target"]) == ("GET", "/www-site/index.html")
    assert not header_names(seen) & SIGNATURE_HEADERS, seen["headers"]
    # One request id: the proxy's, never the store's.
    assert headers["x-amz-request-id"] != "RAW-REQUEST-ID"
    assert "x-amzn-requestid" not in headers and "x-amz-id-2" not in headers


def test_the_stores_refusal_reaches_the_client_as_its_s3_error(
    proxy: ProxyProcess, raw: RawBackend
) -> None:
    mark = len(raw.requests())
    status, headers, body = unsigned_call(proxy, "GET", "/site/private.txt")
    assert status == 403
    assert code_and_request_id(body) == ("AccessDenied", headers["x-amz-request-id"])
    [seen] = raw.requests()[mark:]
    assert not header_names(seen) & SIGNATURE_HEADERS


def test_a_public_read_object_on_moto_is_read_unsigned_and_a_private_one_is_not(
    proxy: ProxyProcess, moto_plain: MotoBackend
) -> None:
    store = moto_plain.client()
    store.create_bucket(Bucket=PUBLIC)
    data = os.urandom(200_000)
    store.put_object(Bucket=PUBLIC, Key="open.bin", Body=data, ACL="public-read")
    store.put_object(Bucket=PUBLIC, Key="closed.txt", Body=PRIVATE_TEXT, ACL="private")
    http = urllib3.PoolManager(retries=False)
    page = http.request("GET", f"{proxy.endpoint}/{PUBLIC}/open.bin")
    assert page.status == 200
    assert hashlib.sha256(page.data).digest() == hashlib.sha256(data).digest()
    closed = http.request("GET", f"{proxy.endpoint}/{PUBLIC}/closed.txt")
    assert closed.status == 403 and PRIVATE_TEXT not in closed.data


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/"),  # ListBuckets asks every store
        ("GET", "/split?list-type=2"),  # a listing merged from two stores
        ("PUT", "/mirrored/k"),  # a mirrored write
        ("PUT", f"/{PUBLIC}/copy"),  # a copy from another store (header below)
    ],
)
def test_what_would_take_a_stores_keys_is_refused_before_any_store(
    proxy: ProxyProcess, raw: RawBackend, moto_plain: MotoBackend, method: str, target: str
) -> None:
    raw_mark, moto_mark = len(raw.requests()), moto_plain.request_count()
    conn = http.client.HTTPConnection(LOOPBACK, proxy.port, timeout=60)
    try:
        headers = {"x-amz-copy-source": "/site/index.html"} if "copy" in target else {}
        conn.request(method, target, body=b"x" if method == "PUT" else None, headers=headers)
        response = conn.getresponse()
        status, body = response.status, response.read()
    finally:
        conn.close()
    assert status == 403
    assert code_and_request_id(body)[0] == "AccessDenied"
    assert raw.requests()[raw_mark:] == []
    assert moto_plain.requests_since(moto_mark) == []


def test_signed_requests_and_presigned_urls_are_still_signed_by_the_proxy(
    proxy: ProxyProcess, raw: RawBackend
) -> None:
    writer = proxy.client("AKIAWRITER", "writer-secret")
    url = writer.generate_presigned_url(
        "get_object", Params={"Bucket": "site", "Key": "index.html"}, ExpiresIn=300
    )
    mark = len(raw.requests())
    page = urllib3.PoolManager(retries=False).request("GET", url)
    assert (page.status, page.data) == (200, b"<h1>hi</h1>")
    [seen] = raw.requests()[mark:]
    authorization = dict((k.lower(), v) for k, v in seen["headers"])["authorization"]
    assert "Credential=RAWKEY/" in authorization
    assert "X-Amz-Signature" not in seen["target"]


def test_without_the_setting_unsigned_requests_are_refused(
    raw: RawBackend, moto_plain: MotoBackend, tmp_path_factory: pytest.TempPathFactory
) -> None:
    directory = tmp_path_factory.mktemp("default")
    config = write_config(directory, proxy_config(raw, moto_plain, ""))
    with ProxyProcess(config, directory) as default:
        mark = len(raw.requests())
        status, _, body = unsigned_call(default, "GET", "/site/index.html")
        assert status == 403
        assert code_and_request_id(body)[0] == "AccessDenied"
        assert raw.requests()[mark:] == []


def test_explain_says_what_an_unsigned_request_gets(proxy: ProxyProcess) -> None:
    def explained(method: str, url: str) -> str:
        command = [sys.executable, "-m", "s3router_proxy", "explain"]
        done = subprocess.run(
            [*command, "--config", str(proxy.config), method, url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return done.stdout

    assert "unsigned, this request is forwarded unsigned to raw" in explained("GET", "s3://site/a")
    assert "unsigned, this request is refused: the write is mirrored" in explained(
        "PUT", "s3://mirrored/a"
    )
