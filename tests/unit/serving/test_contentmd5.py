"""Content-MD5 added around a forward, without sockets: the forward it wraps (a scripted one,
the decorator's collaborator) sees the header computed over the exact body it sends, only
where the leg's backend asks for it and the client sent none."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path

import pytest

from s3router_proxy.backends.forward import Leg
from s3router_proxy.config.load import load_config
from s3router_proxy.http.messages import Response
from s3router_proxy.serving.contentmd5 import with_content_md5
from s3router_proxy.serving.exchange import Exchange
from s3router_proxy.serving.stages import authenticate, parse, route
from s3router_proxy.serving.state import ProxyState
from s3router_proxy.telemetry.accessrecord import RequestRecord

from .test_stages import signed

CONFIG = """
backends:
  strict: {endpoint: "http://127.0.0.1:1", access_key_id: a, secret_access_key: b,
           add_content_md5: true}
  lax: {endpoint: "http://127.0.0.1:2", access_key_id: c, secret_access_key: d}
clients:
  - {name: writer, access_key_id: AKIAWRITER, secret_access_key: writer-secret}
routing:
  rules:
    - {pattern: "strict-*", target: strict}
  default_target: lax
"""
TAGGING = b"<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>"


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> ProxyState:
    path: Path = tmp_path_factory.mktemp("md5") / "router.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return ProxyState.build(load_config(path, env={}))


def headers_seen(state: ProxyState, path: str, **headers: str) -> dict[str, str] | None:
    """The header overrides the wrapped forward was called with, for a body already read."""
    exchange = Exchange(signed("PUT", path, **headers), state, RequestRecord("req-1"))
    parse(exchange)
    authenticate(exchange)
    route(exchange)
    exchange.body_override = TAGGING
    seen: list[dict[str, str] | None] = []

    async def forward(exchange: Exchange, leg: Leg) -> Response:
        seen.append(exchange.header_overrides)
        return Response(status=200)

    leg = Leg(exchange.route, exchange.backend)
    assert asyncio.run(with_content_md5(forward)(exchange, leg)).status == 200
    assert exchange.body_override == TAGGING  # the body sent is the one hashed
    return seen[0]


def test_added_for_a_backend_that_demands_it(state: ProxyState) -> None:
    expected = base64.b64encode(hashlib.md5(TAGGING).digest()).decode()
    assert headers_seen(state, "/strict-1/k?tagging") == {"content-md5": expected}


def test_not_added_where_the_client_sent_one_or_nobody_asks(state: ProxyState) -> None:
    assert headers_seen(state, "/strict-1/k?tagging", **{"Content-MD5": "client's"}) is None
    assert headers_seen(state, "/other/k?tagging") is None  # the backend does not demand it
    assert headers_seen(state, "/strict-1/k") is None  # PutObject: not a small document
