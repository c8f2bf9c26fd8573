"""The exchange's forwarder: `forward` and the decorators around it, composed here alone.

    with_content_md5(mirrored(with_fallback(forward in the client's names)))

Each decorator is one concern and has the shape of what it wraps (`backends.forward.Forward`).
Content-MD5 is outermost: a mirrored write sends the same computed body and header to every
store. Fallback is innermost, around each backend asked, and every backend's answer is put in
the client's names by the names its own leg was asked at; a write, mirrored or not, is asked
of its backend alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..backends.fallback import with_fallback
from ..backends.forward import Forward, Leg, Rewriters, forward
from ..http.messages import Response
from ..multi.mirror import mirrored
from .clientnames import client_rewriters
from .contentmd5 import with_content_md5
from .exchange import Exchange
from .state import ProxyState

Send = Callable[[Exchange, Leg, Rewriters], Awaitable[Response]]


def forwarder(exchange: Exchange, send: Send = forward) -> Forward[Exchange]:
    """What forwards this exchange: `send` (the backend call), its answer in the client's
    names as each leg's route maps them, with every decorator around it."""
    return composed(exchange.state, send)


def composed(state: ProxyState, send: Send = forward) -> Forward[Exchange]:
    """The forwarder of every exchange served from `state`. A decorator whose concern does
    not apply to a request hands it `forward`'s own awaitable, so the usual request (one
    backend, no mirrors, no Content-MD5 to add) is one coroutine from here to the backend."""

    def in_client_names(exchange: Exchange, leg: Leg) -> Awaitable[Response]:
        return send(exchange, leg, client_rewriters(exchange, leg.route))

    forwarded = with_fallback(in_client_names, state.backends)
    forwarded = mirrored(forwarded, state.backends, state.config.mirror_journal)
    return with_content_md5(forwarded)


# The forwarder of the state served last: composed once per state, not once per request.
_last: tuple[ProxyState, Forward[Exchange]] | None = None


def answer_forwarded(exchange: Exchange) -> Awaitable[Response]:
    """The answer of the route's backend (of a fallback's, for a read it misses; after every
    mirror's, for a mirrored write)."""
    global _last
    state = exchange.state
    if _last is None or _last[0] is not state:
        _last = (state, composed(state))
    return _last[1](exchange, Leg(exchange.route, exchange.backend))
