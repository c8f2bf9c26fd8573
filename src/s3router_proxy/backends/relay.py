"""A backend's answer on its way back to the client: streamed as it comes (headers and status
as they are, the backend's per-hop headers and request id replaced), or, for a small XML
document a rule needs in the client's names, read (bounded) and rewritten.

Headers are gone before a streamed body is: a backend that breaks off mid-body leaves the
client a broken connection, never a short answer that looks complete.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TypeVar

from multidict import CIMultiDict

from ..http.client import TooLarge, UpstreamError, UpstreamResponse
from ..http.messages import Request, Response, StreamResponse
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
        # A small answer goes out in one write, headers and body together.
        try:
            body = await upstream.read(int(length))
        except (TimeoutError, UpstreamError) as exc:
            metrics.child(metrics.BACKEND_ERRORS, backend.name, "broken_stream").inc()
            raise unreachable(backend, exc) from None
        if len(body) != int(length):
            metrics.child(metrics.BACKEND_ERRORS, backend.name, "broken_stream").inc()
            raise unreachable(backend, UpstreamError("short answer"))
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
