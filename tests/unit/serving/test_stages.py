"""The stages before an answer, without sockets: a request signed by botocore's own signer
goes through parse → authenticate → authorize → route, and the `Exchange` says what each
stage found; refusals are the S3 errors a client would get."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDict, CIMultiDictProxy

from s3router_proxy.auth.anonymous import ANONYMOUS
from s3router_proxy.config.load import load_config
from s3router_proxy.http.messages import Request
from s3router_proxy.s3.errors import S3Error
from s3router_proxy.serving.exchange import Exchange
from s3router_proxy.serving.stages import (
    authenticate,
    authorize,
    copies_across,
    locate_copy_source,
    parse,
    route,
)
from s3router_proxy.serving.state import ProxyState
from s3router_proxy.telemetry.accessrecord import RequestRecord

CONFIG = """
backends:
  lake: {endpoint: "http://127.0.0.1:1", access_key_id: lk, secret_access_key: ls}
  warm: {endpoint: "http://127.0.0.1:2", access_key_id: wk, secret_access_key: ws}
clients:
  - {name: writer, access_key_id: AKIAWRITER, secret_access_key: writer-secret}
  - name: reader
    access_key_id: AKIAREADER
    secret_access_key: reader-secret
    allow:
      - buckets: ["data-*"]
        operations: [read, list]
  - name: loader
    access_key_id: AKIALOADER
    secret_access_key: loader-secret
    allow:
      - buckets: ["data-*"]
        operations: [CopyObject, GetObject]
routing:
  rules:
    - {pattern: "data-*", target: lake}
  default_target: warm
"""


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> ProxyState:
    path: Path = tmp_path_factory.mktemp("stages") / "router.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return ProxyState.build(load_config(path, env={}))


def signed(
    method: str, path: str, *, key_id: str = "AKIAWRITER", secret: str = "writer-secret", **h: str
) -> Request:
    """The front server's view of a request botocore signed for 127.0.0.1:8080."""
    aws = AWSRequest(method=method, url=f"http://127.0.0.1:8080{path}", headers=dict(h))
    aws.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    S3SigV4Auth(Credentials(key_id, secret), "s3", "us-east-1").add_auth(aws)
    headers = CIMultiDict(aws.headers.items())
    headers["Host"] = "127.0.0.1:8080"
    return cast(
        Request,
        SimpleNamespace(
            method=method,
            raw_path=path,
            headers=CIMultiDictProxy(headers),
            scheme="http",
            send_continue=lambda: None,
        ),
    )


def through_route(state: ProxyState, http: Request) -> Exchange:
    exchange = Exchange(http, state, RequestRecord("req-1"))
    parse(exchange)
    authenticate(exchange)
    asyncio.run(authorize(exchange))
    route(exchange)
    locate_copy_source(exchange)
    return exchange


def refusal(state: ProxyState, http: Request) -> str:
    with pytest.raises(S3Error) as caught:
        through_route(state, http)
    return caught.value.code


def test_a_signed_get_is_parsed_authenticated_and_routed_by_rule(state: ProxyState) -> None:
    exchange = through_route(state, signed("GET", "/data-1/a//b%2Fc.txt"))
    request = exchange.request
    assert (request.operation, request.bucket, request.key) == ("GetObject", "data-1", "a//b/c.txt")
    assert exchange.auth.access_key_id == "AKIAWRITER"
    assert exchange.auth is not ANONYMOUS and exchange.signing_key
    assert (exchange.route.backend, exchange.route.bucket, exchange.route.key) == (
        "lake",
        "data-1",
        "a//b/c.txt",
    )
    assert exchange.backend is state.backends["lake"]
    assert exchange.pin is None and not exchange.mirrors.names and exchange.copy is None
    record = exchange.record
    assert (record.client, record.operation, record.backend, record.rule) == (
        "AKIAWRITER",
        "GetObject",
        "lake",
        "0",
    )


def test_the_default_target_takes_what_no_rule_matches(state: ProxyState) -> None:
    exchange = through_route(state, signed("PUT", "/logs/x"))
    assert exchange.request.operation == "PutObject"
    assert (exchange.route.backend, exchange.record.rule) == ("warm", "default")


def test_a_copy_from_another_store_is_marked_across(state: ProxyState) -> None:
    http = signed("PUT", "/logs/copy", **{"x-amz-copy-source": "/data-1/src.bin"})
    exchange = through_route(state, http)
    assert exchange.copy_source == ("lake", "data-1", "src.bin", None)
    assert copies_across(exchange) and exchange.header_overrides is None


def test_a_copy_on_the_same_store_rewrites_the_source_header(state: ProxyState) -> None:
    http = signed("PUT", "/data-2/copy", **{"x-amz-copy-source": "/data-1/src.bin"})
    exchange = through_route(state, http)
    assert not copies_across(exchange)
    assert exchange.header_overrides == {"x-amz-copy-source": "data-1/src.bin"}


@pytest.mark.parametrize(
    ("http", "code"),
    [
        ({"method": "GET", "path": "/data-1/k", "secret": "wrong"}, "SignatureDoesNotMatch"),
        ({"method": "GET", "path": "/data-1/k", "key_id": "AKIANOBODY"}, "InvalidAccessKeyId"),
        (
            {
                "method": "PUT",
                "path": "/data-1/k",
                "key_id": "AKIAREADER",
                "secret": "reader-secret",
            },
            "AccessDenied",
        ),
        (
            {"method": "GET", "path": "/logs/k", "key_id": "AKIAREADER", "secret": "reader-secret"},
            "AccessDenied",
        ),
    ],
)
def test_refusals_are_the_s3_errors_a_client_gets(
    state: ProxyState, http: dict[str, Any], code: str
) -> None:
    assert refusal(state, signed(http.pop("method"), http.pop("path"), **http)) == code


def test_an_unsigned_request_is_refused_unless_anonymous_access_is_allowed(
    state: ProxyState,
) -> None:
    http = cast(
        Request,
        SimpleNamespace(
            method="GET",
            raw_path="/data-1/k",
            headers=CIMultiDictProxy(CIMultiDict(Host="127.0.0.1:8080")),
            scheme="http",
        ),
    )
    assert refusal(state, http) == "AccessDenied"


def test_a_copy_needs_read_access_to_its_source(state: ProxyState) -> None:
    def copy(source: str) -> Request:
        return signed(
            "PUT",
            "/data-2/copy",
            key_id="AKIALOADER",
            secret="loader-secret",
            **{"x-amz-copy-source": source},
        )

    assert through_route(state, copy("/data-1/src")).copy is not None
    # A copy's source is authorized as a GetObject: the loader may write here, not read logs.
    assert refusal(state, copy("/logs/secret")) == "AccessDenied"
