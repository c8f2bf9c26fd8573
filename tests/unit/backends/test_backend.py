"""Where a backend request goes: the bucket becomes part of a host name only when it can be one."""

from __future__ import annotations

import pytest

from s3router_proxy.backends.backend import Backend
from s3router_proxy.config.model import BackendConfig


def virtual() -> Backend:
    return Backend(
        BackendConfig(
            name="aws",
            endpoint="https://s3.example.com",
            addressing_style="virtual",
            access_key_id="k",
            secret_access_key="s",
        )
    )


def test_a_dns_compatible_bucket_is_addressed_virtual_hosted() -> None:
    assert virtual().address("my-bucket-1", "a/b c") == ("my-bucket-1.s3.example.com", "/a/b%20c")


@pytest.mark.parametrize(
    "bucket",
    ["localhost:6379?", "x@internal#", "metadata?", "UPPER", "ab", "a.b.c", "-edge", "edge-"],
)
def test_any_other_bucket_name_goes_path_style_to_the_endpoint(bucket: str) -> None:
    host, path = virtual().address(bucket, "k")
    assert host == "s3.example.com"
    assert path.endswith("/k") and path.count("/") == 2
    assert not any(c in path for c in ":@?#")
