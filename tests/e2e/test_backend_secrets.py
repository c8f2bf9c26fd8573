"""Credentials stay on their side of the proxy: a client never receives anything minted from a
backend's keys, and a backend never receives a client's session token. The backend here is
`RawBackend`, which logs exactly what reached it and answers what a test scripts, so an answer
full of backend credentials is there to be leaked if the proxy let it through."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3
from harness import ProxyProcess, RawBackend, StartProxy, boto3_client
from rawclient import signed_request

KEY, SECRET = "AKIASECRETS", "secrets-secret"
TEMP_KEY, TEMP_SECRET, TEMP_TOKEN = "ASIASECRETS", "temp-secret", "client-session-token-0123"
BACKEND_SECRET = "backend-secret-key-do-not-leak"
SESSION_ANSWER = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<CreateSessionResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Credentials>'
    b"<SessionToken>minted-from-backend-keys</SessionToken>"
    b"<SecretAccessKey>minted-secret</SecretAccessKey>"
    b"<AccessKeyId>ASIAMINTED</AccessKeyId><Expiration>2030-01-01T00:00:00Z</Expiration>"
    b"</Credentials></CreateSessionResult>"
)


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[RawBackend]:
    with RawBackend(tmp_path) as raw:
        answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n%s"
        raw.script({"*": [{"send": answer % (len(SESSION_ANSWER), SESSION_ANSWER)}]})
        yield raw


@pytest.fixture
def proxy(start_proxy: StartProxy, backend: RawBackend) -> ProxyProcess:
    return start_proxy(
        textwrap.dedent(
            f"""\
            backends:
              raw:
                endpoint: "{backend.endpoint}"
                access_key_id: "backend-key"
                secret_access_key: "{BACKEND_SECRET}"
            clients:
              - {{name: plain, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
              - name: temporary
                access_key_id: "{TEMP_KEY}"
                secret_access_key: "{TEMP_SECRET}"
                session_token: "{TEMP_TOKEN}"
            routing:
              default_target: raw
            """
        )
    )


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/bucket?session", {"x-amz-create-session-mode": "ReadWrite"}),
        ("PUT", "/bucket/mine?renameObject", {"x-amz-rename-source": "/bucket/not-mine"}),
    ],
    ids=["CreateSession", "RenameObject"],
)
def test_operations_the_proxy_cannot_guard_never_reach_a_backend(
    proxy: ProxyProcess, backend: RawBackend, method: str, path: str, headers: dict[str, str]
) -> None:
    """CreateSession answers with credentials minted from the backend's keys (a client holding
    them would bypass every rule); RenameObject deletes a source key no grant looks at."""
    answer = signed_request(method, proxy.endpoint + path, KEY, SECRET, headers=headers)
    assert (answer.status, answer.error_code) == (501, "NotImplemented")
    assert b"minted" not in answer.body and b"ASIAMINTED" not in answer.body
    assert backend.requests() == []


def test_a_sigv2_presigned_url_never_hands_the_client_token_to_the_backend(
    proxy: ProxyProcess, backend: RawBackend
) -> None:
    """botocore puts a temporary client's token in a SigV2 URL as `x-amz-security-token`,
    lower case; it authenticates the client to the proxy and is never forwarded."""
    v2 = boto3_client(
        proxy.endpoint, TEMP_KEY, TEMP_SECRET, session_token=TEMP_TOKEN, signature_version="s3"
    )
    url = v2.generate_presigned_url("get_object", Params={"Bucket": "bucket", "Key": "k"})
    assert "x-amz-security-token=" in url
    response = urllib3.PoolManager(retries=False).request("GET", url)
    assert response.status == 200
    (seen,) = backend.requests()
    assert seen["target"] == "/bucket/k"
    assert TEMP_TOKEN.encode() not in backend.received()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/minio/admin/v3/info"),
        ("PUT", "/minio/admin/v3/add-user?accessKey=mine"),
        ("GET", "/minio/v2/metrics/cluster"),
        ("PUT", "/admin/user?uid=mine&display-name=mine"),
        ("GET", "/admin/metadata/user"),
        ("GET", "/minio?list-type=2"),
    ],
)
def test_backend_admin_apis_are_never_signed_with_the_backend_keys(
    proxy: ProxyProcess, backend: RawBackend, method: str, path: str
) -> None:
    """MinIO's admin API lives under /minio/ and Ceph RGW's under /admin/, both taking
    S3-signed requests: as a "bucket" routed by default, the proxy would sign an admin
    command with the backend's (often root) keys."""
    answer = signed_request(method, proxy.endpoint + path, KEY, SECRET)
    assert answer.status in (403, 404), answer.body
    assert answer.error_code in ("AccessDenied", "NoSuchBucket")
    assert backend.requests() == []
