"""Fallback around forward, without sockets: which backends a request is asked of, at which
names, and which answers end the chain. Rules come from a real config document; the forward
that `with_fallback` wraps is a scripted one, as the decorator's collaborator."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from s3router_proxy.backends.backend import Backend
from s3router_proxy.backends.fallback import fallback_test, with_fallback
from s3router_proxy.backends.forward import Leg, TryNextBackend
from s3router_proxy.config.load import load_config
from s3router_proxy.config.model import Config
from s3router_proxy.http.messages import Response
from s3router_proxy.routing.facts import RequestFacts
from s3router_proxy.routing.names import NameMapping
from s3router_proxy.routing.rules import Route, match_route
from s3router_proxy.s3.errors import S3Error
from s3router_proxy.telemetry.accessrecord import RequestRecord

CONFIG = """
backends:
  new: {endpoint: "http://127.0.0.1:1", access_key_id: a, secret_access_key: b}
  old: {endpoint: "http://127.0.0.1:2", access_key_id: c, secret_access_key: d}
  archive: {endpoint: "http://127.0.0.1:3", access_key_id: e, secret_access_key: f}
routing:
  rules:
    - pattern: "mig-*"
      target: new
      fallback: [old, {backend: archive, mapped_bucket: attic, mapped_prefix: "mig/"}]
    - {pattern: "hot-*", target: new, fallback: [old], failover_on_error: true}
    - pattern: "back-*"
      target: new
      fallback: [{backend: archive, mapped_bucket: attic, mapped_prefix: "mig/"}, old]
  default_target: new
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    path: Path = tmp_path_factory.mktemp("fallback") / "router.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_config(path, env={})


def routed(config: Config, bucket: str, operation: str = "GetObject") -> Route:
    method = "PUT" if operation == "PutObject" else "GET"
    return match_route(
        config.rules,
        config.default_target,
        RequestFacts(method, bucket, "k/1", operation=operation),
    )


Asked = tuple[str, str, str, bool]
Result = tuple[Response, str, Route] | S3Error


def run(
    config: Config, route: Route, operation: str, answers: dict[str, int | S3Error]
) -> tuple[list[Asked], Result]:
    """Forward along the chain; each backend answers its scripted status (or raises its error),
    dropping the answer when the leg's test says so, as `forward` does. The result is the
    answer, and the backend and names the access log was given."""
    asked, legs = run_legs(config, route, operation, answers)
    return [(leg.backend.name, *at, last) for leg, at, last in asked], legs


def run_legs(
    config: Config, route: Route, operation: str, answers: dict[str, int | S3Error]
) -> tuple[list[tuple[Leg, tuple[str, str], bool]], Result]:
    asked: list[tuple[Leg, tuple[str, str], bool]] = []
    backends = {name: Backend(backend) for name, backend in config.backends.items()}
    record = RequestRecord("req-1")
    exchange = SimpleNamespace(
        request=SimpleNamespace(operation=operation, key="k/1"), record=record
    )

    async def forward(exchange: object, leg: Leg) -> Response:
        asked.append((leg, (leg.route.bucket, leg.route.key), leg.try_next is None))
        answer = answers[leg.backend.name]
        if isinstance(answer, S3Error):
            raise answer
        if leg.try_next is not None and leg.try_next(answer):
            raise TryNextBackend(answer)
        return Response(status=answer)

    leg = Leg(route, backends[route.backend])
    try:
        response = asyncio.run(with_fallback(forward, backends)(exchange, leg))  # type: ignore[arg-type]
        result: Result = (response, record.backend, _logged(record, route))
    except S3Error as error:
        result = error
    return asked, result


def _logged(record: RequestRecord, route: Route) -> Route:
    """The route the access log names: its backend, bucket and key."""
    return Route(record.backend, record.backend_bucket, record.backend_key, route.rule)


def test_a_read_miss_is_asked_of_each_fallback_in_order_at_its_names(config: Config) -> None:
    asked, result = run(
        config, routed(config, "mig-1"), "GetObject", {"new": 404, "old": 404, "archive": 200}
    )
    assert asked == [
        ("new", "mig-1", "k/1", False),
        ("old", "mig-1", "k/1", False),
        ("archive", "attic", "mig/k/1", True),  # the last one's answer is the client's
    ]
    assert not isinstance(result, S3Error)
    response, name, route = result
    assert (response.status, name, route.bucket, route.key) == (200, "archive", "attic", "mig/k/1")


def test_the_first_hit_ends_the_chain_and_the_last_miss_is_the_answer(config: Config) -> None:
    asked, result = run(config, routed(config, "mig-1"), "HeadObject", {"new": 200})
    assert [a[0] for a in asked] == ["new"]
    asked, result = run(
        config, routed(config, "mig-1"), "GetObject", {"new": 404, "old": 404, "archive": 404}
    )
    assert [a[0] for a in asked] == ["new", "old", "archive"]
    assert not isinstance(result, S3Error) and result[0].status == 404


def test_writes_never_fall_back(config: Config) -> None:
    asked, result = run(config, routed(config, "mig-1", "PutObject"), "PutObject", {"new": 404})
    assert asked == [("new", "mig-1", "k/1", True)]
    assert not isinstance(result, S3Error) and result[0].status == 404


def test_an_unreachable_backend_fails_over_only_where_the_rule_says(config: Config) -> None:
    down = S3Error("ServiceUnavailable")
    asked, result = run(config, routed(config, "hot-1"), "GetObject", {"new": down, "old": 200})
    assert [a[0] for a in asked] == ["new", "old"]
    assert not isinstance(result, S3Error) and result[1] == "old"
    asked, result = run(config, routed(config, "mig-1"), "GetObject", {"new": down})
    assert [a[0] for a in asked] == ["new"]
    assert isinstance(result, S3Error) and result.code == "ServiceUnavailable"


def test_which_answers_send_a_read_on(config: Config) -> None:
    plain, failover = routed(config, "mig-1").rule, routed(config, "hot-1").rule
    assert [fallback_test(plain)(s) for s in (200, 403, 404, 503)] == [False, False, True, False]
    assert [fallback_test(failover)(s) for s in (200, 403, 404, 503)] == [False, False, True, True]


def test_a_fallback_with_the_routes_names_is_asked_at_them_after_one_with_its_own(
    config: Config,
) -> None:
    """Each backend's answer is mapped by the names its leg carries: the one after a fallback
    with names of its own is asked at the route's names, not at that fallback's."""
    route = routed(config, "back-1")
    legs, result = run_legs(config, route, "GetObject", {"new": 404, "archive": 404, "old": 200})
    names = [(leg.backend.name, leg.route.names) for leg, _, _ in legs]
    archive = NameMapping("back-1", "attic", "", "mig/")
    assert names == [("new", route.names), ("archive", archive), ("old", route.names)]
    assert legs[2][0].route == Route("old", "back-1", "k/1", route.rule, route.mapping)
    assert not isinstance(result, S3Error)
    assert (result[1], result[2].bucket, result[2].key) == ("old", "back-1", "k/1")


def test_the_access_log_names_the_backend_that_answered_and_its_names(config: Config) -> None:
    _, result = run(config, routed(config, "mig-1"), "GetObject", {"new": 404, "old": 503})
    assert not isinstance(result, S3Error)
    assert (result[1], result[2].bucket, result[2].key) == ("old", "mig-1", "k/1")
    _, result = run(config, routed(config, "back-1"), "HeadObject", {"new": 404, "archive": 200})
    assert not isinstance(result, S3Error)
    assert (result[1], result[2].bucket, result[2].key) == ("archive", "attic", "mig/k/1")
