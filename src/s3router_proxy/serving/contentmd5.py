"""Content-MD5 added for backends that demand it (`add_content_md5`) on the small
configuration and tagging bodies S3 itself requires it for, when the client sent none.

It wraps the mirrored forward rather than each backend's because a mirrored write sends the
same computed body and header to every store.
"""

from __future__ import annotations

from collections.abc import Awaitable

from ..backends.backend import Backend
from ..backends.forward import Forward, Leg
from ..http.messages import Response
from ..multi.splitbucket import read_small_body
from ..s3.checksums import content_md5
from ..s3.operationsets import CONTENT_MD5_OPERATIONS
from .exchange import Exchange

MAX_MD5_BODY = 4 * 1024 * 1024


def needs_content_md5(exchange: Exchange, backend: Backend) -> bool:
    return (
        backend.config.add_content_md5
        and exchange.request.operation in CONTENT_MD5_OPERATIONS
        and "Content-MD5" not in exchange.request.headers
    )


def with_content_md5(forward: Forward[Exchange]) -> Forward[Exchange]:
    """`forward`, with the body read (it is small) and its Content-MD5 added where the leg's
    backend needs it; where it does not, `forward`'s own awaitable, with no step between."""

    async def with_md5(exchange: Exchange, leg: Leg) -> Response:
        if exchange.body_override is None:
            exchange.body_override = await read_small_body(
                exchange.http.content, exchange.plan, MAX_MD5_BODY
            )
        exchange.header_overrides = {
            **(exchange.header_overrides or {}),
            "content-md5": content_md5(exchange.body_override),
        }
        return await forward(exchange, leg)

    def forwarded(exchange: Exchange, leg: Leg) -> Awaitable[Response]:
        if needs_content_md5(exchange, leg.backend):
            return with_md5(exchange, leg)
        return forward(exchange, leg)

    return forwarded
