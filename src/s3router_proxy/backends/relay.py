"""A backend's answer on its way back to the client: streamed as it comes (headers and status
as they are, the backend's per-hop headers and request id replaced), or, for a small XML
document a rule needs in the client's names, read (bounded) and rewritten.

Headers are gone before a streamed body is: a backend that breaks off mid-body leaves the
client a broken connection, never a short answer that looks complete. A large body streamed as
it is, on plain TCP at both ends, is spliced by the kernel instead (`http/splice.py`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TypeVar

from multidict import CIMultiDict

from ..http import splice
from ..http.client import TooLarge, UpstreamError, UpstreamResponse
from ..http.messages import Request, Response, StreamResponse
from ..http.splice import plain_socket, splice_answer, splice_length
from ..s3.errors import S3Error
from ..telemetry import metrics
from ..telemetry.accessrecord import RequestRecord
from .backend import Backend
from .call import MAX_SMALL_ANSWER, unreachable

log = logging.getLogger("s3router_proxy.proxy")

T = TypeVar("T")
Rewrite = Callable[[T], T]

_DROP_RESPONSE = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "proxy-connection",
        "trailer",
        "upgrade",
        # The proxy's own id replaces the backend's, so logs and clients agree: botocore
        # takes x-amzn-RequestId first, and x-amz-id-2 is the backend's host id.
        "x-amz-request-id",
        "x-amzn-requestid",
        "x-amz-id-2",
    }
)
_BACKEND_REQUEST_IDS = ("x-amz-request-id", "x-amzn-requestid")
_DROP_SMALL_RESPONSE = _DROP_RESPONSE | {"content-length"}
SMALL_BODY = 64 * 1024  # answers up to this size are sent in one write
_ERROR_CODE = re.compile(rb"<Code>([A-Za-z0-9.]{1,64})</Code>")
# The S3 code for a backend's server error that came without an S3 error document.
_SERVER_ERROR_CODES = {501: "NotImplemented", 503: "ServiceUnavailable"}


def backend_request_id(upstream: UpstreamResponse) -> str:
    """The backend's id for its answer, kept in the access log for finding it in the backend's
    logs (the client sees the proxy's id only)."""
    for name in _BACKEND_REQUEST_IDS:
        value = upstream.header_map.get(name)
        if value:
            return value[:128]
    return ""


async def relay_rewritten(
    upstream: UpstreamResponse,
    backend: Backend,
    record: RequestRecord,
    rewrite: Rewrite[bytes],
    location: Rewrite[str] | None,
) -> Response:
    """Answer with a small XML document rewritten for the client (bounded in size)."""
    try:
        body = await upstream.read(MAX_SMALL_ANSWER)
    except TimeoutError as exc:
        raise unreachable(backend, exc) from None
    except TooLarge:
        raise S3Error(
            "InternalError", "A backend answer was larger than the proxy rewrites."
        ) from None
    except UpstreamError as exc:
        raise unreachable(backend, exc) from None
    new_body = rewrite(body)
    record.backend_request_id = backend_request_id(upstream)
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


async def relay(
    http_request: Request,
    upstream: UpstreamResponse,
    backend: Backend,
    record: RequestRecord,
    location: Rewrite[str] | None = None,
) -> Response:
    """Stream the backend's answer to the client, headers and status as they are."""
    record.backend_request_id = backend_request_id(upstream)
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
        return await _small_answer(upstream, backend, record, headers, int(length))
    if head_only and (length.isdigit() or upstream.status in (204, 304)):
        # Nothing to stream: the head goes out in one write, without a streamed answer's
        # awaits. Response frames a HEAD answer by the Content-Length it is given.
        return Response(status=upstream.status, reason=upstream.reason, headers=headers)
    response = StreamResponse(status=upstream.status, reason=upstream.reason, headers=headers)
    if "content-length" not in upstream.header_map and not head_only:
        response.enable_chunked_encoding()
    await response.prepare(http_request)
    if head_only:
        await response.write_eof()
        return response

    def counted(moved: int) -> None:
        record.bytes_out += moved

    try:
        if _spliceable(http_request, upstream):
            read_timeout = upstream.connection.pool.read_timeout
            await splice_answer(http_request, response, upstream, read_timeout, counted)
            log.debug("spliced %d body bytes from backend %s", record.bytes_out, backend.name)
        else:
            async for piece in upstream.iter_pieces():
                await response.write(piece)
                record.bytes_out += len(piece)
    except (TimeoutError, UpstreamError) as exc:
        # Headers are gone already: the only honest signal left is a broken connection.
        log.warning("backend %s broke off a response: %s", backend.name, type(exc).__name__)
        metrics.child(metrics.BACKEND_ERRORS, backend.name, "broken_stream").inc()
        record.error_code = "BackendStreamBroken"
        if http_request.transport is not None:
            http_request.transport.abort()
        return response
    except ConnectionError:
        # The client went away; releasing the upstream response drops that connection.
        record.error_code = "ClientDisconnected"
        return response
    except OSError as exc:
        # No descriptor or pipe for a splice (EMFILE, say): the head is out, so cut the answer.
        log.warning("an answer from backend %s could not be relayed: %s", backend.name, exc)
        record.error_code = "InternalError"
        if http_request.transport is not None:
            http_request.transport.abort()
        return response
    finally:
        metrics.child(metrics.BYTES_OUT, backend.name).inc(record.bytes_out)
    await response.write_eof()
    return response


async def _small_answer(
    upstream: UpstreamResponse,
    backend: Backend,
    record: RequestRecord,
    headers: CIMultiDict[str],
    length: int,
) -> Response:
    """A small answer, read whole so it goes out in one write, headers and body together."""
    try:
        body = await upstream.read(length)
    except (TimeoutError, UpstreamError) as exc:
        metrics.child(metrics.BACKEND_ERRORS, backend.name, "broken_stream").inc()
        raise unreachable(backend, exc) from None
    if len(body) != length:
        metrics.child(metrics.BACKEND_ERRORS, backend.name, "broken_stream").inc()
        raise unreachable(backend, UpstreamError("short answer"))
    code = _ERROR_CODE.search(body) if upstream.status >= 400 else None
    if upstream.status >= 500 and code is None:
        raise _not_an_s3_error(upstream, backend)
    answer = Response(status=upstream.status, reason=upstream.reason, body=body, headers=headers)
    if code is not None:
        record.error_code = code.group(1).decode("ascii", "replace")
    record.bytes_out = len(body)
    if body:
        metrics.child(metrics.BYTES_OUT, backend.name).inc(len(body))
    return answer


def _not_an_s3_error(upstream: UpstreamResponse, backend: Backend) -> S3Error:
    """A server error page (an HTML 500, a load balancer's 502) no S3 client can read: the
    client gets S3's error document instead, with the same status, and SDKs retry as for S3."""
    status = upstream.status
    log.warning("backend %s answered %d without an S3 error document", backend.name, status)
    return S3Error(
        _SERVER_ERROR_CODES.get(status, "InternalError"),
        f"The store behind this request answered {status} without an S3 error document.",
        status=status,
    )


def _spliceable(http_request: Request, upstream: UpstreamResponse) -> bool:
    """Whether the kernel can move the body (`http/splice.py`): nothing here needs its bytes,
    and it comes from a backend's socket (a Redis store's answer is made in-process)."""
    return (
        splice.ENABLED
        and isinstance(upstream, UpstreamResponse)
        and splice_length(http_request.method, upstream.status, upstream.header_map) is not None
        and plain_socket(http_request.transport) is not None
        and plain_socket(upstream.connection.transport) is not None
    )
