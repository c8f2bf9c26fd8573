"""AWS Signature Version 2 (HMAC-SHA1): verify what clients send, header and query form.

SigV2 is not legacy-only: boto3 still presigns URLs with it when no region (or us-east-1) is
set, and s3cmd, older SDKs and many appliances sign every request with it. What it signs, and
the readings of it real clients use, are `sigv2canonical`'s.

Everything here is pure: no I/O, no clock (callers pass `now`), no logging. Secrets, provided
signatures and session tokens never appear in an `S3Error`.
"""

from __future__ import annotations

import base64
import hmac
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..s3.errors import S3Error
from .canonical import utf8
from .refusals import (
    NO_DATE,
    QUERY_AUTH_MARKERS,
    V2_QUERY_MARKERS,
    V4_QUERY_MARKERS,
    for_display,
    two_mechanisms,
)
from .requesttime import http_date_epoch, iso
from .sigv2canonical import SigV2Auth, candidates_v2, query_values, string_to_sign_v2

if TYPE_CHECKING:
    from ..s3.request import S3Request

SCHEME = "AWS"

_HEADER_MALFORMED = "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature"
_QUERY_MISSING = (
    "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters"
)
_TOKEN = "x-amz-security-token"
_MAX_EXPIRES_DIGITS = 18  # far beyond any real epoch; keeps int() cheap on hostile input

# SigV2 has always matched this with Unicode `\d` (int() reads any script's digits); kept so,
# unlike SigV4's ASCII-only timestamps, so that no date accepted before is refused now.
_AMZ_BASIC = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")


# ---------------------------------------------------------------------------------------------
# Parsing


def parse_auth_v2(request: S3Request) -> SigV2Auth | None:
    """The SigV2 credentials of a request, or None when it carries no SigV2 authentication.

    A SigV4 `Authorization` header is not ours and gives None, so callers can try both parsers.
    Only syntax is checked (nothing needs the secret yet), so a malformed request is refused
    before any key lookup. Two mechanisms at once (header and query, or V2 and V4 query
    parameters) are refused as S3 does: which one would be checked is anyone's guess.
    """
    headers = request.headers
    query = request.query
    authorizations = headers.getall("Authorization", [])
    if any(_is_v2_header(value) for value in authorizations):
        if len(authorizations) > 1 or any(name in query for name in QUERY_AUTH_MARKERS):
            raise two_mechanisms()
        return _parse_header_auth(authorizations[0], request)
    if any(name in query for name in V2_QUERY_MARKERS):
        if authorizations or any(name in query for name in V4_QUERY_MARKERS):
            raise two_mechanisms()
        return _parse_query_auth(request)
    return None


def _is_v2_header(value: str) -> bool:
    scheme, _, _ = value.strip().partition(" ")
    return scheme == SCHEME


def _parse_header_auth(authorization: str, request: S3Request) -> SigV2Auth:
    """`AWS AKID:signature`. The key id never holds a colon and base64 never does either."""
    _, _, credentials = authorization.strip().partition(" ")
    access_key_id, sep, signature = credentials.strip().rpartition(":")
    if not sep or not access_key_id or not signature or " " in credentials.strip():
        # The header value holds a signature, so it is not echoed back.
        raise S3Error(
            "InvalidArgument", _HEADER_MALFORMED, details={"ArgumentName": "Authorization"}
        )
    return SigV2Auth(
        access_key_id=access_key_id,
        signature=signature,
        presigned=False,
        expires=None,
        security_token=request.headers.get(_TOKEN),
    )


def _parse_query_auth(request: S3Request) -> SigV2Auth:
    query = request.query
    access_key_id = query.get("AWSAccessKeyId", "")
    signature = query.get("Signature", "")
    raw_expires = query.get("Expires", "")
    if not access_key_id or not signature or not raw_expires:
        raise S3Error("AccessDenied", _QUERY_MISSING)
    if not (
        raw_expires.isascii() and raw_expires.isdigit() and len(raw_expires) <= _MAX_EXPIRES_DIGITS
    ):
        raise S3Error(
            "AccessDenied",
            f"Invalid date (should be seconds since epoch): {for_display(raw_expires[:64])}",
        )
    token = request.headers.get(_TOKEN)
    if token is None:
        tokens = query_values(request).get(_TOKEN)
        token = tokens[0] if tokens else None
    return SigV2Auth(
        access_key_id=access_key_id,
        # base64 holds `+`, which a client that forgot to encode it sends raw and the query
        # decoding turned into a space; base64 never holds a space, so this is lossless.
        signature=signature.replace(" ", "+"),
        presigned=True,
        expires=int(raw_expires),
        security_token=token,
    )


# ---------------------------------------------------------------------------------------------
# Time


def _http_epoch(value: str) -> float | None:
    """Epoch seconds of an HTTP date (RFC 1123/850, asctime) or `YYYYMMDDTHHMMSSZ`, else None."""
    value = value.strip()
    match = _AMZ_BASIC.fullmatch(value)
    if match is None:
        return http_date_epoch(value)
    try:
        return datetime(*(int(part) for part in match.groups()), tzinfo=UTC).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def check_time_v2(auth: SigV2Auth, request: S3Request, now: float, *, max_skew: int = 900) -> None:
    """Refuse a request outside its time window.

    Header form: the request time is x-amz-date when present (it overrides Date, as in S3),
    else Date; it must be within `max_skew` seconds of `now` either way, which bounds how long
    a captured request can be replayed. Query form: the URL is valid until `Expires`; SigV2
    has no start time, so there is nothing else to check.
    """
    if auth.presigned:
        expires = auth.expires if auth.expires is not None else 0
        if now > expires:
            raise S3Error(
                "AccessDenied",
                "Request has expired",
                details={"Expires": iso(expires), "ServerTime": iso(now)},
            )
        return
    value = request.headers.get("x-amz-date")
    if value is None:
        value = request.headers.get("Date")
    request_epoch = None if value is None else _http_epoch(value)
    if value is None or request_epoch is None:
        raise S3Error("AccessDenied", NO_DATE)
    if abs(now - request_epoch) > max_skew:
        raise S3Error(
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
            details={
                "RequestTime": for_display(value[:100]),
                "ServerTime": iso(now),
                "MaxAllowedSkewMilliseconds": str(max_skew * 1000),
            },
        )


# ---------------------------------------------------------------------------------------------
# Verification


def sign_v2(secret: str, string_to_sign: str) -> str:
    """base64(HMAC-SHA1(secret, string_to_sign)), the SigV2 signature."""
    digest = hmac.digest(secret.encode("utf-8"), utf8(string_to_sign), "sha1")
    return base64.b64encode(digest).decode("ascii")


def verify_signature_v2(request: S3Request, auth: SigV2Auth, secret: str) -> None:
    """Check the request's signature with `secret`, in constant time per candidate.

    Raises SignatureDoesNotMatch (403) with the AWSAccessKeyId and the AWS StringToSign
    (session token redacted), never the provided signature nor anything derived from the
    secret, so the error helps a client debug without helping anyone forge.
    """
    provided = utf8(auth.signature)
    for sts in candidates_v2(request, auth):
        if hmac.compare_digest(sign_v2(secret, sts).encode("ascii"), provided):
            return
    shown = string_to_sign_v2(request, auth, redact=True)
    raise S3Error(
        "SignatureDoesNotMatch",
        details={
            "AWSAccessKeyId": for_display(auth.access_key_id),
            "StringToSign": for_display(shown),
        },
    )
