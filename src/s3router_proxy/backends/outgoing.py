"""A client's request as a backend receives it: which headers go on (signed or not), which
never leave the proxy, and the query string without the client's presigned auth.

The request is rebuilt rather than passed on: the client's auth, hop-by-hop and SDK
bookkeeping headers are dropped, and what a hop in front says about the client is never taken
as the backend's truth. Pure functions of the parsed request and its payload plan.
"""

from __future__ import annotations

from multidict import CIMultiDictProxy

from ..auth.canonical import canonical_query_string
from ..auth.sigv4 import SigV4Auth
from ..body.payload import PayloadPlan
from ..http.splice import MIN_SPLICE
from ..s3.request import S3Request

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


def splice_upload_length(request: S3Request, plan: PayloadPlan) -> int | None:
    """The length of a body the kernel may move to the backend unseen (`http/uploadsplice.py`),
    or None: an object or part whose bytes nothing in the proxy reads (no hash, Content-MD5 or
    checksum to verify, not aws-chunked, no cap counted as it flows), framed by a
    Content-Length alone and at least `MIN_SPLICE` long. Where it goes is the caller's part."""
    if plan.checks or plan.chunked or plan.forward_trailers or plan.size_limit is not None:
        return None
    if request.operation not in ("PutObject", "UploadPart"):
        return None
    headers = request.headers
    length = plan.upstream_length
    if "Transfer-Encoding" in headers or length is None or length < MIN_SPLICE:
        return None
    return length if headers.get("Content-Length", "").strip() == str(length) else None


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
