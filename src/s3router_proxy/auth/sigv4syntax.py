"""The syntax of what a SigV4 request presents: credential, SignedHeaders, signature, date.

Each field is checked here before any key is looked up, with the S3 error S3 gives for it
(`AuthorizationHeaderMalformed` in a header, `AuthorizationQueryParametersError` in a
presigned URL). Clients send the same credential, SignedHeaders list and Authorization head
again and again, so successful parses are kept in small bounded caches, oldest out.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, TypeVar

from ..s3.errors import S3Error
from .refusals import NO_DATE, for_display
from .requesttime import amz_date, amz_epoch, http_date_epoch
from .signingkey import ALGORITHM

if TYPE_CHECKING:
    from multidict import CIMultiDictProxy

_K = TypeVar("_K")
_V = TypeVar("_V")

HEX64 = re.compile(r"[0-9a-fA-F]{64}")
UNSUPPORTED_SCHEME = (
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
)
SIGV2_NOT_IMPLEMENTED = "AWS Signature Version 2 is not supported yet; sign with AWS4-HMAC-SHA256."

# Parsed credentials and SignedHeaders lists, so that requests from the same client do not
# split and check the same strings again. Only successful parses are kept; bounded, oldest out.
_CREDENTIAL_CACHE: dict[tuple[str, str, bool], tuple[str, str, str, str]] = {}
_SIGNED_HEADERS_CACHE: dict[str, tuple[str, ...]] = {}
# Authorization headers up to their trailing "Signature=": (credential, signed headers).
_AUTH_HEAD_CACHE: dict[str, tuple[str, tuple[str, ...]]] = {}
_PARSE_CACHE_SIZE = 512
_PARSE_CACHE_MAX_KEY = 2048  # longer strings are parsed every time, never kept


def malformed(message: str, *, presigned: bool) -> S3Error:
    """The error S3 gives for a malformed field: its code depends on where the field was."""
    if presigned:
        return S3Error("AuthorizationQueryParametersError", message)
    return S3Error("AuthorizationHeaderMalformed", message)


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> None:
    if len(cache) >= _PARSE_CACHE_SIZE:
        # The oldest entry; another thread may have taken it already.
        with contextlib.suppress(KeyError, StopIteration, RuntimeError):
            del cache[next(iter(cache))]
    cache[key] = value


def parse_credential(
    credential: str, amz_date: str, *, presigned: bool
) -> tuple[str, str, str, str]:
    """Split `AKID/date/region/service/aws4_request`, from the right (the key id is opaque)."""
    cache_key = (credential, amz_date[:8], presigned)
    cached = _CREDENTIAL_CACHE.get(cache_key)
    if cached is not None:
        return cached
    result = _parse_credential_uncached(credential, amz_date, presigned=presigned)
    if len(credential) <= _PARSE_CACHE_MAX_KEY:
        _remember(_CREDENTIAL_CACHE, cache_key, result)
    return result


def _parse_credential_uncached(
    credential: str, amz_date: str, *, presigned: bool
) -> tuple[str, str, str, str]:
    parts = credential.rsplit("/", 4)
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts[:4]):
        what = "X-Amz-Credential parameter" if presigned else "authorization header"
        raise malformed(
            f"Error parsing the {what}; the Credential is mal-formed; expecting "
            '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".',
            presigned=presigned,
        )
    access_key_id, date, region, service, _ = parts
    if date != amz_date[:8]:
        raise malformed(
            f'Invalid credential date "{for_display(date)}". This date is not the same as '
            f'X-Amz-Date: "{amz_date[:8]}".',
            presigned=presigned,
        )
    if service != "s3":
        what = (
            "Error parsing the X-Amz-Credential parameter"
            if presigned
            else ("The authorization header is malformed")
        )
        raise malformed(
            f'{what}; incorrect service "{for_display(service)}". This endpoint belongs to "s3".',
            presigned=presigned,
        )
    return access_key_id, date, region, service


def parse_signed_headers(value: str, *, presigned: bool) -> tuple[str, ...]:
    cached = _SIGNED_HEADERS_CACHE.get(value)
    if cached is not None:
        return cached
    names = tuple(value.split(";"))
    if not value or not all(names) or any(name != name.strip() for name in names):
        raise malformed("The SignedHeaders list is malformed.", presigned=presigned)
    if len(value) <= _PARSE_CACHE_MAX_KEY:
        _remember(_SIGNED_HEADERS_CACHE, value, names)
    return names


def check_signature_syntax(signature: str, *, presigned: bool) -> None:
    # compare_digest refuses non-ASCII str, so the shape is checked before it is ever used.
    if HEX64.fullmatch(signature) is None:
        raise malformed("The signature is not 64 hexadecimal digits.", presigned=presigned)


def header_amz_date(headers: CIMultiDictProxy[str]) -> str:
    """The request time: x-amz-date, else the Date header in the SigV4 format."""
    value = headers.get("x-amz-date")
    if value is not None:
        if amz_epoch(value) is None:
            raise S3Error("AccessDenied", NO_DATE)
        return value
    value = headers.get("Date")
    if value is None:
        raise S3Error("AccessDenied", NO_DATE)
    epoch = http_date_epoch(value)
    if epoch is None:
        raise S3Error("AccessDenied", NO_DATE)
    return amz_date(epoch)


def split_header_auth(authorization: str) -> tuple[str, tuple[str, ...], str]:
    """(Credential, SignedHeaders, Signature) of an Authorization header, syntax checked.

    Clients repeat everything before the signature: once a header up to its trailing
    `Signature=` has parsed, the same head with any 64-hex-digit signature parses the same
    way (a signature holds no comma, space or `=`), so the head's parse is kept.
    """
    head, sep, signature = authorization.rpartition("Signature=")
    if sep:
        cached = _AUTH_HEAD_CACHE.get(head)
        if cached is not None and HEX64.fullmatch(signature) is not None:
            return cached[0], cached[1], signature
    credential, signed_headers, parsed_signature = _split_header_auth_uncached(authorization)
    if (
        sep
        and parsed_signature == signature
        and not head.rpartition(",")[2].strip()  # the last component is "Signature=..."
        and len(head) <= _PARSE_CACHE_MAX_KEY
    ):
        _remember(_AUTH_HEAD_CACHE, head, (credential, signed_headers))
    return credential, signed_headers, parsed_signature


def _split_header_auth_uncached(authorization: str) -> tuple[str, tuple[str, ...], str]:
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme != ALGORITHM:
        if scheme == "AWS":
            raise S3Error("NotImplemented", SIGV2_NOT_IMPLEMENTED)
        raise S3Error("InvalidRequest", UNSUPPORTED_SCHEME)
    fields: dict[str, str] = {}
    for component in rest.split(","):
        name, sep, value = component.strip().partition("=")
        if not sep or name in fields or name not in ("Credential", "SignedHeaders", "Signature"):
            raise malformed(
                "The authorization header is malformed; unexpected component "
                f'"{for_display(name[:40])}".',
                presigned=False,
            )
        fields[name] = value
    if len(fields) != 3:
        raise malformed(
            "The authorization header is malformed; Credential, SignedHeaders and Signature "
            "are all required.",
            presigned=False,
        )
    signed_headers = parse_signed_headers(fields["SignedHeaders"], presigned=False)
    signature = fields["Signature"]
    check_signature_syntax(signature, presigned=False)
    return fields["Credential"], signed_headers, signature
