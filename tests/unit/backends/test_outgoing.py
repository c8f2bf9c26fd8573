"""What a backend request is made of: a key path no hop can normalise into another key, and
only the client headers that belong to the request (never per-hop, forwarding or store-specific
control headers the client did not sign and may not send). Pure functions; the end-to-end
proof, with the bytes a backend received, is tests/e2e/test_backend_requests.py."""

from __future__ import annotations

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDict, CIMultiDictProxy

from s3router_proxy.auth.policy import ClientPolicy, Grant, authorize_vendor_headers
from s3router_proxy.backends.backend import Backend, BackendRequest, key_path
from s3router_proxy.backends.outgoing import backend_headers
from s3router_proxy.config.model import BackendConfig
from s3router_proxy.s3.errors import S3Error
from s3router_proxy.s3.request import parse_request

# -- key paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("reports/../secret", "reports/%2E%2E/secret"),
        ("../bkt/secret", "%2E%2E/bkt/secret"),
        ("a/./b", "a/%2E/b"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("a/..", "a/%2E%2E"),
        ("./", "%2E/"),
        ("a//../b", "a//%2E%2E/b"),
        # Dots inside a segment are just characters.
        ("a/.../b", "a/.../b"),
        ("a/..b/.c/d.", "a/..b/.c/d."),
        ("v1.2/file.tar.gz", "v1.2/file.tar.gz"),
        ("dir/my key+1", "dir/my%20key%2B1"),
        ("", ""),
    ],
)
def test_key_path_escapes_dot_segments_only(key: str, path: str) -> None:
    assert key_path(key) == path


def test_backend_address_uses_the_escaped_key() -> None:
    config = BackendConfig("b", "http://127.0.0.1:9000", access_key_id="k", secret_access_key="s")
    assert Backend(config).address("bkt", "reports/../secret") == (
        "127.0.0.1:9000",
        "/bkt/reports/%2E%2E/secret",
    )
    virtual = BackendConfig(
        "v",
        "http://s3.local:9000",
        addressing_style="virtual",
        access_key_id="k",
        secret_access_key="s",
    )
    assert Backend(virtual).address("bkt", "../x") == ("bkt.s3.local:9000", "/%2E%2E/x")


def test_the_escaped_path_is_signed_as_botocore_signs_it() -> None:
    """A backend that verifies like botocore (moto; S3 takes the path as sent) agrees."""
    config = BackendConfig(
        "b", "http://127.0.0.1:9000", access_key_id="AKID", secret_access_key="s"
    )
    host, target, signed = Backend(config).signed_target(
        BackendRequest("GET", "bkt", "a/../b", "", {}, "UNSIGNED-PAYLOAD")
    )
    assert target == "/bkt/a/%2E%2E/b"
    reference = AWSRequest(
        method="GET",
        url=f"http://{host}{target}",
        headers={
            "host": host,
            "x-amz-date": signed["x-amz-date"],
            "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        },
    )
    reference.context["timestamp"] = signed["x-amz-date"]
    signer = botocore.auth.S3SigV4Auth(Credentials("AKID", "s"), "s3", "us-east-1")
    canonical = signer.canonical_request(reference)
    assert canonical.split("\n")[1] == "/bkt/a/%2E%2E/b"
    expected = signer.signature(signer.string_to_sign(reference, canonical), reference)
    assert signed["authorization"].endswith(f"Signature={expected}")


# -- headers --------------------------------------------------------------------------------------


def request_with(headers: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    raw = CIMultiDictProxy(CIMultiDict([("Host", "s3.local"), *headers]))
    return parse_request("PUT", "/bkt/key", raw)


NEVER_FORWARDED = [
    ("Connection", "keep-alive, X-Custom-Hop"),
    ("X-Custom-Hop", "per hop, named by Connection"),
    ("Keep-Alive", "timeout=5"),
    ("Upgrade", "websocket"),
    ("Proxy-Authorization", "Basic eA=="),
    ("Proxy-Connection", "keep-alive"),
    ("Proxy-Whatever", "x"),
    ("TE", "trailers"),
    ("Trailer", "x-amz-checksum-crc32"),
    ("Transfer-Encoding", "chunked"),
    ("Forwarded", "for=10.0.0.1;proto=https"),
    ("X-Forwarded-For", "10.0.0.1"),
    ("X-Forwarded-Host", "internal.example"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Port", "443"),
    ("X-Forwarded-Prefix", "/admin"),
    ("X-Real-IP", "10.0.0.1"),
    ("Via", "1.1 edge"),
    ("True-Client-IP", "10.0.0.1"),
    ("CF-Connecting-IP", "10.0.0.1"),
    ("X-Client-IP", "10.0.0.1"),
    ("Cookie", "session=abc"),
]


def test_per_hop_forwarding_and_browser_headers_are_dropped() -> None:
    request = request_with(
        [*NEVER_FORWARDED, ("Content-Type", "text/plain"), ("X-Amz-Meta-A", "1")]
    )
    signed, unsigned = backend_headers(request)
    forwarded = set(signed) | set(unsigned)
    assert forwarded.isdisjoint({name.lower() for name, _ in NEVER_FORWARDED})
    assert signed == {"content-type": "text/plain", "x-amz-meta-a": "1"}


def test_connection_may_name_several_headers_in_several_lines() -> None:
    request = request_with(
        [
            ("Connection", "a-one"),
            ("Connection", " A-Two ,,"),
            ("A-One", "1"),
            ("a-two", "2"),
            ("A-Three", "3"),
        ]
    )
    signed, _ = backend_headers(request)
    assert signed == {"a-three": "3"}


# -- store-specific headers -----------------------------------------------------------------------

EVERYTHING = ClientPolicy(allow=None)
ADMIN = ClientPolicy(allow=(Grant(("bkt",), None, frozenset({"admin"})),))
READ_WRITE_DELETE = ClientPolicy(
    allow=(Grant(("bkt",), None, frozenset({"read", "write", "list", "delete", "DeleteBucket"})),)
)
KEYS_ONLY = ClientPolicy(allow=(Grant(("bkt",), ("team/*",), None),))


def vendor_code(policy: ClientPolicy, headers: list[str], signed: list[str]) -> str | None:
    try:
        authorize_vendor_headers(policy, "c", "bkt", headers, signed)
    except S3Error as error:
        return error.code + (f" {error.details['HeadersNotSigned']}" if error.details else "")
    return None


@pytest.mark.parametrize("name", ["X-Minio-Force-Delete", "x-lakefs-branch", "X-Rgw-Object-Type"])
def test_store_specific_headers_must_be_signed(name: str) -> None:
    assert vendor_code(EVERYTHING, ["host", name], ["host"]) == f"AccessDenied {name.lower()}"
    assert vendor_code(EVERYTHING, ["host", name], ["host", name.lower()]) is None


def test_store_specific_headers_need_an_admin_grant_on_the_bucket() -> None:
    headers, signed = ["X-Minio-Force-Delete"], ["x-minio-force-delete"]
    assert vendor_code(ADMIN, headers, signed) is None
    assert vendor_code(READ_WRITE_DELETE, headers, signed) == "AccessDenied"
    assert vendor_code(KEYS_ONLY, headers, signed) == "AccessDenied"
    denied = ClientPolicy(allow=None, deny=(Grant(("bkt",), None, frozenset({"admin"})),))
    assert vendor_code(denied, headers, signed) == "AccessDenied"


def test_requests_without_store_specific_headers_pass() -> None:
    assert vendor_code(KEYS_ONLY, ["host", "x-amz-date", "x-minimal"], []) is None
