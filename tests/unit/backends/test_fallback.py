"""Fallback around forward, without sockets: which backends a request is asked of, at which
names, and which answers end the chain. Rules come from a real config document."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from s3router_proxy.backends.fallback import fallback_test, with_fallback
from s3router_proxy.backends.forward import TryNextBackend
from s3router_proxy.config.load import load_config
from s3router_proxy.config.model import Config
from s3router_proxy.http.server import Response
from s3router_proxy.routing.facts import RequestFacts
from s3router_proxy.routing.rules import Route, match_route
from s3router_proxy.s3.errors import S3Error

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


def run(
    route: Route, operation: str, answers: dict[str, int | S3Error]
) -> tuple[list[tuple[str, str, str, bool]], tuple[Response, str, Route] | S3Error]:
    """Ask along the chain; each backend answers its scripted status (or raises its error),
    dropping the answer when the chain's test says so, as `forward` does."""
    asked: list[tuple[str, str, str, bool]] = []

    async def ask(at: Route, name: str, try_next: Callable[[int], bool] | None) -> Response:
        asked.append((name, at.bucket, at.key, try_next is None))
        answer = answers[name]
        if isinstance(answer, S3Error):
            raise answer
        if try_next is not None and try_next(answer):
            raise TryNextBackend(answer)
        return Response(status=answer)

    try:
        result: tuple[Response, str, Route] | S3Error = asyncio.run(
            with_fallback(ask, route, operation, "k/1")
        )
    except S3Error as error:
        result = error
    return asked, result


def test_a_read_miss_is_asked_of_each_fallback_in_order_at_its_names(config: Config) -> None:
    asked, result = run(
        routed(config, "mig-1"), "GetObject", {"new": 404, "old": 404, "archive": 200}
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
    asked, result = run(routed(config, "mig-1"), "HeadObject", {"new": 200})
    assert [a[0] for a in asked] == ["new"]
    asked, result = run(
        routed(config, "mig-1"), "GetObject", {"new": 404, "old": 404, "archive": 404}
    )
    assert [a[0] for a in asked] == ["new", "old", "archive"]
    assert not isinstance(result, S3Error) and result[0].status == 404


def test_writes_never_fall_back(config: Config) -> None:
    asked, result = run(routed(config, "mig-1", "PutObject"), "PutObject", {"new": 404})
    assert asked == [("new", "mig-1", "k/1", True)]
    assert not isinstance(result, S3Error) and result[0].status == 404


def test_an_unreachable_backend_fails_over_only_where_the_rule_says(config: Config) -> None:
    down = S3Error("ServiceUnavailable")
    asked, result = run(routed(config, "hot-1"), "GetObject", {"new": down, "old": 200})
    assert [a[0] for a in asked] == ["new", "old"]
    assert not isinstance(result, S3Error) and result[1] == "old"
    asked, result = run(routed(config, "mig-1"), "GetObject", {"new": down})
    assert [a[0] for a in asked] == ["new"]
    assert isinstance(result, S3Error) and result.code == "ServiceUnavailable"


def test_which_answers_send_a_read_on(config: Config) -> None:
    plain, failover = routed(config, "mig-1").rule, routed(config, "hot-1").rule
    assert [fallback_test(plain)(s) for s in (200, 403, 404, 503)] == [False, False, True, False]
    assert [fallback_test(failover)(s) for s in (200, 403, 404, 503)] == [False, False, True, True]
