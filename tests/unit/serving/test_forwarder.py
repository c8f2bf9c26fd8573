"""The exchange's forwarder composed around a scripted backend call, without sockets: the
legs a request is sent along, the names each leg's answer is mapped by, what the access log
names, and Content-MD5 reaching the backend call. Rules come from a real config document and
requests go through the real stages."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from s3router_proxy.backends.forward import Leg, Rewriters, TryNextBackend
from s3router_proxy.config.load import load_config
from s3router_proxy.http.messages import Response
from s3router_proxy.serving.exchange import Exchange
from s3router_proxy.serving.forwarder import forwarder
from s3router_proxy.serving.stages import authenticate, parse, plan_body, route
from s3router_proxy.serving.state import ProxyState
from s3router_proxy.telemetry.accessrecord import RequestRecord

from .test_stages import signed

CONFIG = """
backends:
  new: {endpoint: "http://127.0.0.1:1", access_key_id: a, secret_access_key: b,
        add_content_md5: true}
  old: {endpoint: "http://127.0.0.1:2", access_key_id: c, secret_access_key: d}
  archive: {endpoint: "http://127.0.0.1:3", access_key_id: e, secret_access_key: f}
clients:
  - {name: writer, access_key_id: AKIAWRITER, secret_access_key: writer-secret}
routing:
  rules:
    - pattern: "back-*"
      target: new
      fallback: [{backend: archive, mapped_bucket: attic, mapped_prefix: "mig/"}, old]
  default_target: old
"""
# A backend listing's names: "mig/x" is "x" to a backend whose keys carry a "mig/" prefix.
LISTING = (
    b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<Name>attic</Name><Contents><Key>mig/x</Key></Contents></ListBucketResult>"
)


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> ProxyState:
    path: Path = tmp_path_factory.mktemp("forwarder") / "router.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return ProxyState.build(load_config(path, env={}))


def exchange_for(state: ProxyState, method: str, path: str) -> Exchange:
    exchange = Exchange(signed(method, path), state, RequestRecord("req-1"))
    parse(exchange)
    authenticate(exchange)
    route(exchange)
    asyncio.run(plan_body(exchange))
    return exchange


def forwarded(
    exchange: Exchange, statuses: dict[str, int]
) -> tuple[Response, list[tuple[str, Leg, Rewriters, dict[str, str] | None]]]:
    """Forward through the composed forwarder; each backend answers its scripted status, a
    miss dropped when the leg says so, as `forward` does."""
    sent: list[tuple[str, Leg, Rewriters, dict[str, str] | None]] = []

    async def send(exchange: Exchange, leg: Leg, rewriters: Rewriters) -> Response:
        sent.append((leg.backend.name, leg, rewriters, exchange.header_overrides))
        status = statuses[leg.backend.name]
        if leg.try_next is not None and leg.try_next(status):
            raise TryNextBackend(status)
        return Response(status=status)

    leg = Leg(exchange.route, exchange.backend)
    response = asyncio.run(forwarder(exchange, send)(exchange, leg))
    return response, sent


def test_each_fallback_answer_is_mapped_by_the_names_its_leg_was_asked_at(
    state: ProxyState,
) -> None:
    """The backend asked after a fallback with names of its own maps its answer by the
    route's names, never by the names the fallback before it had."""
    exchange = exchange_for(state, "GET", "/back-1/k/1")
    response, sent = forwarded(exchange, {"new": 404, "archive": 404, "old": 200})
    assert response.status == 200
    assert [name for name, *_ in sent] == ["new", "archive", "old"]
    assert [(leg.route.bucket, leg.route.key) for _, leg, _, _ in sent] == [
        ("back-1", "k/1"),
        ("attic", "mig/k/1"),
        ("back-1", "k/1"),
    ]
    mapped = [rewriters.error(LISTING) for _, _, rewriters, _ in sent if rewriters.error]
    assert len(mapped) == 3
    assert b"<Key>mig/x</Key>" in mapped[0]  # the route's names: the key is the client's
    assert b"<Key>x</Key>" in mapped[1]  # the archive's: its prefix is not the client's
    assert b"<Key>mig/x</Key>" in mapped[2]
    assert all(b"<Name>back-1</Name>" in body for body in mapped)


def test_the_access_log_names_the_backend_that_answered(state: ProxyState) -> None:
    exchange = exchange_for(state, "GET", "/back-1/k/1")
    forwarded(exchange, {"new": 404, "archive": 200, "old": 200})
    record = exchange.record
    assert (record.backend, record.backend_bucket, record.backend_key) == (
        "archive",
        "attic",
        "mig/k/1",
    )


def test_content_md5_reaches_the_backend_call_and_writes_never_fall_back(
    state: ProxyState,
) -> None:
    exchange = exchange_for(state, "PUT", "/back-1/k/1?tagging")
    exchange.body_override = b"<Tagging><TagSet/></Tagging>"
    response, sent = forwarded(exchange, {"new": 404})
    assert response.status == 404
    assert [name for name, *_ in sent] == ["new"]
    overrides = sent[0][3]
    assert overrides is not None and "content-md5" in overrides
