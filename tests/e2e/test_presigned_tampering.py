"""A presigned URL handed to someone else does exactly what it was signed for: whoever holds it
cannot add a parameter or header that changes the request, repeat the signed ones to confuse
which is checked, or stretch its lifetime. Every tampered URL is refused with the S3 code and
never reaches the backend; the untampered one still works."""

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
from lxml import etree

KEY, SECRET = "AKIAPRESIGN", "presign-secret"
BUCKET = unique_bucket_name("presign")
HTTP = urllib3.PoolManager(retries=False)


@pytest.fixture
def proxy(start_proxy: StartProxy, moto_plain: MotoBackend) -> ProxyProcess:
    direct = moto_plain.client()
    with contextlib.suppress(ClientError):
        direct.create_bucket(Bucket=BUCKET)
    direct.put_object(Bucket=BUCKET, Key="shared.txt", Body=b"for you")
    direct.put_object(Bucket=BUCKET, Key="other.txt", Body=b"not for you")
    return start_proxy(
        f"""
        backends:
          store:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
        clients:
          - {{name: sharer, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          default_target: store
        """
    )


def code(response: urllib3.BaseHTTPResponse) -> str | None:
    return etree.fromstring(response.data).findtext("Code") if response.data else None


def presigned(proxy: ProxyProcess, version: str) -> str:
    client = boto3_client(proxy.endpoint, KEY, SECRET, signature_version=version)
    return client.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "shared.txt"}, ExpiresIn=600
    )


def _second_signature(url: str) -> str:
    """A wrong X-Amz-Signature first and the right one after it."""
    head, _, signature = url.rpartition("&")
    return f"{head}&X-Amz-Signature={'0' * 64}&{signature}"


V4_TAMPERING = {
    "extra parameter": (lambda url: url + "&versionId=null", {}, "SignatureDoesNotMatch"),
    "operation added": (lambda url: url + "&tagging", {}, "SignatureDoesNotMatch"),
    "second X-Amz-Date": (
        lambda url: url + "&X-Amz-Date=20991231T000000Z",
        {},
        "SignatureDoesNotMatch",
    ),
    "longer X-Amz-Expires": (
        lambda url: url.replace("X-Amz-Expires=600", "X-Amz-Expires=604800"),
        {},
        "SignatureDoesNotMatch",
    ),
    "other key": (
        lambda url: url.replace("shared.txt", "other.txt"),
        {},
        "SignatureDoesNotMatch",
    ),
    "bad signature first": (_second_signature, {}, "SignatureDoesNotMatch"),
    "unsigned x-amz header": (
        lambda url: url,
        {"x-amz-request-payer": "requester"},
        "AccessDenied",
    ),
    "token of nobody": (lambda url: url + "&X-Amz-Security-Token=forged", {}, "InvalidToken"),
}


@pytest.mark.parametrize("case", sorted(V4_TAMPERING))
def test_a_tampered_sigv4_url_is_refused_before_the_backend(
    proxy: ProxyProcess, moto_plain: MotoBackend, case: str
) -> None:
    url = presigned(proxy, "s3v4")
    assert HTTP.request("GET", url).data == b"for you"
    tamper, headers, expected = V4_TAMPERING[case]
    tampered = tamper(url)
    assert tampered != url or headers
    mark = moto_plain.request_count()
    response = HTTP.request("GET", tampered, headers=headers)
    assert (response.status, code(response)) == (
        400 if expected == "InvalidToken" else 403,
        expected,
    ), response.data
    assert moto_plain.requests_since(mark) == []


V2_TAMPERING = {
    "operation added": lambda url: url + "&acl",
    "version added": lambda url: url + "&versionId=null",
    "response header changed": lambda url: url + "&response-content-type=text/html",
    "other key": lambda url: url.replace("shared.txt", "other.txt"),
    "later expiry": lambda url: url.replace("Expires=", "Expires=9"),
    "x-amz parameter added": lambda url: url + "&x-amz-request-payer=requester",
}


@pytest.mark.parametrize("case", sorted(V2_TAMPERING))
def test_a_tampered_sigv2_url_is_refused_before_the_backend(
    proxy: ProxyProcess, moto_plain: MotoBackend, case: str
) -> None:
    url = presigned(proxy, "s3")
    assert "Signature=" in url and "X-Amz-" not in url
    assert HTTP.request("GET", url).data == b"for you"
    mark = moto_plain.request_count()
    tampered = V2_TAMPERING[case](url)
    assert tampered != url
    response = HTTP.request("GET", tampered)
    assert (response.status, code(response)) == (403, "SignatureDoesNotMatch"), response.data
    assert moto_plain.requests_since(mark) == []
