"""AWS Signature Version 2 (HMAC-SHA1): verify what clients send, header and query form.

SigV2 is not legacy-only: boto3 still presigns URLs with it when no region (or us-east-1) is
set, and s3cmd, older SDKs and many appliances sign every request with it. It signs far less
than SigV4 (no body, no Host, only a listed set of query parameters), so the list of signed
"sub-resources" is a security boundary: a query parameter that selects an operation but is not
signed lets a signature made for one operation be replayed as another. `SUBRESOURCES` therefore
holds every parameter S3 or botocore signs plus every parameter `operations.py` uses to pick an
operation (except `list-type`, which only picks between two listings).

The canonical form matches botocore's `HmacV1Auth` bit for bit, because botocore is the client
that matters most: the resource is the raw path exactly as sent (SDKs sign the path they send,
percent-encoding included), sub-resource values are percent-decoded, valueless parameters stay
valueless (`?acl`, not `?acl=`). Query names and values are decoded exactly as `s3.request`
decodes them (`+` is a space), so what is signed is what the proxy acts on; botocore never sends
a raw `+` in a query, so for everything it sends the two decodings agree. Where AWS, MinIO and
botocore disagree the verifier tries each reading in turn (see `verify_signature_v2`); every
reading signs the same request, so accepting either never accepts a different one.

Everything here is pure: no I/O, no clock (callers pass `now`), no logging. Secrets, provided
signatures and session tokens never appear in an `S3Error`.
"""

from __future__ import annotations

import base64
import calendar
import hmac
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from operator import itemgetter
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

from ..s3.errors import S3Error

if TYPE_CHECKING:
    from ..s3.request import S3Request

SCHEME = "AWS"

# Query parameters that are part of the signed resource. Sorted by origin so a reviewer can see
# why each one is here.
SUBRESOURCES: frozenset[str] = frozenset(
    {
        # The AWS RESTAuthentication list (and botocore's HmacV1Auth.QSAOfInterest).
        "acl",
        "accelerate",
        "analytics",
        "cors",
        "delete",
        "inventory",
        "lifecycle",
        "location",
        "logging",
        "metrics",
        "notification",
        "object-lock",
        "partNumber",
        "policy",
        "replication",
        "requestPayment",
        "restore",
        "select",
        "select-type",
        "tagging",
        "torrent",
        "uploadId",
        "uploads",
        "versionId",
        "versioning",
        "versions",
        "website",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
        # Only botocore signs these (GCS interop); signing them costs nothing and keeps
        # botocore requests that carry them verifiable.
        "defaultObjectAcl",
        "storageClass",
        # Operation selectors botocore does not sign (MinIO and s3proxy sign the first ones).
        # A botocore SigV2 request for these operations is refused; see the module docstring.
        "attributes",
        "encryption",
        "intelligent-tiering",
        "legal-hold",
        "ownershipControls",
        "policyStatus",
        "publicAccessBlock",
        "retention",
        # Operation selectors of newer APIs, as named in operations.py.
        "abac",
        "annotation",
        "default-storage-class",
        "metadataAnnotationTable",
        "metadataConfiguration",
        "metadataInventoryTable",
        "metadataJournalTable",
        "metadataTable",
        "part",
        "renameObject",
        "session",
    }
)

_NO_DATE = "AWS authentication requires a valid Date or x-amz-date header"
_HEADER_MALFORMED = "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature"
_QUERY_MISSING = (
    "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters"
)
_TWO_MECHANISMS = (
    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature "
    "query string parameter or the Authorization header should be specified"
)
# Query parameters that mean query-string authentication, V2 and V4.
_V2_QUERY_MARKERS = ("AWSAccessKeyId", "Signature")
_V4_QUERY_MARKERS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature")
_TOKEN = "x-amz-security-token"
_REDACTED = "<redacted>"
_MAX_EXPIRES_DIGITS = 18  # far beyond any real epoch; keeps int() cheap on hostile input

_AMZ_BASIC = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")
# Characters XML 1.0 cannot carry; error details are shown, not parsed, so escape them.
_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class SigV2Auth:
    """The SigV2 credentials a request carries, parsed but not yet verified."""

    access_key_id: str
    signature: str  # base64, as provided
    presigned: bool
    expires: int | None  # query form: epoch seconds
    security_token: str | None  # x-amz-security-token header / query, if any


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
        if len(authorizations) > 1 or any(
            name in query for name in _V2_QUERY_MARKERS + _V4_QUERY_MARKERS
        ):
            raise _two_mechanisms()
        return _parse_header_auth(authorizations[0], request)
    if any(name in query for name in _V2_QUERY_MARKERS):
        if authorizations or any(name in query for name in _V4_QUERY_MARKERS):
            raise _two_mechanisms()
        return _parse_query_auth(request)
    return None


def _is_v2_header(value: str) -> bool:
    scheme, _, _ = value.strip().partition(" ")
    return scheme == SCHEME


def _two_mechanisms() -> S3Error:
    return S3Error("InvalidArgument", _TWO_MECHANISMS, details={"ArgumentName": "Authorization"})


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
            f"Invalid date (should be seconds since epoch): {_for_display(raw_expires[:64])}",
        )
    token = request.headers.get(_TOKEN)
    if token is None:
        tokens = _query_values(request).get(_TOKEN)
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
    try:
        if match is not None:
            return datetime(*(int(part) for part in match.groups()), tzinfo=UTC).timestamp()
        parsed = parsedate_to_datetime(value)
        if parsed.tzinfo is None:  # "-0000": UTC by RFC 5322
            return float(calendar.timegm(parsed.timetuple()))
        return parsed.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


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
                details={"Expires": _iso(expires), "ServerTime": _iso(now)},
            )
        return
    value = request.headers.get("x-amz-date")
    if value is None:
        value = request.headers.get("Date")
    request_epoch = None if value is None else _http_epoch(value)
    if value is None or request_epoch is None:
        raise S3Error("AccessDenied", _NO_DATE)
    if abs(now - request_epoch) > max_skew:
        raise S3Error(
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
            details={
                "RequestTime": _for_display(value[:100]),
                "ServerTime": _iso(now),
                "MaxAllowedSkewMilliseconds": str(max_skew * 1000),
            },
        )


# ---------------------------------------------------------------------------------------------
# String to sign


def _query_values(request: S3Request) -> dict[str, list[str]]:
    """Decoded query values by lower-case name, every repeat in order."""
    values: dict[str, list[str]] = {}
    for name, value in request.query_items:
        values.setdefault(name.lower(), []).append(value)
    return values


def _standard_header(request: S3Request, auth: SigV2Auth, name: str) -> str:
    """Content-MD5 / Content-Type: the header, or (query form) the parameter botocore hoists.

    `HmacV1QueryAuth` moves these headers into the URL, so a presigned request may carry them
    only there; a header sent along wins, and must then be the value that was signed.
    """
    value = request.headers.get(name)
    if value is None and auth.presigned:
        value = _query_values(request).get(name.lower(), [""])[0]
    return (value or "").strip()


def _amz_headers(request: S3Request, auth: SigV2Auth, *, redact: bool = False) -> str:
    """CanonicalizedAmzHeaders: `name:v1,v2\\n` per x-amz-* name, lower-case, sorted.

    Values are stripped and repeats joined with `,` in arrival order, as botocore signs them.
    In the query form, x-amz-* query parameters count too: botocore hoists signed x-amz-*
    headers (the session token among them) into a presigned URL, and S3 treats them as
    headers. A query copy that equals the header is one value; a differing copy is signed too,
    so a request cannot smuggle an unsigned x-amz-* value in either place.
    """
    grouped: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        lower = name.lower()
        if lower.startswith("x-amz-"):
            grouped.setdefault(lower, []).append(value.strip())
    if auth.presigned:
        for lower, values in _query_values(request).items():
            if not lower.startswith("x-amz-"):
                continue
            stripped = [value.strip() for value in values]
            present = grouped.get(lower)
            if present is None:
                grouped[lower] = stripped
            elif present != stripped:
                present.extend(stripped)
    lines = []
    for name in sorted(grouped):
        value = _REDACTED if redact and name == _TOKEN else ",".join(grouped[name])
        lines.append(f"{name}:{value}\n")
    return "".join(lines)


def _subresources(raw_query: str) -> str:
    """The signed query parameters, sorted by name (stable), `name` or `name=value`.

    Names and values are decoded the way `s3.request` decodes them, so the parameter that
    selects the operation is exactly the one that is signed (`%61cl` is `acl`) and a value
    means what was signed: botocore signs `unquote(value)`, and a raw `+` (which botocore never
    sends, it encodes `%2B`) is read as a space here as by MinIO and the rest of the proxy.
    The raw query keeps whether a parameter had an `=`, which botocore signs as sent.
    """
    found: list[tuple[str, str]] = []
    for part in raw_query.split("&"):
        if not part:
            continue
        raw_name, sep, raw_value = part.partition("=")
        name = unquote_plus(raw_name)
        if name in SUBRESOURCES:
            found.append((name, f"{name}={unquote_plus(raw_value)}" if sep else name))
    if not found:
        return ""
    found.sort(key=itemgetter(0))
    return "?" + "&".join([entry for _, entry in found])


def _date_line(request: S3Request, auth: SigV2Auth) -> str:
    """Expires as sent (query form); "" when x-amz-date is present (it is signed below); else
    the Date header."""
    if auth.presigned:
        return request.query.get("Expires", str(auth.expires))
    if "x-amz-date" in request.headers:
        return ""
    return request.headers.get("Date", "").strip()


def _resource_prefix(request: S3Request) -> str:
    """Virtual-hosted requests sign `/bucket` in front of the path; path style has it already."""
    return "/" + request.bucket if request.addressing == "virtual" else ""


def _head(request: S3Request, auth: SigV2Auth) -> tuple[str, str]:
    """The lines before the date (verb, Content-MD5, Content-Type) and the resource prefix."""
    head = (
        f"{request.method}\n"
        f"{_standard_header(request, auth, 'Content-MD5')}\n"
        f"{_standard_header(request, auth, 'Content-Type')}\n"
    )
    return head, _resource_prefix(request)


def _build(request: S3Request, auth: SigV2Auth, *, redact: bool = False) -> str:
    """The AWS reading: see `string_to_sign_v2`."""
    head, prefix = _head(request, auth)
    return (
        f"{head}{_date_line(request, auth)}\n{_amz_headers(request, auth, redact=redact)}"
        f"{prefix}{request.raw_path}{_subresources(request.raw_query)}"
    )


def string_to_sign_v2(request: S3Request, auth: SigV2Auth) -> str:
    """The StringToSign as AWS documents it, from the request exactly as received.

    `VERB \\n Content-MD5 \\n Content-Type \\n Date-or-Expires \\n AmzHeaders Resource`; the
    resource is ["/" bucket] + raw path + sorted sub-resources. `verify_signature_v2` also
    accepts the few variants real clients sign; this is the one it reports.
    """
    return _build(request, auth)


# ---------------------------------------------------------------------------------------------
# Verification


def _candidates(request: S3Request, auth: SigV2Auth) -> Iterator[str]:
    """Every string to sign a client may have signed for this request, the AWS one first.

    - Date line: with x-amz-date present AWS signs "", but botocore and MinIO sign the Date
      header's value (botocore always sends Date); the x-amz-date line is signed either way.
    - Path: botocore signs a path-style bucket request (`/bucket`) as `/bucket/`, the form a
      virtual-hosted request has; both name the same bucket and no key.
    """
    dates = [_date_line(request, auth)]
    date_header = request.headers.get("Date")
    if not auth.presigned and "x-amz-date" in request.headers and date_header is not None:
        dates.append(date_header.strip())
    paths = [request.raw_path]
    if (
        request.addressing == "path"
        and request.bucket
        and not request.key
        and not request.raw_path.endswith("/")
    ):
        paths.append(request.raw_path + "/")
    head, prefix = _head(request, auth)
    amz = _amz_headers(request, auth)
    resource_tail = _subresources(request.raw_query)
    for path in paths:
        for date_line in dates:
            yield f"{head}{date_line}\n{amz}{prefix}{path}{resource_tail}"


def _utf8(text: str) -> bytes:
    """Bytes for hashing; the front server hands over undecodable bytes as `surrogateescape`."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def sign_v2(secret: str, string_to_sign: str) -> str:
    """base64(HMAC-SHA1(secret, string_to_sign)), the SigV2 signature."""
    digest = hmac.digest(secret.encode("utf-8"), _utf8(string_to_sign), "sha1")
    return base64.b64encode(digest).decode("ascii")


def _for_display(text: str) -> str:
    """Text safe to put in error XML: invalid bytes and control characters escaped."""
    text = _utf8(text).decode("utf-8", "backslashreplace")
    return _XML_UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def verify_signature_v2(request: S3Request, auth: SigV2Auth, secret: str) -> None:
    """Check the request's signature with `secret`, in constant time per candidate.

    Raises SignatureDoesNotMatch (403) with the AWSAccessKeyId and the AWS StringToSign
    (session token redacted), never the provided signature nor anything derived from the
    secret, so the error helps a client debug without helping anyone forge.
    """
    provided = _utf8(auth.signature)
    for sts in _candidates(request, auth):
        if hmac.compare_digest(sign_v2(secret, sts).encode("ascii"), provided):
            return
    shown = _build(request, auth, redact=True)
    raise S3Error(
        "SignatureDoesNotMatch",
        details={
            "AWSAccessKeyId": _for_display(auth.access_key_id),
            "StringToSign": _for_display(shown),
        },
    )
