"""Where a backend request goes: the bucket becomes part of a host name only when it can be one."""

from __future__ import annotations

import asyncio

import pytest

from s3router_proxy.auth.signer import Credentials
from s3router_proxy.backends.backend import (
    Backend,
    BackendRequest,
    acting_for,
    as_proxy,
    stop_acting,
)
from s3router_proxy.config.model import BackendConfig
from s3router_proxy.s3.errors import S3Error


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


def store(*, require: bool = False) -> Backend:
    return Backend(
        BackendConfig(
            name="store",
            endpoint="http://127.0.0.1:9",
            access_key_id="STOREKEY",
            secret_access_key="store-secret",
            require_client_keys=require,
        )
    )


def signer_of(backend: Backend) -> str:
    request = BackendRequest("GET", "b", "k", "", {}, "UNSIGNED-PAYLOAD")
    _, _, headers = backend.signed_target(request)
    return headers["authorization"].split("Credential=")[1].split("/")[0]


OWN = {"store": Credentials("CLIENTKEY", "client-secret", "client-token")}


def test_a_client_with_keys_for_a_store_signs_as_itself_there_until_it_stops_acting() -> None:
    backend = store()
    assert signer_of(backend) == "STOREKEY"
    token = acting_for(OWN)
    try:
        assert signer_of(backend) == "CLIENTKEY"
        _, _, headers = backend.signed_target(BackendRequest("GET", "b", "", "", {}, "x"))
        assert headers["x-amz-security-token"] == "client-token"
        with as_proxy():  # what the proxy writes for itself
            assert signer_of(backend) == "STOREKEY"
        assert signer_of(backend) == "CLIENTKEY"
    finally:
        stop_acting(token)
    assert signer_of(backend) == "STOREKEY"


def test_a_client_without_keys_for_a_store_uses_the_stores_own() -> None:
    token = acting_for({"elsewhere": Credentials("OTHER", "other-secret")})
    try:
        assert signer_of(store()) == "STOREKEY"
    finally:
        stop_acting(token)


def test_a_store_that_requires_client_keys_refuses_a_client_without_them() -> None:
    backend = store(require=True)
    assert signer_of(backend) == "STOREKEY"  # the proxy's own requests: readiness, journal
    token = acting_for({})
    try:
        assert backend.signing_credentials() is None
        with pytest.raises(S3Error) as refused:
            signer_of(backend)
        assert refused.value.code == "AccessDenied"
        assert "secret" not in refused.value.message
    finally:
        stop_acting(token)
    token = acting_for(OWN)
    try:
        assert signer_of(backend) == "CLIENTKEY"
    finally:
        stop_acting(token)


async def test_tasks_started_for_a_client_act_for_it_and_others_do_not() -> None:
    backend = store()

    async def signer() -> str:
        return signer_of(backend)

    token = acting_for(OWN)
    try:
        started = asyncio.ensure_future(signer())
    finally:
        stop_acting(token)
    apart = asyncio.ensure_future(signer())
    assert await started == "CLIENTKEY"
    assert await apart == "STOREKEY"
