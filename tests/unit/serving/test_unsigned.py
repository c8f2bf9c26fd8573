"""Unsigned requests forwarded unsigned (`anonymous: {forward: unsigned}`), through the stages
and answers without sockets: they go out without a signature, and whatever would make the proxy
ask a store with its keys on their behalf is refused before any store is asked."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from s3router_proxy.auth.anonymous import (
    ANONYMOUS,
    PASSED_THROUGH,
    explain_unsigned,
    forwarded_unsigned,
)
from s3router_proxy.backends.backend import Backend, BackendRequest
from s3router_proxy.config.load import load_config
from s3router_proxy.config.model import BackendConfig
from s3router_proxy.http.messages import Request
from s3router_proxy.routing.explain import DescribedRequest, explain
from s3router_proxy.s3.errors import S3Error
from s3router_proxy.serving.answers import answer_copy_across_stores, bucket_answer
from s3router_proxy.serving.exchange import Exchange
from s3router_proxy.serving.stages import authenticate, authorize, locate_copy_source, parse, route
from s3router_proxy.serving.state import ProxyState
from s3router_proxy.telemetry.accessrecord import RequestRecord

BACKENDS = """
backends:
  lake: {endpoint: "http://127.0.0.1:1", access_key_id: lk, secret_access_key: ls}
  warm: {endpoint: "http://127.0.0.1:2", access_key_id: wk, secret_access_key: ws}
routing:
  rules:
    - {pattern: "mirrored", target: lake, mirror: [warm]}
    - {pattern: "split", key_pattern: "cold/*", target: warm}
    - {pattern: "split", target: lake}
  default_target: lake
"""
UNSIGNED = BACKENDS + "anonymous: {forward: unsigned}\n"
SIGNED = BACKENDS + 'anonymous: {allow: [{buckets: ["public"]}]}\n'


def state_of(tmp_path: Path, text: str) -> ProxyState:
    path = tmp_path / "router.yaml"
    path.write_text(text, encoding="utf-8")
    return ProxyState.build(load_config(path, env={}))


def unsigned(method: str, path: str, **headers: str) -> Request:
    """The front server's view of a request without any signature."""
    plain = CIMultiDict(headers)
    plain["Host"] = "127.0.0.1:8080"
    return cast(
        Request,
        SimpleNamespace(
            method=method,
            raw_path=path,
            headers=CIMultiDictProxy(plain),
            scheme="http",
            send_continue=lambda: None,
        ),
    )


def authenticated(state: ProxyState, http: Request) -> Exchange:
    exchange = Exchange(http, state, RequestRecord("req-1"))
    parse(exchange)
    authenticate(exchange)
    asyncio.run(authorize(exchange))
    return exchange


def refused(call: object) -> S3Error:
    with pytest.raises(S3Error) as caught:
        call()  # type: ignore[operator]
    return caught.value


def test_an_unsigned_read_is_routed_to_go_out_unsigned(tmp_path: Path) -> None:
    exchange = authenticated(state_of(tmp_path, UNSIGNED), unsigned("GET", "/public/a.txt"))
    route(exchange)
    assert exchange.auth is PASSED_THROUGH and forwarded_unsigned(exchange.auth)
    assert exchange.record.client == "anonymous"
    assert exchange.route.backend == "lake"


def test_granted_unsigned_requests_still_go_out_signed_by_default(tmp_path: Path) -> None:
    state = state_of(tmp_path, SIGNED)
    exchange = authenticated(state, unsigned("GET", "/public/a.txt"))
    assert exchange.auth is ANONYMOUS and not forwarded_unsigned(exchange.auth)
    denied = refused(lambda: authenticated(state, unsigned("GET", "/private/a.txt")))
    assert denied.code == "AccessDenied"


def test_without_an_anonymous_section_unsigned_requests_are_refused(tmp_path: Path) -> None:
    state = state_of(tmp_path, BACKENDS)
    error = refused(lambda: authenticated(state, unsigned("GET", "/public/a.txt")))
    assert (error.code, error.message) == ("AccessDenied", "Anonymous requests are not allowed.")


def test_a_mirrored_write_is_refused_before_any_store_is_asked(tmp_path: Path) -> None:
    exchange = authenticated(state_of(tmp_path, UNSIGNED), unsigned("PUT", "/mirrored/k"))
    error = refused(lambda: route(exchange))
    assert error.code == "AccessDenied" and "mirrored" in error.message


def test_listings_the_proxy_would_make_with_store_keys_are_refused(tmp_path: Path) -> None:
    state = state_of(tmp_path, UNSIGNED)
    for path in ("/", "/split?list-type=2"):
        exchange = authenticated(state, unsigned("GET", path))
        error = refused(lambda exchange=exchange: asyncio.run(bucket_answer(exchange)))
        assert error.code == "AccessDenied", path


def test_a_copy_across_stores_is_refused(tmp_path: Path) -> None:
    state = state_of(tmp_path, UNSIGNED)
    http = unsigned("PUT", "/public/copy", **{"x-amz-copy-source": "/split/cold/source"})
    exchange = authenticated(state, http)
    route(exchange)
    locate_copy_source(exchange)
    error = refused(lambda: asyncio.run(answer_copy_across_stores(exchange)))
    assert error.code == "AccessDenied"


def test_an_unsigned_target_carries_no_credentials() -> None:
    backend = Backend(
        BackendConfig("b", "http://store:9000", access_key_id="AK", secret_access_key="SK")
    )
    request = BackendRequest("GET", "bkt", "a/../k", "acl=", {"range": "bytes=0-1"}, "x")
    host, target, headers = backend.unsigned_target(request)
    assert (host, target) == ("store:9000", "/bkt/a/%2E%2E/k?acl=")
    assert headers == {"range": "bytes=0-1", "host": "store:9000"}
    signed_host, signed_target, signed_headers = backend.signed_target(request)
    assert (signed_host, signed_target) == (host, target)
    assert "authorization" in signed_headers


@pytest.mark.parametrize(
    ("method", "url", "config", "verdict"),
    [
        ("GET", "public/k", UNSIGNED, "forwarded unsigned to lake"),
        ("PUT", "mirrored/k", UNSIGNED, "refused: the write is mirrored"),
        ("GET", "split", UNSIGNED, "refused: the bucket spans several stores"),
        ("GET", "public/k", SIGNED, "signed with lake's keys"),
        ("GET", "private/k", SIGNED, "refused by the `anonymous:` grants"),
        ("GET", "public/k", BACKENDS, "refused (no `anonymous:` grants)"),
    ],
)
def test_explain_says_what_an_unsigned_request_gets(
    tmp_path: Path, method: str, url: str, config: str, verdict: str
) -> None:
    state = state_of(tmp_path, config)
    bucket, _, key = url.partition("/")
    explanation = explain(state.config, DescribedRequest(method, bucket, key))
    said = explain_unsigned(explanation, state.config.anonymous, state.config.anonymous_unsigned)
    assert verdict in said


def test_explain_refuses_an_unsigned_request_to_a_store_without_acls(tmp_path: Path) -> None:
    state = state_of(tmp_path, UNSIGNED)
    explanation = explain(state.config, DescribedRequest("GET", "public", "k"))
    forwarded = explain_unsigned(explanation, state.config.anonymous, True)
    refused = explain_unsigned(explanation, state.config.anonymous, True, frozenset({"lake"}))
    assert forwarded.startswith("forwarded unsigned to lake")
    assert refused == "refused: lake has no ACLs of its own to decide it"
