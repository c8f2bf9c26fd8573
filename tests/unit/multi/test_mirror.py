"""The mirroring decorator around a scripted forward (its collaborator), for requests that
went through the real stages: a write without mirrors goes on untouched; with mirrors, the
order of the target and the mirrors follows the mode, a mirror that is down refuses a strict
write before the target is asked and is journaled after a best-effort one. The mirror is a
port nothing listens on: no server, and no stand-in for one."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from s3router_proxy.backends.forward import Leg
from s3router_proxy.config.load import load_config
from s3router_proxy.http.messages import Response
from s3router_proxy.multi.journal import read_journal
from s3router_proxy.multi.mirror import mirrored
from s3router_proxy.multi.mirrorwrite import MirroredWrite
from s3router_proxy.s3.errors import S3Error
from s3router_proxy.serving.exchange import Exchange
from s3router_proxy.serving.stages import (
    authenticate,
    locate_copy_source,
    parse,
    plan_body,
    route,
)
from s3router_proxy.serving.state import ProxyState
from s3router_proxy.telemetry.accessrecord import RequestRecord

from ..serving.test_stages import signed

CONFIG = """
router:
  mirror_journal: journal.jsonl
backends:
  main: {{endpoint: "http://127.0.0.1:{port}", access_key_id: a, secret_access_key: b}}
  copy: {{endpoint: "http://127.0.0.1:{port}", access_key_id: c, secret_access_key: d,
          connect_timeout: 1}}
clients:
  - {{name: writer, access_key_id: AKIAWRITER, secret_access_key: writer-secret}}
routing:
  rules:
    - {{pattern: "strict-*", target: main, mirror: [copy]}}
    - {{pattern: "loose-*", target: main, mirror: [copy], mirror_mode: best_effort}}
  default_target: main
"""


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def state(tmp_path: Path) -> ProxyState:
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.format(port=closed_port()), encoding="utf-8")
    return ProxyState.build(load_config(path, env={}))


def exchange_for(state: ProxyState, method: str, path: str, **headers: str) -> Exchange:
    http = signed(method, path, **headers)
    http.content = None  # type: ignore[misc]  # these requests have no body to read
    exchange = Exchange(http, state, RequestRecord("req-1"))
    parse(exchange)
    authenticate(exchange)
    route(exchange)
    locate_copy_source(exchange)
    asyncio.run(plan_body(exchange))
    return exchange


def journaled(state: ProxyState) -> list[tuple[str, str, str]]:
    path = state.config.mirror_journal
    assert path is not None
    if not Path(path).exists():
        return []
    return [(e.mirror, e.key, e.operation) for e in read_journal(path)]


def run(state: ProxyState, exchange: Exchange) -> tuple[Response | S3Error, list[Leg]]:
    """The mirrored forward's answer (or error) and the legs the target was asked along."""
    legs: list[Leg] = []

    async def forward(exchange: Exchange, leg: Leg) -> Response:
        legs.append(leg)
        return Response(status=204)

    wrapped = mirrored(forward, state.backends, state.config.mirror_journal)
    leg = Leg(exchange.route, exchange.backend)
    try:
        return asyncio.run(wrapped(exchange, leg)), legs
    except S3Error as error:
        return error, legs


def test_a_write_without_mirrors_goes_on_as_it_is(state: ProxyState) -> None:
    exchange = exchange_for(state, "DELETE", "/plain/k")
    result, legs = run(state, exchange)
    assert isinstance(result, Response) and result.status == 204
    assert legs == [Leg(exchange.route, exchange.backend)]
    assert journaled(state) == []


def test_a_strict_delete_is_refused_before_the_target_when_a_mirror_is_down(
    state: ProxyState,
) -> None:
    result, legs = run(state, exchange_for(state, "DELETE", "/strict-1/k"))
    assert isinstance(result, S3Error) and result.code == "ServiceUnavailable"
    assert "'copy'" in (result.message or "")
    assert legs == []  # the target still has the object the client was told is there
    assert journaled(state) == []  # no mirror deleted anything


def test_a_best_effort_delete_answers_with_the_target_and_journals_the_mirror(
    state: ProxyState,
) -> None:
    result, legs = run(state, exchange_for(state, "DELETE", "/loose-1/k"))
    assert isinstance(result, Response) and result.status == 204
    assert [leg.backend.name for leg in legs] == ["main"]
    assert journaled(state) == [("copy", "k", "DeleteObject")]


def write_for(state: ProxyState, exchange: Exchange) -> MirroredWrite:
    return MirroredWrite(
        exchange.request,
        exchange.auth,
        exchange.plan,
        exchange.route,
        state.backends,
        exchange.mirrors,
        state.config.mirror_journal,
        exchange.copy_source,
    )
