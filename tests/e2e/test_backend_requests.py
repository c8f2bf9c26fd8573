"""What reaches a backend, read from the bytes the backend received (`RawBackend`): never an
operation the client's grant does not cover, never a path a hop could normalise into another
key, never a header that is per hop, says who the client is, or drives a store past the grant.

Requests are signed with botocore's signer (`rawclient.sign`) and sent with `http.client`, which
sends the request target exactly as given (`..` included, where urllib3 would remove it).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError
from harness import (
    LOOPBACK,
    MotoBackend,
    ProxyProcess,
    RawBackend,
    boto3_client,
    unique_bucket_name,
    write_config,
)
from lxml import etree
from rawclient import sign

AUTH_BUCKET = unique_bucket_name("auth-dots")
FUTURE = "some-future-thing"

CLIENTS = {
    # read, write, list and delete on one bucket: everything but its administration.
    "writer": ("AKIAWRITER", "writer-secret"),
    "reports": ("AKIAREPORTS", "reports-secret"),
    "deleter": ("AKIADELETER", "deleter-secret"),
    "admin": ("AKIAADMIN", "admin-secret"),
    "everything": ("AKIAEVERYTHING", "everything-secret"),
}


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawBackend]:
    with RawBackend(tmp_path_factory.mktemp("raw")) as backend:
        yield backend


@pytest.fixture(scope="module")
def proxy(
    raw: RawBackend, moto_auth: MotoBackend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    directory = tmp_path_factory.mktemp("proxy")
    config = write_config(
        directory,
        f"""
        backends:
          raw:
            endpoint: "{raw.endpoint}"
            access_key_id: "RAWKEY"
            secret_access_key: "raw-secret"
          checked:
            endpoint: "{moto_auth.endpoint}"
            access_key_id: "{moto_auth.access_key_id}"
            secret_access_key: "{moto_auth.secret_access_key}"
        clients:
          - name: writer
            access_key_id: AKIAWRITER
            secret_access_key: writer-secret
            allow:
              - {{buckets: ["bkt"], operations: [read, write, list, delete]}}
          - name: reports
            access_key_id: AKIAREPORTS
            secret_access_key: reports-secret
            allow:
              - {{buckets: ["bkt"], keys: ["reports/*"], operations: [read]}}
          - name: deleter
            access_key_id: AKIADELETER
            secret_access_key: deleter-secret
            allow:
              - {{buckets: ["bkt"], operations: [delete, DeleteBucket]}}
          - name: admin
            access_key_id: AKIAADMIN
            secret_access_key: admin-secret
            allow:
              - {{buckets: ["bkt"], operations: [admin]}}
          - name: everything
            access_key_id: AKIAEVERYTHING
            secret_access_key: everything-secret
        anonymous:
          allow:
            - {{buckets: ["pub"], operations: [GetObject]}}
        routing:
          rules:
            - pattern: "auth-*"
              target: checked
          default_target: raw
        """,
    )
    with ProxyProcess(config, directory) as started:
        yield started


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def code(self) -> str | None:
        if not self.body.startswith(b"<?xml"):
            return None
        return etree.fromstring(self.body).findtext("Code")


def call(
    proxy: ProxyProcess,
    method: str,
    target: str,
    client: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    unsigned: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> Answer:
    """Send `method target` to the proxy, signed as `client` (anonymous if None), exactly."""
    sent = dict(headers or {})
    if client is not None:
        key, secret = CLIENTS[client]
        sent = sign(method, f"{proxy.endpoint}{target}", key, secret, headers=sent, body=body)
    sent.update(unsigned or {})
    conn = http.client.HTTPConnection(LOOPBACK, proxy.port, timeout=60)
    try:
        conn.request(method, target, body=body or None, headers=sent)
        response = conn.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        conn.close()


def seen_after(raw: RawBackend, mark: int) -> list[dict[str, Any]]:
    return raw.requests()[mark:]


# -- 0: operations newer than the proxy ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", f"/bkt?{FUTURE}"),
        ("DELETE", f"/bkt?{FUTURE}"),
        ("PUT", f"/bkt/k?{FUTURE}"),
        ("GET", f"/bkt/k?{FUTURE}=1&versionId=v"),
        ("GET", "/bkt?default-storage-class"),
        ("PUT", "/bkt?default-storage-class"),
    ],
)
def test_an_operation_the_grant_does_not_name_is_refused_before_the_backend(
    proxy: ProxyProcess, raw: RawBackend, method: str, target: str
) -> None:
    mark = len(raw.requests())
    answer = call(proxy, method, target, "writer")
    assert (answer.status, answer.code) == (403, "AccessDenied")
    assert seen_after(raw, mark) == []


def test_an_admin_grant_may_send_an_operation_the_proxy_cannot_name(
    proxy: ProxyProcess, raw: RawBackend
) -> None:
    mark = len(raw.requests())
    answer = call(proxy, "GET", f"/bkt?{FUTURE}", "admin")
    assert answer.status == 200
    [seen] = seen_after(raw, mark)
    assert (seen["method"], seen["target"]) == ("GET", f"/bkt?{FUTURE}=")


def test_the_writer_still_reads_and_writes(proxy: ProxyProcess, raw: RawBackend) -> None:
    """The refusals above are about the unknown parameter, not the writer's grant."""
    mark = len(raw.requests())
    assert call(proxy, "GET", "/bkt/k?versionId=v", "writer").status == 200
    assert call(proxy, "PUT", "/bkt/k", "writer", body=b"data").status == 200
    assert [(r["method"], r["target"]) for r in seen_after(raw, mark)] == [
        ("GET", "/bkt/k?versionId=v"),
        ("PUT", "/bkt/k"),
    ]


# -- 7: dot segments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client", "target", "backend_target"),
    [
        ("reports", "/bkt/reports/%2e%2e/secret", "/bkt/reports/%2E%2E/secret"),
        ("reports", "/bkt/reports/../secret", "/bkt/reports/%2E%2E/secret"),
        ("reports", "/bkt/reports/./../../x", "/bkt/reports/%2E/%2E%2E/%2E%2E/x"),
        (None, "/pub/%2e%2e/bkt/secret", "/pub/%2E%2E/bkt/secret"),
        (None, "/pub/../bkt/secret", "/pub/%2E%2E/bkt/secret"),
        (None, "/pub/.", "/pub/%2E"),
    ],
)
def test_dot_segments_reach_the_backend_escaped(
    proxy: ProxyProcess,
    raw: RawBackend,
    client: str | None,
    target: str,
    backend_target: str,
) -> None:
    """The key the policy allowed (`reports/../secret` is under `reports/`) is the key the
    backend is asked for: no hop can turn it into `bkt/secret` or another bucket."""
    mark = len(raw.requests())
    assert call(proxy, "GET", target, client).status == 200
    [seen] = seen_after(raw, mark)
    assert seen["target"] == backend_target


def test_the_policy_case_is_really_restricted(proxy: ProxyProcess, raw: RawBackend) -> None:
    mark = len(raw.requests())
    assert call(proxy, "GET", "/bkt/secret", "reports").code == "AccessDenied"
    assert call(proxy, "GET", "/bkt/secret").code == "AccessDenied"
    assert seen_after(raw, mark) == []


@pytest.mark.parametrize("target", ["/%2e%2e/bkt/secret", "/../bkt/secret", "/./k"])
def test_a_dot_segment_bucket_is_invalid(proxy: ProxyProcess, raw: RawBackend, target: str) -> None:
    mark = len(raw.requests())
    answer = call(proxy, "GET", target, "everything")
    assert (answer.status, answer.code) == (400, "InvalidBucketName")
    assert seen_after(raw, mark) == []


def test_keys_with_dot_segments_round_trip_through_a_signature_checking_backend(
    proxy: ProxyProcess, moto_auth: MotoBackend
) -> None:
    """moto verifies the proxy's signature over the escaped path, and stores the literal key."""
    direct = moto_auth.client()
    with contextlib.suppress(ClientError):
        direct.create_bucket(Bucket=AUTH_BUCKET)
    client = boto3_client(proxy.endpoint, *CLIENTS["everything"])
    keys = ["a/../b", "a/./c", "..", "x/..", "./y", "d/.../e"]
    bodies = {key: os.urandom(1000 + n) for n, key in enumerate(keys)}
    for key, body in bodies.items():
        client.put_object(Bucket=AUTH_BUCKET, Key=key, Body=body)
    for key, body in bodies.items():
        got = client.get_object(Bucket=AUTH_BUCKET, Key=key)["Body"].read()
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(body).hexdigest(), key
    stored = {o["Key"]: o["Size"] for o in direct.list_objects_v2(Bucket=AUTH_BUCKET)["Contents"]}
    assert stored == {key: len(body) for key, body in bodies.items()}
    raw_put = call(proxy, "PUT", f"/{AUTH_BUCKET}/z/%2E%2E/w", "everything", body=b"raw")
    assert raw_put.status == 200
    assert direct.get_object(Bucket=AUTH_BUCKET, Key="z/../w")["Body"].read() == b"raw"


# -- 8: headers and methods ----------------------------------------------------------------------

NEVER_FORWARDED = {
    "Connection": "keep-alive, X-Hop-Named",
    "X-Hop-Named": "named by Connection",
    "Keep-Alive": "timeout=5",
    "TE": "trailers",
    "Proxy-Authorization": "Basic dXNlcjpwYXNz",
    "Proxy-Connection": "keep-alive",
    "Forwarded": "for=10.1.2.3;proto=https",
    "X-Forwarded-For": "10.1.2.3",
    "X-Forwarded-Host": "internal.example",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Port": "443",
    "X-Real-IP": "10.1.2.3",
    "Via": "1.1 edge",
    "True-Client-IP": "10.1.2.3",
    "CF-Connecting-IP": "10.1.2.3",
    "X-Client-IP": "10.1.2.3",
    "Cookie": "session=abc",
}


@pytest.mark.parametrize("how", ["signed", "unsigned"])
def test_per_hop_and_forwarding_headers_never_reach_the_backend(
    proxy: ProxyProcess, raw: RawBackend, how: str
) -> None:
    mark = len(raw.requests())
    extra = {"x-amz-meta-kept": "yes"}
    if how == "signed":
        answer = call(proxy, "PUT", "/bkt/h", "writer", headers={**NEVER_FORWARDED, **extra})
    else:
        answer = call(proxy, "PUT", "/bkt/h", "writer", headers=extra, unsigned=NEVER_FORWARDED)
    assert answer.status == 200
    [seen] = seen_after(raw, mark)
    names = {name.lower() for name, _ in seen["headers"]}
    assert names.isdisjoint(name.lower() for name in NEVER_FORWARDED)
    assert ("x-amz-meta-kept", "yes") in [(n.lower(), v) for n, v in seen["headers"]]


@pytest.mark.parametrize("name", ["X-Minio-Force-Delete", "X-Lakefs-Branch", "X-Rgw-Thing"])
def test_unsigned_store_specific_headers_are_refused(
    proxy: ProxyProcess, raw: RawBackend, name: str
) -> None:
    mark = len(raw.requests())
    answer = call(proxy, "DELETE", "/bkt", "admin", unsigned={name: "true"})
    assert (answer.status, answer.code) == (403, "AccessDenied")
    assert etree.fromstring(answer.body).findtext("HeadersNotSigned") == name.lower()
    anonymous = call(proxy, "GET", "/pub/k", unsigned={name: "true"})
    assert (anonymous.status, anonymous.code) == (403, "AccessDenied")
    assert seen_after(raw, mark) == []


def test_force_delete_needs_an_admin_grant(proxy: ProxyProcess, raw: RawBackend) -> None:
    """A grant for DeleteBucket (an empty bucket) is not one for deleting every object in it."""
    force = {"X-Minio-Force-Delete": "true"}
    mark = len(raw.requests())
    for client in ("deleter", "writer"):
        answer = call(proxy, "DELETE", "/bkt", client, headers=force)
        assert (answer.status, answer.code) == (403, "AccessDenied"), client
    assert seen_after(raw, mark) == []

    assert call(proxy, "DELETE", "/bkt", "deleter").status == 200
    [plain] = seen_after(raw, mark)
    assert "x-minio-force-delete" not in {n.lower() for n, _ in plain["headers"]}

    mark = len(raw.requests())
    assert call(proxy, "DELETE", "/bkt", "admin", headers=force).status == 200
    [forced] = seen_after(raw, mark)
    assert ("x-minio-force-delete", "true") in [(n.lower(), v) for n, v in forced["headers"]]
    signed_line = dict((n.lower(), v) for n, v in forced["headers"])["authorization"]
    assert "x-minio-force-delete" in signed_line  # signed with the backend's key, as sent


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "PURGE", "MKCOL", "PATCH", "LOCK"])
@pytest.mark.parametrize("client", ["everything", None])
def test_methods_s3_does_not_have_are_never_forwarded(
    proxy: ProxyProcess, raw: RawBackend, method: str, client: str | None
) -> None:
    mark = len(raw.requests())
    answer = call(proxy, method, "/bkt/k", client)
    assert (answer.status, answer.code) == (405, "MethodNotAllowed")
    assert seen_after(raw, mark) == []
