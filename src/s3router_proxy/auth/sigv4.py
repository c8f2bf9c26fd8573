"""AWS Signature Version 4 for S3: what a client presents, and whether it signed the request.

Verification canonicalises the request as it came off the wire (raw path, raw query, header
values as received), because that is what the client signed; `canonical` holds the forms it
shares with `signer`, which signs what the proxy sends to backends. Everything here is pure: no
I/O, no clock (callers pass `now`), no logging. Secrets, signatures and session tokens never
appear in an `S3Error`.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote_to_bytes

from ..s3.errors import S3Error
from .canonical import headers_block, raw_canonical_query, trim, utf8
from .refusals import (
    NO_DATE,
    QUERY_AUTH_MARKERS,
    V2_QUERY_MARKERS,
    V4_QUERY_MARKERS,
    for_display,
    two_mechanisms,
)
from .requesttime import amz_epoch, iso
from .signingkey import ALGORITHM, cached_key, signature, string_to_sign
from .sigv4syntax import (
    HEX64,
    SIGV2_NOT_IMPLEMENTED,
    UNSUPPORTED_SCHEME,
    check_signature_syntax,
    header_amz_date,
    parse_credential,
    parse_signed_headers,
    split_header_auth,
)

if TYPE_CHECKING:
    from multidict import CIMultiDictProxy

    from ..s3.request import S3Request

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
STREAMING_PAYLOADS = frozenset(
    {
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    }
)
MAX_PRESIGNED_EXPIRES = 604800  # seven days, the S3 limit

_PRESIGNED_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)
_PRESIGNED_MISSING = (
    "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
    "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
)
_PRESIGNED_SET = frozenset(_PRESIGNED_PARAMS)
_NOTHING: frozenset[str] = frozenset()
# Values never echoed in a SignatureDoesNotMatch CanonicalRequest.
_REDACTED_HEADERS = frozenset({"authorization", "x-amz-security-token"})
_REDACTED_QUERY = frozenset({"X-Amz-Security-Token"})
_SIGNATURE_PARAM = frozenset({"X-Amz-Signature"})

# ---------------------------------------------------------------------------------------------
# What the client presented


@dataclass(frozen=True, slots=True)
class SigV4Auth:
    """The SigV4 credentials a request carries, parsed but not yet verified."""

    access_key_id: str
    date: str  # YYYYMMDD from the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str  # YYYYMMDDTHHMMSSZ
    payload_hash: str  # the canonical request's last line
    presigned: bool
    expires: int | None  # presigned X-Amz-Expires
    security_token: str | None

    @property
    def scope(self) -> str:
        """The credential scope, as in the string to sign."""
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


_AUTH_SETTERS = tuple(getattr(SigV4Auth, field.name).__set__ for field in fields(SigV4Auth))


def _new_auth(*values: object) -> SigV4Auth:
    """`SigV4Auth(*values)`, without the frozen dataclass `__init__`'s per-field overhead.

    Sets the same slots (in field order) through their descriptors, as `__init__` does.
    """
    auth = object.__new__(SigV4Auth)
    for setter, value in zip(_AUTH_SETTERS, values, strict=True):
        setter(auth, value)
    return auth


def parse_auth(request: S3Request) -> SigV4Auth | None:
    """What authentication the request carries: None for anonymous, else parsed SigV4.

    Only syntax is checked here (nothing needs the secret yet), so a malformed request is
    refused before any key lookup.
    """
    headers = request.headers
    query = request.query
    authorizations = headers.getall("Authorization", ())
    if authorizations:
        if len(authorizations) > 1 or (query and not QUERY_AUTH_MARKERS.isdisjoint(query)):
            raise two_mechanisms()
        return _parse_header_auth(authorizations[0], headers)
    if not query:
        return None
    if not V4_QUERY_MARKERS.isdisjoint(query):
        return _parse_presigned_auth(query, headers)
    if not V2_QUERY_MARKERS.isdisjoint(query):
        raise S3Error("NotImplemented", SIGV2_NOT_IMPLEMENTED)
    return None


def _check_payload_hash(value: str) -> None:
    if value != UNSIGNED_PAYLOAD and value not in STREAMING_PAYLOADS and not HEX64.fullmatch(value):
        raise S3Error(
            "InvalidArgument",
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* value, or a valid "
            "sha256 value.",
            details={
                "ArgumentName": "x-amz-content-sha256",
                "ArgumentValue": for_display(value[:100]),
            },
        )


def _parse_header_auth(authorization: str, headers: CIMultiDictProxy[str]) -> SigV4Auth:
    credential, signed_headers, signature = split_header_auth(authorization)
    request_time = header_amz_date(headers)
    credential_parts = parse_credential(credential, request_time, presigned=False)

    payload_hashes = headers.getall("x-amz-content-sha256", [])
    if not payload_hashes:
        raise S3Error(
            "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"
        )
    if len(payload_hashes) > 1:
        raise S3Error("InvalidArgument", "x-amz-content-sha256 may appear only once.")
    payload_hash = payload_hashes[0]
    _check_payload_hash(payload_hash)

    token = headers.get("x-amz-security-token")
    return _new_auth(
        *credential_parts, signed_headers, signature, request_time, payload_hash, False, None, token
    )


def _parse_presigned_auth(query: Mapping[str, str], headers: CIMultiDictProxy[str]) -> SigV4Auth:
    algorithm = query.get("X-Amz-Algorithm")
    if algorithm is not None and algorithm != ALGORITHM:
        if algorithm.startswith("AWS4-ECDSA"):
            raise S3Error("InvalidRequest", UNSUPPORTED_SCHEME)
        raise S3Error(
            "AuthorizationQueryParametersError",
            'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"',
        )
    if not query.keys() >= _PRESIGNED_SET:
        raise S3Error("AuthorizationQueryParametersError", _PRESIGNED_MISSING)

    request_time = query["X-Amz-Date"]
    if amz_epoch(request_time) is None:
        raise S3Error(
            "AuthorizationQueryParametersError",
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
        )
    raw_expires = query["X-Amz-Expires"]
    if not (raw_expires.isascii() and raw_expires.isdigit()):
        raise S3Error("AuthorizationQueryParametersError", "X-Amz-Expires should be a number")
    expires = int(raw_expires)
    if expires < 1:
        raise S3Error(
            "AuthorizationQueryParametersError", "X-Amz-Expires must be at least one second"
        )
    if expires > MAX_PRESIGNED_EXPIRES:
        raise S3Error(
            "AuthorizationQueryParametersError",
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        )
    signed_headers = parse_signed_headers(query["X-Amz-SignedHeaders"], presigned=True)
    signature = query["X-Amz-Signature"]
    check_signature_syntax(signature, presigned=True)
    credential_parts = parse_credential(query["X-Amz-Credential"], request_time, presigned=True)

    # SDKs differ in the case they hoist this parameter with; S3 only looks at the value.
    payload_hash = UNSIGNED_PAYLOAD
    for name, value in query.items():
        # lower() keeps the length of any name it could turn into this ASCII one
        if len(name) == 20 and name.lower() == "x-amz-content-sha256":
            _check_payload_hash(value)
            payload_hash = value
            break

    token = query.get("X-Amz-Security-Token")
    return _new_auth(
        *credential_parts,
        signed_headers,
        signature,
        request_time,
        payload_hash,
        True,
        expires,
        token,
    )


# ---------------------------------------------------------------------------------------------
# Time


def check_time(auth: SigV4Auth, now: float, *, max_skew: int = 900) -> None:
    """Refuse a request outside its time window.

    Header auth must be within `max_skew` seconds of `now` either way; a presigned URL is
    valid from its X-Amz-Date (tolerating `max_skew` of clock drift) until X-Amz-Expires later.
    """
    request_epoch = amz_epoch(auth.amz_date)
    if request_epoch is None:  # parse_auth never builds one; a hand-made one is refused
        raise S3Error("AccessDenied", NO_DATE)
    if auth.presigned:
        expires = auth.expires or 0
        if now > request_epoch + expires:
            raise S3Error(
                "AccessDenied",
                "Request has expired",
                details={
                    "X-Amz-Expires": str(expires),
                    "Expires": iso(request_epoch + expires),
                    "ServerTime": iso(now),
                },
            )
        if request_epoch > now + max_skew:
            raise S3Error(
                "AccessDenied",
                "Request is not valid yet",
                details={"X-Amz-Date": auth.amz_date, "ServerTime": iso(now)},
            )
        return
    if abs(now - request_epoch) > max_skew:
        raise S3Error(
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
            details={
                "RequestTime": auth.amz_date,
                "ServerTime": iso(now),
                "MaxAllowedSkewMilliseconds": str(max_skew * 1000),
            },
        )


# ---------------------------------------------------------------------------------------------
# Verification


def _check_headers_signed(headers: CIMultiDictProxy[str], signed: frozenset[str]) -> None:
    """Every x-amz-* header but x-amz-content-sha256, and host, must be signed.

    An unsigned x-amz-* header could be injected on the way and would then be re-signed with
    backend credentials (think x-amz-copy-source or x-amz-acl); an unsigned Host lets a
    signature be replayed against another bucket. S3 refuses both the same way.
    """
    missing = set() if "host" in signed else {"host"}
    for name in headers:
        lower = name.lower()
        if lower.startswith("x-amz-") and lower not in signed and lower != "x-amz-content-sha256":
            missing.add(lower)
    if missing:
        raise S3Error(
            "AccessDenied",
            "There were headers present in the request which were not signed",
            details={"HeadersNotSigned": ", ".join(sorted(missing))},
        )


@functools.lru_cache(maxsize=256)  # clients send the same SignedHeaders list again and again
def _lower_set(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(name.lower() for name in names)


def _canonical_headers(
    headers: CIMultiDictProxy[str], names: Sequence[str], *, redact: bool = False
) -> str:
    """`name:v1,v2\\n` per signed name: every value in arrival order, each trimmed."""
    values = []
    for name in names:
        found = headers.getall(name, ())
        if redact and name.lower() in _REDACTED_HEADERS:
            values.append("<redacted>")
        elif len(found) == 1:
            values.append(found[0])  # trimmed below, with all the others
        else:
            values.append(",".join([trim(value) for value in found]))
    return headers_block(names, values)


def _uri_candidates(raw_path: str) -> Iterable[str]:
    """The raw path as signed by SDKs, then its canonical re-encoding (MinIO, RGW, lakeFS)."""
    first = raw_path or "/"
    yield first
    second = quote(unquote_to_bytes(utf8(first)), safe="/")
    if second != first:
        yield second


def verify_signature(request: S3Request, auth: SigV4Auth, secret: str) -> bytes:
    """Check the request's signature with `secret`; return the signing key for chunk checks.

    Raises AccessDenied for unsigned host or x-amz-* headers and SignatureDoesNotMatch (with
    the string to sign and canonical request, never the provided signature) on a mismatch.
    """
    _check_headers_signed(request.headers, _lower_set(auth.signed_headers))
    key = cached_key(secret, auth.date, auth.region, auth.service)
    drop = _SIGNATURE_PARAM if auth.presigned else _NOTHING
    query = raw_canonical_query(request.raw_query, drop=drop)
    block = _canonical_headers(request.headers, auth.signed_headers)
    signed_line = ";".join(auth.signed_headers)
    scope = auth.scope
    first_sts = ""
    for uri in _uri_candidates(request.raw_path):
        canonical = f"{request.method}\n{uri}\n{query}\n{block}\n{signed_line}\n{auth.payload_hash}"
        sts = string_to_sign(auth.amz_date, scope, canonical)
        if hmac.compare_digest(signature(key, sts), auth.signature):
            return key[0]
        first_sts = first_sts or sts

    shown_query = raw_canonical_query(request.raw_query, drop=drop, redact=_REDACTED_QUERY)
    shown = (
        f"{request.method}\n{request.raw_path or '/'}\n{shown_query}\n"
        f"{_canonical_headers(request.headers, auth.signed_headers, redact=True)}\n"
        f"{signed_line}\n{auth.payload_hash}"
    )
    raise S3Error(
        "SignatureDoesNotMatch",
        details={
            "AWSAccessKeyId": for_display(auth.access_key_id),
            "StringToSign": first_sts,
            "CanonicalRequest": for_display(shown),
        },
    )
