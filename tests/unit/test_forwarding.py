"""What a backend request is made of: a key path no hop can normalise into another key."""

from __future__ import annotations

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from s3router_proxy.backends import Backend, key_path
from s3router_proxy.config import BackendConfig

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
        "GET", "bkt", "a/../b", "", {}, "UNSIGNED-PAYLOAD"
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
