"""Request bodies on their way to a backend: streamed, verified, never committed unverified.

`forward_body` yields the client's body piece by piece as it arrives. When the client signed a
hex SHA-256 of the payload, the hash is computed in passing and the newest piece is held back:
only once the whole body has arrived and the hash matched does that last piece go upstream.
On a mismatch (or a short body) the generator raises instead, aiohttp aborts the upstream
request before its last byte, and the backend, having seen a short body, commits nothing.
Memory per request is one piece (at most the server's read buffer), whatever the object size.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import StreamReader

from .errors import S3Error
from .s3request import S3Request
from .sigv4 import STREAMING_PAYLOADS, SigV4Auth


def check_supported(request: S3Request, auth: SigV4Auth) -> None:
    """Refuse body framings this proxy cannot yet verify, before any byte is read."""
    encoding = request.headers.get("Content-Encoding", "").lower()
    if auth.payload_hash in STREAMING_PAYLOADS or "aws-chunked" in encoding:
        raise S3Error(
            "NotImplemented",
            "aws-chunked (streaming) payloads are not supported yet; send the body with a "
            "hex x-amz-content-sha256 or UNSIGNED-PAYLOAD (boto3: "
            "request_checksum_calculation='when_required').",
        )


@dataclass(slots=True)
class BodyOutcome:
    """What happened to a forwarded body: bytes sent so far and the failure, if any."""

    sent: int = 0
    failure: S3Error | None = None
    complete: bool = False


async def forward_body(
    content: StreamReader,
    *,
    expected_sha256: str | None,
    outcome: BodyOutcome,
) -> AsyncIterator[bytes]:
    """The client's body, piece by piece, with the last piece held until it is verified."""
    digest = hashlib.sha256() if expected_sha256 is not None else None
    held = b""
    try:
        while True:
            piece = await content.readany()
            if not piece:
                break
            if digest is None:
                outcome.sent += len(piece)
                yield piece
                continue
            digest.update(piece)
            if held:
                outcome.sent += len(held)
                yield held
            held = piece
    except Exception as exc:  # the client went away or sent fewer bytes than it announced
        outcome.failure = S3Error("IncompleteBody")
        raise BodyAborted from exc
    if digest is not None and digest.hexdigest() != expected_sha256:
        outcome.failure = S3Error(
            "XAmzContentSHA256Mismatch",
            details={
                "ClientComputedContentSHA256": expected_sha256 or "",
                "S3ComputedContentSHA256": digest.hexdigest(),
            },
        )
        raise BodyAborted
    if held:
        outcome.sent += len(held)
        yield held
    outcome.complete = True


class BodyAborted(Exception):
    """Raised inside the upstream body so aiohttp aborts the backend request."""
