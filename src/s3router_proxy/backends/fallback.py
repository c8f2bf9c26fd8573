"""Fallback around `forward`: a read the rule's backend misses (404, or with
`failover_on_error` a 5xx or an unreachable backend) is asked of the rule's `fallback:`
backends in order, as during a migration the new store answers first and the old one next.
Only reads fall back: a write's body cannot be sent twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..http.server import Response
from ..routing.rules import Route, Rule, route_on
from ..s3.errors import S3Error
from ..s3.operationsets import FALLBACK_OPERATIONS
from .forward import TryNextBackend

# Ask one backend (by name) at a route's names; `try_next(status)` says which answers to drop
# for the next backend (None for the last one, whose answer is the client's).
Ask = Callable[[Route, str, Callable[[int], bool] | None], Awaitable[Response]]


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


async def with_fallback(
    ask: Ask, route: Route, operation: str, key: str
) -> tuple[Response, str, Route]:
    """The first answer along the chain that is not a miss: (answer, backend, its route)."""
    rule = route.rule
    chain = backend_chain(route, operation)
    for position, name in enumerate(chain):
        last = position == len(chain) - 1
        asked = route if position == 0 else route_on(route, name, key)
        try:
            response = await ask(asked, name, None if last else fallback_test(rule))
        except TryNextBackend:
            continue
        except S3Error as error:
            if last or not (
                rule is not None and rule.failover_on_error and error.code == "ServiceUnavailable"
            ):
                raise
            continue
        return response, name, asked
    raise AssertionError("the last backend of a chain answers or raises")
