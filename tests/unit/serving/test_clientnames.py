"""A backend's answer in the client's names, without sockets: errors, Location headers and
sealed upload ids, for a request that went through the real stages."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3router_proxy.config.load import load_config
from s3router_proxy.routing.rules import route_on
from s3router_proxy.routing.uploadid import UploadPin, unwrap
from s3router_proxy.serving.clientnames import client_rewriters
from s3router_proxy.serving.exchange import Exchange
from s3router_proxy.serving.stages import authenticate, parse, route
from s3router_proxy.serving.state import ProxyState
from s3router_proxy.telemetry.accessrecord import RequestRecord

from .test_stages import signed

CONFIG = """
backends:
  lake: {endpoint: "http://127.0.0.1:1", access_key_id: a, secret_access_key: b}
  attic: {endpoint: "http://127.0.0.1:2", access_key_id: c, secret_access_key: d}
clients:
  - {name: writer, access_key_id: AKIAWRITER, secret_access_key: writer-secret}
routing:
  rules:
    - pattern: "data-*"
      target: lake
      mapped_bucket: lake-store
      mapped_prefix: "data/"
      fallback: [{backend: attic, mapped_bucket: old-store, mapped_prefix: "old/"}]
  default_target: lake
"""
ERROR = (
    b"<Error><Code>NoSuchKey</Code><Message>no</Message><BucketName>lake-store</BucketName>"
    b"<Key>data/k/1</Key><Endpoint>lake.internal</Endpoint><HostId>backend-host</HostId>"
    b"<RequestId>backend-id</RequestId></Error>"
)
INITIATED = (
    b"<InitiateMultipartUploadResult><Bucket>lake-store</Bucket><Key>data/k/1</Key>"
    b"<UploadId>backend-upload</UploadId></InitiateMultipartUploadResult>"
)


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> ProxyState:
    path: Path = tmp_path_factory.mktemp("clientnames") / "router.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return ProxyState.build(load_config(path, env={}))


def routed(state: ProxyState, method: str, path: str) -> Exchange:
    exchange = Exchange(signed(method, path), state, RequestRecord("req-1"))
    parse(exchange)
    authenticate(exchange)
    route(exchange)
    return exchange


def test_an_error_names_the_clients_bucket_and_key_and_never_the_backend(
    state: ProxyState,
) -> None:
    exchange = routed(state, "GET", "/data-1/k/1")
    rewriters = client_rewriters(exchange, exchange.route)
    assert rewriters.answer is None  # a GetObject's 200 is the object, never rewritten
    assert rewriters.error is not None
    body = rewriters.error(ERROR)
    assert b"<BucketName>data-1</BucketName>" in body and b"<Key>k/1</Key>" in body
    assert b"<RequestId>req-1</RequestId>" in body and b"<HostId>req-1</HostId>" in body
    for backend_name in (b"lake-store", b"lake.internal", b"backend-host", b"backend-id"):
        assert backend_name not in body


def test_a_location_points_at_the_proxy_whichever_leg_answered(
    state: ProxyState,
) -> None:
    exchange = routed(state, "GET", "/data-1/k/1")
    own = client_rewriters(exchange, exchange.route).location
    fallback = route_on(exchange.route, "attic", "k/1")
    theirs = client_rewriters(exchange, fallback).location
    assert own is not None and theirs is not None
    assert own("http://127.0.0.1:1/lake-store/data/k/1") == "http://127.0.0.1:8080/data-1/k/1"
    assert theirs("http://127.0.0.1:2/old-store/old/k/1") == "http://127.0.0.1:8080/data-1/k/1"


def test_a_created_upload_id_is_sealed_with_its_route_and_the_pinned_mirrors(
    state: ProxyState,
) -> None:
    exchange = routed(state, "POST", "/data-1/k/1?uploads")
    secret = state.config.secret
    plain = client_rewriters(exchange, exchange.route).answer
    assert plain is not None
    exchange.pin = UploadPin(
        "lake", "lake-store", "data/k/1", "", (("attic", "m-up", "old-store", "old/k/1"),)
    )
    pinned = client_rewriters(exchange, exchange.route).answer
    assert pinned is not None
    for rewrite, mirrors in ((plain, ()), (pinned, exchange.pin.mirrors)):
        body = rewrite(INITIATED)
        assert b"<Bucket>data-1</Bucket>" in body and b"<Key>k/1</Key>" in body
        sealed = body.split(b"<UploadId>")[1].split(b"</UploadId>")[0].decode()
        pin = unwrap((secret,), sealed, bucket="data-1", key="k/1")
        assert (pin.backend, pin.bucket, pin.key, pin.upload_id) == (
            "lake",
            "lake-store",
            "data/k/1",
            "backend-upload",
        )
        assert pin.mirrors == mirrors
