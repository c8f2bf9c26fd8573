"""Forwarding: one verified, routed request out to its backend and the answer back.

The request is rebuilt for the backend (`outgoing.py`), the URL made from the backend's bucket
and key (encoded once, exactly as signed), and the request signed with the backend's
credentials (`call.py`), unless it is an unsigned request forwarded unsigned
(`auth/anonymous.py`). Bodies stream both ways through bounded buffers (`relay.py`); a failure
found mid-stream aborts the other side instead of leaving a short object or a short download
that looks complete.

`forward` is the innermost `Forward`: what the request handler calls is `forward` wrapped by
decorators of the same shape, one concern each (fallback, mirrors, Content-MD5).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from ..auth.anonymous import forwarded_unsigned
from ..auth.sigv4 import SigV4Auth
from ..body.payload import BodyAborted, BodyOutcome, PayloadPlan, check_empty_body, upstream_body
from ..http import splice
from ..http.client import ConnectFailed, Disconnected
from ..http.messages import BodyTimeout, Request, Response
from ..http.uploadsplice import SplicedUpload
from ..routing.rules import Route
from ..s3.errors import S3Error
from ..s3.operationsets import NEEDS_LENGTH
from ..s3.request import S3Request
from ..telemetry import metrics
from ..telemetry.accessrecord import RequestRecord
from .backend import Backend, BackendRequest
from .call import backend_response, unreachable
from .outgoing import backend_query, outgoing_headers, request_has_body, splice_upload_length
from .relay import Rewrite, relay, relay_rewritten

log = logging.getLogger("s3router_proxy.proxy")


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


@dataclass(frozen=True)
class Leg:
    """One request's way to one backend: the backend and the names (`route`) it is asked at.

    When `try_next(status)` holds for the backend's answer, it is dropped and `TryNextBackend`
    raised, so a fallback backend can be asked (reads only: there is no body to resend).
    `stream` is the upstream body and its outcome when the caller made it (a mirrored write's
    branch of the tee); it is sent even for an empty body, whose end then waits for the other
    backends."""

    route: Route
    backend: Backend
    try_next: Callable[[int], bool] | None = None
    stream: tuple[AsyncIterator[bytes], BodyOutcome] | None = None


@dataclass(frozen=True)
class Rewriters:
    """How a backend's answer is put in the client's names: a 200 XML answer (`answer`), an
    XML error body (`error`) and a `Location` header (`location`); None passes it as it is."""

    answer: Rewrite[bytes] | None = None
    error: Rewrite[bytes] | None = None
    location: Rewrite[str] | None = None


E_contra = TypeVar("E_contra", bound=Forwarded, contravariant=True)


class Forward(Protocol[E_contra]):
    """A request sent along a leg and answered: `forward` with the client's names, or a
    decorator around one (`with_fallback`, `mirrored`, `with_content_md5`)."""

    def __call__(self, exchange: E_contra, leg: Leg, /) -> Awaitable[Response]: ...


class TryNextBackend(Exception):
    """The backend's answer (a 404, or a 5xx with failover) sends the read to the next one."""


async def forward(exchange: Forwarded, leg: Leg, rewriters: Rewriters) -> Response:
    """Send the request along `leg` and stream the backend's answer back, put in the client's
    names by `rewriters`."""
    http_request, request, auth, plan, record = (
        exchange.http,
        exchange.request,
        exchange.auth,
        exchange.plan,
        exchange.record,
    )
    backend, stream = leg.backend, leg.stream
    body_override = exchange.body_override
    has_body = request_has_body(request, plan)
    if not has_body:
        check_empty_body(plan)
    elif (
        plan.upstream_length is None
        and not plan.forward_trailers
        and request.operation in NEEDS_LENGTH
        and backend.config.chunked_uploads != "forward"
    ):
        # `plan_body` refused it already unless every store took it; this leg's must too.
        raise S3Error("MissingContentLength")

    signed, unsigned = outgoing_headers(
        request,
        plan,
        has_body,
        header_overrides=exchange.header_overrides,
        body_override=body_override,
    )
    if stream is not None and not has_body:
        signed["content-length"] = "0"  # a mirrored empty body: its end is the stream's end
    outcome = BodyOutcome() if stream is None else stream[1]
    body = _leg_body(exchange, leg, has_body, outcome)
    upload = body if isinstance(body, SplicedUpload) else None
    outgoing = BackendRequest(
        request.method,
        leg.route.bucket,
        leg.route.key,
        backend_query(request, auth),
        signed,
        plan.upstream_payload_hash,
    )
    sent_at = time.monotonic()
    try:
        upstream = await backend_response(
            backend, outgoing, body, unsigned=unsigned, sign=not forwarded_unsigned(auth)
        )
    except (ConnectFailed, Disconnected) as exc:
        record.bytes_in = outcome.sent
        raise unreachable(backend, exc) from None
    except (TimeoutError, BodyAborted, OSError) as exc:
        if upload is not None:
            _spliced(upload, outcome, backend, failed=True)
        record.bytes_in = outcome.sent
        if outcome.failure is not None:
            raise outcome.failure from None
        raise unreachable(backend, exc) from None
    if leg.try_next is not None and leg.try_next(upstream.status):
        upstream.release()
        raise TryNextBackend(upstream.status)
    if upload is not None:
        _spliced(upload, outcome, backend, failed=False)
    record.backend_seconds = time.monotonic() - sent_at
    record.bytes_in = outcome.sent
    metrics.child(metrics.BACKEND_SECONDS, backend.name).observe(record.backend_seconds)
    if outcome.sent:  # each update takes a lock: none for the many requests without a body
        metrics.child(metrics.BYTES_IN, backend.name).inc(outcome.sent)
    if upstream.status >= 500:
        metrics.child(metrics.BACKEND_ERRORS, backend.name, "5xx").inc()
    location = rewriters.location
    try:
        if outcome.failure is not None:
            raise outcome.failure
        if rewriters.answer is not None and upstream.status == 200:
            return await relay_rewritten(upstream, backend, record, rewriters.answer, location)
        if (
            rewriters.error is not None
            and upstream.status >= 300
            and request.method != "HEAD"
            and "xml" in upstream.header_map.get("content-type", "")
        ):
            return await relay_rewritten(upstream, backend, record, rewriters.error, location)
        return await relay(http_request, upstream, backend, record, location)
    finally:
        upstream.release()


def _leg_body(
    exchange: Forwarded, leg: Leg, has_body: bool, outcome: BodyOutcome
) -> AsyncIterator[bytes] | bytes | SplicedUpload | None:
    """What follows the head: a body a decorator made, a mirror's stream, the client's body
    moved by the kernel, or the client's body checked as it flows (`outcome` follows it)."""
    if exchange.body_override is not None:
        outcome.sent = len(exchange.body_override)
        return exchange.body_override
    if leg.stream is not None:
        return leg.stream[0]
    if not has_body:
        return None
    upload = spliced_upload(exchange.http, exchange.request, exchange.plan, leg.backend)
    if upload is not None:
        return upload
    return upstream_body(exchange.http.content, exchange.plan, outcome)


def _spliced(
    upload: SplicedUpload, outcome: BodyOutcome, backend: Backend, *, failed: bool
) -> None:
    """A spliced upload's bytes and failure, told as a body read by the proxy tells them."""
    outcome.sent = upload.sent
    if failed:
        outcome.failure = client_failure(upload.client_error)
        log.debug("upload cut short after %d bytes spliced", upload.spliced)
    else:
        log.debug(
            "upload of %d bytes spliced: %d to backend %s",
            upload.sent,
            upload.spliced,
            backend.name,
        )


def spliced_upload(
    http_request: Request, request: S3Request, plan: PayloadPlan, backend: Backend
) -> SplicedUpload | None:
    """The body as the kernel moves it (`http/uploadsplice.py`), when nothing needs to see it:
    a body `splice_upload_length` allows, to one HTTP backend (a Redis store answers in this
    process), from a client on plain TCP. A mirrored write, a form upload and a body the
    proxy rewrote have a stream or a body of their own and never come here."""
    if not splice.ENABLED or backend.store is not None or backend.scheme != "http":
        return None
    # The pure checks first: most bodies are small, and the socket lookup is not free.
    length = splice_upload_length(request, plan)
    if length is None or splice.plain_socket(http_request.transport) is None:
        return None
    return SplicedUpload(http_request, length)


def client_failure(error: BaseException | None) -> S3Error | None:
    """The client's error for a spliced body it did not send whole, as the copy loop's."""
    if error is None:
        return None
    return S3Error("RequestTimeout" if isinstance(error, BodyTimeout) else "IncompleteBody")
