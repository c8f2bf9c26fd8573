"""Requests to a backend: signed with its keys and sent on its pool.

Every request to a backend takes `backend_response` (forwarded ones, the proxy's own listings,
deletes, copies, mirror writes and readiness probes), so one pool per backend bounds them all
and every answer gets the same strict framing. `backend_exchange` is a small request the proxy
makes itself, its answer read whole. A backend that cannot be reached or does not answer in
time is the client's `ServiceUnavailable` (`unreachable`), counted and logged by its name only.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Mapping

from multidict import CIMultiDict, CIMultiDictProxy

from ..auth.canonical import canonical_query_string
from ..http.client import ConnectFailed, Disconnected, TooLarge, UpstreamError, UpstreamResponse
from ..http.pool import BodySender
from ..s3.errors import S3Error
from ..telemetry import metrics
from .backend import Backend, BackendRequest

log = logging.getLogger("s3router_proxy.proxy")

MAX_SMALL_ANSWER = 16 * 1024 * 1024  # the most of an answer the proxy reads whole


async def backend_exchange(
    backend: Backend,
    method: str,
    bucket: str,
    key: str,
    query_items: list[tuple[str, str]],
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> tuple[int, CIMultiDictProxy[str], bytes]:
    """One small request the proxy makes itself (listing pages, split deletes, copy steps):
    (status, headers, body). It takes the same pooled connections as forwarded requests, so
    `max_connections` bounds what the proxy opens to a backend for both."""
    signed = {name.lower(): value for name, value in (headers or {}).items()}
    if body or method in ("PUT", "POST"):
        signed["content-length"] = str(len(body))
    request = BackendRequest(
        method,
        bucket,
        key,
        canonical_query_string(query_items),
        signed,
        hashlib.sha256(body).hexdigest(),
    )
    try:
        response = await backend_response(backend, request, body or None)
    except (TimeoutError, OSError) as exc:
        raise unreachable(backend, exc) from None
    try:
        answer = await response.read(MAX_SMALL_ANSWER)
        return response.status, CIMultiDictProxy(CIMultiDict(response.headers)), answer
    except TooLarge:
        raise S3Error("InternalError", "A backend answer was larger than expected.") from None
    except (TimeoutError, UpstreamError) as exc:
        raise unreachable(backend, exc) from None
    finally:
        response.release()


async def backend_response(
    backend: Backend,
    request: BackendRequest,
    body: bytes | AsyncIterator[bytes] | BodySender | None = None,
    *,
    unsigned: Mapping[str, str] | None = None,
    sign: bool = True,
) -> UpstreamResponse:
    """`request`, signed with the backend's credentials and sent on its pool: the answer once
    its head arrived, to read or stream and then `release()`.

    `unsigned` headers are sent as they are; with `sign` false, so is the whole request
    (an unsigned client request, forwarded unsigned). A streamed body is sent chunked unless the
    request's headers give its Content-Length, and its first piece is pulled only once the
    connection is up (see `tee.py`). Raises `UpstreamError` (a `ConnectionError`),
    `TimeoutError`, or what the body raised.

    A `kind: redis` backend is asked in-process instead (`redisstore/`), with the same request
    and body and an answer of the same shape: this is the one place that tells them apart. A
    store with no ACLs of its own cannot decide an unsigned request, so one is refused there."""
    if backend.store is not None:
        if not sign:
            raise S3Error(
                "AccessDenied",
                "Anonymous requests are forwarded unsigned, and a Redis store has no ACLs to "
                "decide them; sign the request.",
            )
        # Shaped like an `UpstreamResponse` but for its socket: what needs one (the splice in
        # `relay.py`) checks the type first.
        from ..redisstore.service import store_answer  # imported with the store (backend.py)

        return await store_answer(backend.store, request, body)  # type: ignore[return-value]
    host, target, signed = (
        backend.signed_target(request) if sign else backend.unsigned_target(request)
    )
    head = list(signed.items())
    if unsigned:
        head.extend(unsigned.items())
    streamed = body is not None and not isinstance(body, bytes)
    chunked = streamed and "content-length" not in signed
    pool = backend.pool_for(host)
    method = request.method
    # A body that is not a stream can be sent again on a fresh connection when the first
    # attempt never reached the backend (a stale pooled connection, a refused connect).
    retries = 0 if streamed else 1
    while True:
        try:
            return await pool.request(method, target, head, body, chunked=chunked)
        except (ConnectFailed, Disconnected) as exc:
            # A disconnect may come after the backend acted: only idempotent methods go again.
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE")
            if not retries or not (isinstance(exc, ConnectFailed) or idempotent):
                raise
            retries -= 1


def unreachable(backend: Backend, exc: BaseException) -> S3Error:
    """The client's error for a backend that could not be reached or did not answer in time."""
    if isinstance(exc, TimeoutError):
        reason, kind = "did not answer in time", "timeout"
    else:
        reason, kind = "could not be reached", "unreachable"
    metrics.child(metrics.BACKEND_ERRORS, backend.name, kind).inc()
    log.warning("backend %s %s: %s", backend.name, reason, type(exc).__name__)
    return S3Error(
        "ServiceUnavailable",
        f"Backend {backend.name!r} {reason}; please retry.",
    )
