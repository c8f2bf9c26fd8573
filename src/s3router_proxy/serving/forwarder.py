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

Send = Callable[[Exchange, Leg, Rewriters], Awaitable[Response]]


def forwarder(exchange: Exchange, send: Send = forward) -> Forward[Exchange]:
    """What forwards this exchange: `send` (the backend call), its answer in the client's
    names as each leg's route maps them, with every decorator around it."""
    state = exchange.state

    async def in_client_names(exchange: Exchange, leg: Leg) -> Response:
        return await send(exchange, leg, client_rewriters(exchange, leg.route))

    forwarded = with_fallback(in_client_names, state.backends)
    forwarded = mirrored(forwarded, state.backends, state.config.mirror_journal)
    return with_content_md5(forwarded)


async def answer_forwarded(exchange: Exchange) -> Response:
    """The answer of the route's backend (of a fallback's, for a read it misses; after every
    mirror's, for a mirrored write)."""
    return await forwarder(exchange)(exchange, Leg(exchange.route, exchange.backend))
