"""Forwarding: one verified, routed request out to its backend and the answer back.

The request is rebuilt for the backend rather than passed on: the client's auth, hop-by-hop
and SDK bookkeeping headers are dropped, the URL is made from the backend's bucket and key
(encoded once, exactly as signed), and the request is signed with the backend's credentials.
Bodies stream both ways through bounded buffers; a failure found mid-stream aborts the other
side instead of leaving a short object or a short download that looks complete.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Protocol, TypeVar

from multidict import CIMultiDict, CIMultiDictProxy

from ..auth.canonical import canonical_query_string
from ..auth.sigv4 import SigV4Auth
from ..body.payload import BodyAborted, BodyOutcome, PayloadPlan, check_empty_body, upstream_body
from ..http.client import ConnectFailed, Disconnected, TooLarge, UpstreamError, UpstreamResponse
from ..http.server import Request, Response, StreamResponse
from ..routing.rules import Route
from ..s3.errors import S3Error
from ..s3.operationsets import NEEDS_LENGTH
from ..s3.request import S3Request
from ..telemetry import metrics
from ..telemetry.accessrecord import RequestRecord
from .backend import Backend

log = logging.getLogger("s3router_proxy.proxy")

# Never forwarded as the client sent them: auth is redone, hop-by-hop headers are per connection.
_DROP_REQUEST = frozenset(
    {
        "authorization",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-content-sha256",
        "host",
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "transfer-encoding",
        "content-length",
        "expect",
        "amz-sdk-invocation-id",
        "amz-sdk-request",
        # What a hop in front says about the client: a backend that trusts it (for a bucket
        # policy on aws:SourceIp, say) must never take the client's word for it.
        "forwarded",
        "x-real-ip",
        "via",
        "true-client-ip",
        "cf-connecting-ip",
        "x-client-ip",
        # Browser state; no S3 operation reads it, and it is nothing to sign with a backend key.
        "cookie",
    }
)
# Prefixes of the same: every proxy-* and x-forwarded-* header is per hop.
_DROP_REQUEST_PREFIXES = ("proxy-", "x-forwarded-")
# Forwarded but not signed: they describe the client, not the request.
_UNSIGNED = frozenset({"user-agent", "accept-encoding", "accept", "x-amzn-trace-id"})
_DROP_RESPONSE = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "proxy-connection",
        "trailer",
        "upgrade",
        "x-amz-request-id",  # the proxy's own id replaces it, so logs and clients agree
    }
)
_DROP_SMALL_RESPONSE = _DROP_RESPONSE | {"content-length"}
# Presigned-URL auth parameters: the backend request is signed in headers instead.
_PRESIGN_PARAMS = frozenset(
    {
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "X-Amz-Security-Token",
        "X-Amz-Content-Sha256",
        "AWSAccessKeyId",  # SigV2
        "Signature",
        "Expires",
    }
)
STREAM_CHUNK = 256 * 1024
SMALL_BODY = 64 * 1024
_ERROR_CODE = re.compile(
    rb"<Code>([A-Za-z0-9.]{1,64})</Code>"
)  # answers up to this size are sent in one write


def backend_query(request: S3Request, auth: SigV4Auth) -> str:
    """The query string sent to the backend: the client's, minus presigned auth, canonical."""
    items = request.query_items
    if auth.presigned:
        # SigV2 URLs carry the client's token as lower-case `x-amz-security-token` (botocore
        # hoists it so); in any case it is the client's secret, never the backend's business.
        items = [
            (k, v)
            for k, v in items
            if k not in _PRESIGN_PARAMS and k.lower() != "x-amz-security-token"
        ]
    return canonical_query_string(items)


def _connection_options(headers: CIMultiDictProxy[str]) -> frozenset[str]:
    """The headers `Connection` names: per hop (RFC 9110, 7.6.1), never forwarded."""
    values = headers.getall("Connection", ())
    if not values:
        return frozenset()
    return frozenset(
        option.strip().lower() for value in values for option in value.split(",") if option
    )


def backend_headers(request: S3Request) -> tuple[dict[str, str], dict[str, str]]:
    """(headers to sign, headers to send unsigned) from the client's headers."""
    signed: dict[str, str] = {}
    unsigned: dict[str, str] = {}
    per_hop = _connection_options(request.headers)
    for name, value in request.headers.items():
        lower = name.lower()
        if lower in _DROP_REQUEST or lower in per_hop or lower.startswith(_DROP_REQUEST_PREFIXES):
            continue
        target = unsigned if lower in _UNSIGNED else signed
        if lower in target:
            target[lower] = f"{target[lower]},{value}"
        else:
            target[lower] = value
    return signed, unsigned


def request_has_body(request: S3Request, plan: PayloadPlan) -> bool:
    """Whether the request carries a body to forward (a length, chunks, or aws-chunked)."""
    return (
        plan.chunked
        or bool(plan.upstream_length)
        or (
            plan.upstream_length is None
            and "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        )
    )


def outgoing_headers(
    request: S3Request,
    plan: PayloadPlan,
    has_body: bool,
    *,
    header_overrides: dict[str, str] | None = None,
    body_override: bytes | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """(headers to sign, headers to send unsigned) of the request as a backend receives it."""
    signed, unsigned = backend_headers(request)
    if header_overrides:
        signed.update(header_overrides)
    for name in plan.drop_headers:
        signed.pop(name, None)
    if plan.content_encoding is not None:
        if plan.content_encoding:
            signed["content-encoding"] = plan.content_encoding
        else:
            signed.pop("content-encoding", None)
    if body_override is not None:
        signed["content-length"] = str(len(body_override))
    elif plan.upstream_length is not None and (has_body or "content-length" in request.headers):
        signed["content-length"] = str(plan.upstream_length)
    return signed, unsigned


class Forwarded(Protocol):
    """What `forward` reads of a request on its way: the front server's request, the S3
    request, its verified auth and payload plan, its access-log record, and what the proxy put
    in place of the client's headers (lower-case names) or of a small body it already read,
    verified and rewrote. The handler's per-request `Exchange` is one."""

    @property
    def http(self) -> Request: ...
    @property
    def request(self) -> S3Request: ...
    @property
    def auth(self) -> SigV4Auth: ...
    @property
    def plan(self) -> PayloadPlan: ...
    @property
    def record(self) -> RequestRecord: ...
    @property
    def header_overrides(self) -> dict[str, str] | None: ...
    @property
    def body_override(self) -> bytes | None: ...


async def forward(
    exchange: Forwarded,
    route: Route,
    backend: Backend,
    *,
    rewrite: Rewrite[bytes] | None = None,
    rewrite_errors: Rewrite[bytes] | None = None,
    location: Rewrite[str] | None = None,
    try_next: Callable[[int], bool] | None = None,
    stream: tuple[AsyncIterator[bytes], BodyOutcome] | None = None,
) -> Response:
    """Send the request to `backend` at the names `route` gives and stream its answer back.

    `rewrite` turns a 200 XML answer into the client's names, `rewrite_errors` an error body;
    `location` maps a `Location` header.
    When `try_next(status)` holds for the backend's answer, it is dropped and `TryNextBackend`
    raised, so the caller can ask a fallback backend (reads only: there is no body to resend).
    `stream` is the upstream body and its outcome when the caller made it (mirrored writes);
    it is sent even for an empty body, whose end then waits for the other backends.
    """
    http_request, request, auth, plan, record = (
        exchange.http,
        exchange.request,
        exchange.auth,
        exchange.plan,
        exchange.record,
    )
    header_overrides, body_override = exchange.header_overrides, exchange.body_override
    has_body = request_has_body(request, plan)
    if not has_body:
        check_empty_body(plan)
    elif (
        plan.upstream_length is None
        and not plan.forward_trailers
        and request.operation in NEEDS_LENGTH
    ):
        raise S3Error("MissingContentLength")

    query = backend_query(request, auth)
    signed, unsigned = outgoing_headers(
        request, plan, has_body, header_overrides=header_overrides, body_override=body_override
    )
    if stream is not None and not has_body:
        signed["content-length"] = "0"  # a mirrored empty body: its end is the stream's end
    outcome = BodyOutcome() if stream is None else stream[1]
    body: AsyncIterator[bytes] | bytes | None
    if body_override is not None:
        body = body_override
        outcome.sent = len(body_override)
    elif stream is not None:
        body = stream[0]
    else:
        body = upstream_body(http_request.content, plan, outcome) if has_body else None
    sent_at = time.monotonic()
    try:
        upstream = await backend_response(
            backend,
            request.method,
            route.bucket,
            route.key,
            query,
            signed,
            plan.upstream_payload_hash,
            body,
            unsigned=unsigned,
        )
    except (ConnectFailed, Disconnected) as exc:
        record.bytes_in = outcome.sent
        raise _unreachable(backend, exc) from None
    except (TimeoutError, BodyAborted, OSError) as exc:
        record.bytes_in = outcome.sent
        if outcome.failure is not None:
            raise outcome.failure from None
        raise _unreachable(backend, exc) from None
    if try_next is not None and try_next(upstream.status):
        upstream.release()
        raise TryNextBackend(upstream.status)
    record.backend_seconds = time.monotonic() - sent_at
    record.bytes_in = outcome.sent
    metrics.child(metrics.BACKEND_SECONDS, backend.name).observe(record.backend_seconds)
    if outcome.sent:  # each update takes a lock: none for the many requests without a body
        metrics.child(metrics.BYTES_IN, backend.name).inc(outcome.sent)
    if upstream.status >= 500:
        metrics.child(metrics.BACKEND_ERRORS, backend.name, "5xx").inc()
    try:
        if outcome.failure is not None:
            raise outcome.failure
        if rewrite is not None and upstream.status == 200:
            return await _relay_rewritten(upstream, backend, record, rewrite, location)
        if (
            rewrite_errors is not None
            and upstream.status >= 300
            and request.method != "HEAD"
            and "xml" in upstream.header_map.get("content-type", "")
        ):
            return await _relay_rewritten(upstream, backend, record, rewrite_errors, location)
        return await _relay(http_request, upstream, backend, record, location)
    finally:
        upstream.release()


T = TypeVar("T")
Rewrite = Callable[[T], T]
MAX_REWRITTEN_BODY = 16 * 1024 * 1024


async def _relay_rewritten(
    upstream: UpstreamResponse,
    backend: Backend,
    record: RequestRecord,
    rewrite: Rewrite[bytes],
    location: Rewrite[str] | None,
) -> Response:
    """Answer with a small XML document rewritten for the client (bounded in size)."""
    try:
        body = await upstream.read(MAX_REWRITTEN_BODY)
    except TimeoutError as exc:
        raise _unreachable(backend, exc) from None
    except TooLarge:
        raise S3Error(
            "InternalError", "A backend answer was larger than the proxy rewrites."
        ) from None
    except UpstreamError as exc:
        raise _unreachable(backend, exc) from None
    new_body = rewrite(body)
    headers = CIMultiDict(
        (name, value)
        for name, value in upstream.headers
        if name.lower() not in _DROP_RESPONSE and name.lower() != "content-length"
    )
    headers["x-amz-request-id"] = record.request_id
    if location is not None and "Location" in headers:
        headers["Location"] = location(headers["Location"])
    response = Response(
        status=upstream.status, reason=upstream.reason, body=new_body, headers=headers
    )
    record.bytes_out = len(new_body)
    return response


class TryNextBackend(Exception):
    """The backend's answer (a 404, or a 5xx with failover) sends the read to the next one."""


async def backend_call(
    backend: Backend,
    method: str,
    bucket: str,
    key: str,
    query_items: list[tuple[str, str]],
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> tuple[int, bytes]:
    """One small request the proxy makes itself (listing pages, split deletes): (status, body).

    It takes the same pooled connections as forwarded requests, so `max_connections` bounds
    what the proxy opens to a backend for both."""
    status, _, answer = await backend_exchange(
        backend, method, bucket, key, query_items, body=body, headers=headers
    )
    return status, answer


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
    """`backend_call`, with the answer's headers too: (status, headers, body)."""
    query = canonical_query_string(query_items)
    signed = {name.lower(): value for name, value in (headers or {}).items()}
    if body or method in ("PUT", "POST"):
        signed["content-length"] = str(len(body))
    try:
        response = await backend_response(
            backend,
            method,
            bucket,
            key,
            query,
            signed,
            hashlib.sha256(body).hexdigest(),
            body or None,
        )
    except (TimeoutError, OSError) as exc:
        raise _unreachable(backend, exc) from None
    try:
        answer = await response.read(MAX_REWRITTEN_BODY)
        return response.status, CIMultiDictProxy(CIMultiDict(response.headers)), answer
    except TooLarge:
        raise S3Error("InternalError", "A backend answer was larger than expected.") from None
    except (TimeoutError, UpstreamError) as exc:
        raise _unreachable(backend, exc) from None
    finally:
        response.release()


async def backend_response(
    backend: Backend,
    method: str,
    bucket: str,
    key: str,
    query: str,
    headers: Mapping[str, str],
    payload_hash: str,
    body: bytes | AsyncIterator[bytes] | None = None,
    *,
    unsigned: Mapping[str, str] | None = None,
) -> UpstreamResponse:
    """Any request to a backend, signed with its credentials and sent on its pool: the answer
    once its head arrived, to read or stream and then `release()`.

    Every request to a backend takes this way (forwarded ones, the proxy's own listings,
    deletes, copies, mirror writes and readiness probes), so one pool per backend bounds them
    all and every answer gets the same strict framing. `query` is canonical; `headers`
    (lower-case names) are signed, `unsigned` ones sent as they are. A streamed body is sent
    chunked unless `headers` give its Content-Length, and its first piece is pulled only once
    the connection is up (see `tee.py`). Raises `UpstreamError` (a `ConnectionError`),
    `TimeoutError`, or what the body raised."""
    host, target, signed = backend.signed_target(method, bucket, key, query, headers, payload_hash)
    head = list(signed.items())
    if unsigned:
        head.extend(unsigned.items())
    streamed = body is not None and not isinstance(body, bytes)
    chunked = streamed and "content-length" not in signed
    pool = backend.pool_for(host)
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


def _unreachable(backend: Backend, exc: BaseException) -> S3Error:
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


async def _relay(
    http_request: Request,
    upstream: UpstreamResponse,
    backend: Backend,
    record: RequestRecord,
    location: Rewrite[str] | None = None,
) -> Response:
    """Stream the backend's answer to the client, headers and status as they are."""
    length = upstream.header_map.get("content-length", "")
    # Content-Length of a HEAD, 204 or 304 answer describes a body that is not sent.
    head_only = http_request.method == "HEAD" or upstream.status in (204, 304)
    small = not head_only and length.isdigit() and int(length) <= SMALL_BODY
    # A small answer's Content-Length is set by Response from the body it is given.
    drop = _DROP_SMALL_RESPONSE if small else _DROP_RESPONSE
    headers: CIMultiDict[str] = CIMultiDict(
        [(name, value) for name, value in upstream.headers if name.lower() not in drop]
    )
    if location is not None and "Location" in headers:
        headers["Location"] = location(headers["Location"])
    headers["x-amz-request-id"] = record.request_id
    if small:
        # A small answer goes out in one write, headers and body together.
        try:
            body = await upstream.read(int(length))
        except (TimeoutError, UpstreamError) as exc:
            metrics.child(metrics.BACKEND_ERRORS, backend.name, "broken_stream").inc()
            raise _unreachable(backend, exc) from None
        if len(body) != int(length):
            metrics.child(metrics.BACKEND_ERRORS, backend.name, "broken_stream").inc()
            raise _unreachable(backend, UpstreamError("short answer"))
        answer = Response(
            status=upstream.status, reason=upstream.reason, body=body, headers=headers
        )
        if upstream.status >= 400 and (code := _ERROR_CODE.search(body)) is not None:
            record.error_code = code.group(1).decode("ascii", "replace")
        record.bytes_out = len(body)
        if body:
            metrics.child(metrics.BYTES_OUT, backend.name).inc(len(body))
        return answer
    response = StreamResponse(status=upstream.status, reason=upstream.reason, headers=headers)
    if "content-length" not in upstream.header_map and not head_only:
        response.enable_chunked_encoding()
    await response.prepare(http_request)
    if head_only:
        await response.write_eof()
        return response
    try:
        async for piece in upstream.iter_pieces():
            try:
                await response.write(piece)
            except ConnectionError:
                # The client went away; releasing the upstream response drops that connection.
                record.error_code = "ClientDisconnected"
                return response
            record.bytes_out += len(piece)
    except (TimeoutError, UpstreamError) as exc:
        # Headers are gone already: the only honest signal left is a broken connection.
        log.warning("backend %s broke off a response: %s", backend.name, type(exc).__name__)
        metrics.child(metrics.BACKEND_ERRORS, backend.name, "broken_stream").inc()
        record.error_code = "BackendStreamBroken"
        if http_request.transport is not None:
            http_request.transport.abort()
        return response
    finally:
        metrics.child(metrics.BYTES_OUT, backend.name).inc(record.bytes_out)
    await response.write_eof()
    return response
