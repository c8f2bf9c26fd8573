"""What the signatures of an aws-chunked body are checked against: the request's signing key,
date and scope, and its own signature, which the first chunk's signature chains from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class ChunkSigning:
    """What chunk signatures are checked against (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER])."""

    signing_key: bytes  # from sigv4.verify_signature
    amz_date: str  # YYYYMMDDTHHMMSSZ
    scope: str  # date/region/s3/aws4_request
    seed_signature: str  # the request's own signature (hex)
