"""Fallback around `forward`: a read the rule's backend misses (404, or with
`failover_on_error` a 5xx or an unreachable backend) is asked of the rule's `fallback:`
backends in order, as during a migration the new store answers first and the old one next.
Only reads fall back: a write's body cannot be sent twice.

Each backend is asked along a leg of its own, at the names the rule gives it, so its answer is
put in the client's names by those names and by nothing an earlier backend was asked with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from ..http.messages import Response
from ..routing.rules import Route, Rule, route_on
from ..s3.errors import S3Error
from ..s3.operationsets import FALLBACK_OPERATIONS
from .backend import Backend
from .forward import Forward, Forwarded, Leg, TryNextBackend

F = TypeVar("F", bound=Forwarded)


def fallback_test(rule: Rule | None) -> Callable[[int], bool]:
    """Which answers of a backend send a read on to the next one in the rule's chain."""
    failover = rule is not None and rule.failover_on_error
    return lambda status: status == 404 or (failover and status >= 500)


def backend_chain(route: Route, operation: str) -> list[str]:
    """The backends asked in turn: the route's, then the rule's fallbacks for reads."""
    rule = route.rule
    if rule is not None and rule.fallback and operation in FALLBACK_OPERATIONS:
        return [route.backend, *rule.fallback]
    return [route.backend]


def with_fallback(forward: Forward[F], backends: Mapping[str, Backend]) -> Forward[F]:
    """`forward`, answered by the first backend along the chain whose answer is not a miss.
    The access log names the backend that answered, and its names."""

    async def along(chain: list[str], exchange: F, leg: Leg) -> Response:
        request, record = exchange.request, exchange.record
        rule = leg.route.rule
        for position, name in enumerate(chain):
            last = position == len(chain) - 1
            asked = leg
            if position:
                asked = Leg(route_on(leg.route, name, request.key), backends[name])
            if not last:
                asked = dataclasses.replace(asked, try_next=fallback_test(rule))
            try:
                response = await forward(exchange, asked)
            except TryNextBackend:
                continue
            except S3Error as error:
                if last or not (
                    rule is not None
                    and rule.failover_on_error
                    and error.code == "ServiceUnavailable"
                ):
                    raise
                continue
            record.backend, record.backend_bucket = name, asked.route.bucket
            record.backend_key = asked.route.key
            return response
        raise AssertionError("the last backend of a chain answers or raises")

    def forwarded(exchange: F, leg: Leg) -> Awaitable[Response]:
        chain = backend_chain(leg.route, exchange.request.operation)
        if len(chain) > 1:
            return along(chain, exchange, leg)
        # One backend to ask (most requests): `forward`'s own awaitable, no step between.
        route, record = leg.route, exchange.record
        record.backend, record.backend_bucket, record.backend_key = (
            route.backend,
            route.bucket,
            route.key,
        )
        return forward(exchange, leg)

    return forwarded
