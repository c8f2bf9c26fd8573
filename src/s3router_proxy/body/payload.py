"""Request bodies on their way to a backend: streamed, verified, never committed unverified.

`plan_payload` decides, before a byte is read, how a body is checked and framed:
- what the client promised about it: a hex SHA-256 (`x-amz-content-sha256`), a `Content-MD5`,
  an `x-amz-checksum-*` header, or, for aws-chunked bodies, chunk signatures and trailer
  checksums (decoded and verified by `chunked.py`);
- how it goes upstream: a plain body with its decoded length (every backend takes that), or,
  where the backend is configured with `checksum_trailers: true`, unsigned aws-chunked with the
  client's trailer, so the backend stores the client's checksum too;
- whether a PutObject or UploadPart with `Transfer-Encoding: chunked` and no length may go on
  (chunked again, by the backend client) or is S3's 411 MissingContentLength, as the
  backend's `chunked_uploads` says.

`forward_body` then yields the body piece by piece as it arrives, feeding every check in
passing and holding the newest piece back: only once the whole body arrived and every check
passed does that piece go upstream. On a failure the generator raises instead, the upstream
request is aborted before its last byte, and the backend, having seen a short body, commits
nothing. A body of unknown length under a cap (`size_limit`) fails that way at its first byte
over the cap. Memory per request is one piece, whatever the object size.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from ..auth.sigv4 import STREAMING_PAYLOADS, UNSIGNED_PAYLOAD, SigV4Auth
from ..http.messages import Body, BodyTimeout
from ..s3 import checksums
from ..s3.errors import S3Error
from ..s3.operationsets import NEEDS_LENGTH, OBJECT_CHECKSUM_HEADERS
from ..s3.request import S3Request
from .chunked import (
    ChunkedBodyError,
    ChunkedResult,
    decode_aws_chunked,
    encode_unsigned_trailer,
)
from .chunksigning import ChunkSigning

UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
# Headers that describe aws-chunked framing; dropped when the backend gets a plain body.
CHUNKED_HEADERS = frozenset(
    {"x-amz-decoded-content-length", "x-amz-trailer", "x-amz-sdk-checksum-algorithm"}
)


@dataclass(slots=True)
class BodyCheck:
    """One promise about the body, checked over its (decoded) bytes."""

    hasher: object  # anything with update(bytes)
    matches: Callable[[], bool]
    failure: Callable[[], S3Error]


@dataclass(slots=True)
class BodyOutcome:
    """What happened to a forwarded body: bytes sent so far and the failure, if any."""

    sent: int = 0
    failure: S3Error | None = None
    complete: bool = False


@dataclass(slots=True)
class PayloadPlan:
    """How one request body is verified and framed toward the backend."""

    checks: list[BodyCheck] = field(default_factory=list)
    chunked: bool = False  # the client sent aws-chunked framing
    signing: ChunkSigning | None = None
    decoded_length: int | None = None
    trailer_names: tuple[str, ...] = ()
    trailer_signed: bool = False
    forward_trailers: bool = False  # re-frame as unsigned aws-chunked with the trailer
    upstream_payload_hash: str = UNSIGNED_PAYLOAD
    upstream_length: int | None = None  # Content-Length toward the backend (None: chunked)
    drop_headers: frozenset[str] = frozenset()
    content_encoding: str | None = None  # replacement Content-Encoding ("" drops it)
    chunked_result: ChunkedResult = field(default_factory=ChunkedResult)
    size_limit: int | None = None  # the most bytes a body of unknown length may carry


def _sha256_check(expected: str) -> BodyCheck:
    digest = hashlib.sha256()
    return BodyCheck(
        digest,
        lambda: digest.hexdigest() == expected,
        lambda: S3Error(
            "XAmzContentSHA256Mismatch",
            details={
                "ClientComputedContentSHA256": expected,
                "S3ComputedContentSHA256": digest.hexdigest(),
            },
        ),
    )


def _md5_check(value: str) -> BodyCheck:
    try:
        expected = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise S3Error("InvalidDigest") from None
    if len(expected) != 16:
        raise S3Error("InvalidDigest")
    digest = hashlib.md5()
    return BodyCheck(
        digest,
        lambda: digest.digest() == expected,
        lambda: S3Error(
            "BadDigest", "The Content-MD5 you specified did not match what we received."
        ),
    )


def _checksum_check(algorithm: str, value: str) -> BodyCheck:
    if not checksums.valid_value(algorithm, value):
        raise S3Error(
            "InvalidRequest", f"Value for {checksums.header_for(algorithm)} header is invalid."
        )
    return checksum_check(algorithm, value)


def checksum_check(algorithm: str, value: str) -> BodyCheck:
    """A check that the body's `algorithm` checksum is `value` (a valid one), else BadDigest."""
    checksum = checksums.new_checksum(algorithm)
    return BodyCheck(
        checksum,
        lambda: checksum.b64digest() == value,
        lambda: S3Error(
            "BadDigest", f"The {algorithm} you specified did not match the calculated checksum."
        ),
    )


def _length(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    if not value.isdigit():
        raise S3Error("InvalidArgument", f"{name} is not a number.")
    return int(value)


def plan_payload(
    request: S3Request,
    auth: SigV4Auth,
    signing_key: bytes | None,
    *,
    backend_trailers: bool,
    chunked_uploads: bool = False,
) -> PayloadPlan:
    """Decide how to verify and frame the body, or refuse the request before reading it.
    `chunked_uploads`: every backend the body goes to takes an upload of unknown length."""
    headers = request.headers
    plan = PayloadPlan()
    payload_hash = auth.payload_hash
    content_length = _length(headers.get("Content-Length"), "Content-Length")
    encodings = [e.strip() for e in headers.get("Content-Encoding", "").split(",") if e.strip()]
    for name, value in headers.items():
        algorithm = checksums.algorithm_for_header(name)
        if algorithm is not None and request.operation not in OBJECT_CHECKSUM_HEADERS:
            plan.checks.append(_checksum_check(algorithm, value.strip()))
    if "Content-MD5" in headers:
        plan.checks.append(_md5_check(headers["Content-MD5"].strip()))

    if payload_hash not in STREAMING_PAYLOADS:
        if "aws-chunked" in (e.lower() for e in encodings):
            raise S3Error(
                "InvalidRequest",
                "Content-Encoding aws-chunked needs a STREAMING-* x-amz-content-sha256.",
            )
        if len(payload_hash) == 64:
            plan.checks.append(_sha256_check(payload_hash.lower()))
            plan.upstream_payload_hash = payload_hash.lower()
        if (
            content_length is None
            and not chunked_uploads
            and request.operation in NEEDS_LENGTH
            and "chunked" in headers.get("Transfer-Encoding", "").lower()
        ):
            raise S3Error("MissingContentLength")
        plan.upstream_length = content_length
        return plan

    plan.chunked = True
    decoded = _length(headers.get("x-amz-decoded-content-length"), "x-amz-decoded-content-length")
    if decoded is None:
        raise S3Error(
            "MissingContentLength",
            "aws-chunked uploads must send x-amz-decoded-content-length.",
        )
    plan.decoded_length = decoded
    trailer_names = tuple(
        t.strip().lower() for t in headers.get("x-amz-trailer", "").split(",") if t.strip()
    )
    for name in trailer_names:
        if checksums.algorithm_for_header(name) is None:
            raise S3Error("InvalidRequest", f"The trailer {name} is not supported.")
    if trailer_names and any(checksums.algorithm_for_header(n) for n in headers):
        raise S3Error(
            "InvalidRequest",
            "Expecting a single x-amz-checksum- header; a checksum header and a checksum "
            "trailer were both sent.",
        )
    has_trailer = payload_hash.endswith("-TRAILER")
    if has_trailer and not trailer_names:
        raise S3Error("MalformedTrailerError", "x-amz-trailer is missing.")
    plan.trailer_names = trailer_names
    plan.trailer_signed = payload_hash == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    if payload_hash.startswith("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"):
        assert signing_key is not None
        plan.signing = ChunkSigning(
            signing_key=signing_key,
            amz_date=auth.amz_date,
            scope=auth.scope,
            seed_signature=auth.signature,
        )
    rest = [e for e in encodings if e.lower() != "aws-chunked"]
    if trailer_names and backend_trailers:
        plan.forward_trailers = True
        plan.upstream_payload_hash = UNSIGNED_TRAILER
        plan.upstream_length = None
        plan.content_encoding = ",".join(["aws-chunked", *rest])
        plan.drop_headers = frozenset()
    else:
        plan.upstream_payload_hash = UNSIGNED_PAYLOAD
        plan.upstream_length = decoded
        plan.content_encoding = ",".join(rest)
        plan.drop_headers = CHUNKED_HEADERS
    return plan


async def _raw(content: Body) -> AsyncIterator[bytes]:
    while True:
        piece = await content.readany()
        if not piece:
            return
        yield piece


def upstream_body(content: Body, plan: PayloadPlan, outcome: BodyOutcome) -> AsyncIterator[bytes]:
    """The body as the backend receives it: decoded, checked, framed per the plan."""
    source: AsyncIterator[bytes] = _raw(content)
    if plan.chunked:
        source = decode_aws_chunked(
            source,
            signing=plan.signing,
            decoded_length=plan.decoded_length,
            trailer_names=plan.trailer_names,
            trailer_signed=plan.trailer_signed,
            result=plan.chunked_result,
        )
    body = forward_body(source, checks=plan.checks, outcome=outcome, limit=plan.size_limit)
    if plan.forward_trailers:
        return encode_unsigned_trailer(
            body,
            lambda: {n: plan.chunked_result.trailers[n] for n in plan.trailer_names},
        )
    return body


async def forward_body(
    source: AsyncIterator[bytes],
    *,
    checks: list[BodyCheck],
    outcome: BodyOutcome,
    limit: int | None = None,
) -> AsyncIterator[bytes]:
    """`source`, with every check fed in passing and the last piece held until all pass;
    more than `limit` bytes fail as EntityTooLarge before the byte over it is sent."""
    held = b""
    hold_back = bool(checks)
    seen = 0
    try:
        async for piece in source:
            if limit is not None:
                seen += len(piece)
                if seen > limit:
                    outcome.failure = _too_large(limit)
                    raise BodyAborted
            for check in checks:
                check.hasher.update(piece)  # type: ignore[attr-defined]
            if not hold_back:
                outcome.sent += len(piece)
                yield piece
                continue
            if held:
                outcome.sent += len(held)
                yield held
            held = piece
    except ChunkedBodyError as exc:
        outcome.failure = exc.error
        raise BodyAborted from exc
    except BodyAborted:
        raise
    except Exception as exc:  # the client went away or sent fewer bytes than it announced
        # (or stalled: the access log then says RequestTimeout, as the client was told)
        timed_out = isinstance(exc, BodyTimeout)
        outcome.failure = S3Error("RequestTimeout" if timed_out else "IncompleteBody")
        raise BodyAborted from exc
    for check in checks:
        if not check.matches():
            outcome.failure = check.failure()
            raise BodyAborted
    if held:
        outcome.sent += len(held)
        yield held
    outcome.complete = True


def _too_large(limit: int) -> S3Error:
    return S3Error(
        "EntityTooLarge",
        f"Your proposed upload exceeds the maximum allowed size for this bucket ({limit} bytes).",
        details={"MaxSizeAllowed": str(limit)},
    )


class BodyAborted(Exception):
    """Raised inside the upstream body so the backend request is aborted."""


def check_empty_body(plan: PayloadPlan) -> None:
    """Run the plan's checks over an empty body (no generator runs for one)."""
    for check in plan.checks:
        if not check.matches():
            raise check.failure()
