"""AWS Signature Version 4 for S3: verify what clients send, sign what the proxy sends.

Both directions share one canonicalisation. Verification canonicalises the request as it came
off the wire (raw path, raw query, header values as received), because that is what the client
signed; signing builds the canonical request from strings the caller will send byte for byte.
Everything here is pure: no I/O, no clock (callers pass `now`), no logging. Secrets, signatures
and session tokens never appear in an `S3Error`.
"""

from __future__ import annotations

import calendar
import contextlib
import functools
import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Protocol, TypeVar
from urllib.parse import quote, unquote_to_bytes

from ..s3.errors import S3Error

if TYPE_CHECKING:
    from multidict import CIMultiDictProxy

    from ..s3.request import S3Request

_K = TypeVar("_K")
_V = TypeVar("_V")

ALGORITHM = "AWS4-HMAC-SHA256"
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

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_AMZ_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z", re.ASCII)
_UNRESERVED = re.compile(r"[A-Za-z0-9\-._~]*")
# Already UriEncoded: unreserved characters and upper-case escapes of bytes that are not
# unreserved (what SDKs send). Decoding and encoding such a string again gives it back.
# Written as an unrolled loop with possessive quantifiers: a run of unreserved characters
# followed by a character that is not allowed must fail in linear time. (The former
# `(?:[unreserved]+|%XX)*` backtracked exponentially on such input: 24 characters and a `/`
# took half a second, 40 would take hours.)
_ENCODED_PART = (
    r"[A-Za-z0-9\-._~]*+"
    r"(?:%(?:[01][0-9A-F]|2[0-9A-CF]|3[A-F]|40|5[B-E]|60|7[B-DF]|[89A-F][0-9A-F])"
    r"[A-Za-z0-9\-._~]*+)*+"
)
_ENCODED = re.compile(_ENCODED_PART)
# A whole raw query whose every name and value is already UriEncoded (at most one `=` per
# pair): its canonical form only needs the pairs sorted.
_ENCODED_QUERY = re.compile(
    f"(?:{_ENCODED_PART}(?:={_ENCODED_PART})?+)(?:&{_ENCODED_PART}(?:={_ENCODED_PART})?+)*+"
)
_WS_RUN = re.compile(r"[ \t\r\n\x0b\x0c]+")
# Characters XML 1.0 cannot carry; error details are shown, not parsed, so escape them.
_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

_UNSUPPORTED_SCHEME = (
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
)
_SIGV2_NOT_IMPLEMENTED = "AWS Signature Version 2 is not supported yet; sign with AWS4-HMAC-SHA256."
_NO_DATE = "AWS authentication requires a valid Date or x-amz-date header"
_TWO_MECHANISMS = (
    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature "
    "query string parameter or the Authorization header should be specified"
)
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
# Query parameters that select an authentication mechanism; any of them next to an
# Authorization header makes the request ambiguous.
_QUERY_AUTH_MARKERS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature")
_SIGV2_QUERY_MARKERS = ("AWSAccessKeyId", "Signature")
_QUERY_AUTH_SET = frozenset(_QUERY_AUTH_MARKERS)
_SIGV2_QUERY_SET = frozenset(_SIGV2_QUERY_MARKERS)
_ANY_QUERY_AUTH_SET = _QUERY_AUTH_SET | _SIGV2_QUERY_SET
_PRESIGNED_SET = frozenset(_PRESIGNED_PARAMS)
_NOTHING: frozenset[str] = frozenset()
# Values never echoed in a SignatureDoesNotMatch CanonicalRequest.
_REDACTED_HEADERS = frozenset({"authorization", "x-amz-security-token"})
_REDACTED_QUERY = frozenset({"X-Amz-Security-Token"})
_SIGNATURE_PARAM = frozenset({"X-Amz-Signature"})


# ---------------------------------------------------------------------------------------------
# Encoding


def uri_encode(value: str, *, keep_slash: bool) -> str:
    """AWS UriEncode: UTF-8 bytes, unreserved characters kept, the rest `%XX` upper-case.

    `/` is kept only in paths (`keep_slash=True`). A lone surrogate cannot be UTF-8 and raises
    `UnicodeEncodeError` (a `ValueError`): such a name never came from a valid request.
    """
    if _UNRESERVED.fullmatch(value) is not None:
        return value
    return quote(value, safe="/" if keep_slash else "")


def canonical_query_string(items: Iterable[tuple[str, str]]) -> str:
    """The SigV4 canonical query for decoded `(name, value)` pairs, repeats kept.

    It is also the exact query string the proxy sends, so what is signed is what is sent.
    """
    pairs = sorted(
        (uri_encode(name, keep_slash=False), uri_encode(value, keep_slash=False))
        for name, value in items
    )
    return "&".join([f"{name}={value}" for name, value in pairs])


def _utf8(text: str) -> bytes:
    """Bytes for hashing; the front server hands over undecodable bytes as `surrogateescape`."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _reencode_query_part(raw: str) -> str:
    """Decode one raw query name or value (`+` is a space) and UriEncode it again.

    Works on bytes, so a non-UTF-8 escape still canonicalises to exactly what was sent.
    """
    if _ENCODED.fullmatch(raw) is not None:
        return raw
    return quote(unquote_to_bytes(_utf8(raw.replace("+", " "))), safe="")


def _raw_canonical_query(
    raw_query: str, *, drop: frozenset[str] = frozenset(), redact: frozenset[str] = frozenset()
) -> str:
    """The canonical query of a raw query string as received.

    Names in `drop` are left out, values of names in `redact` are hidden (for error details).
    Every such name is unreserved, so its encoded and decoded forms are the same string.
    """
    if not raw_query:
        return ""
    pairs = []
    if _ENCODED_QUERY.fullmatch(raw_query) is not None:
        # Every name and value is canonical already: re-encoding would give each back as is.
        for part in raw_query.split("&"):
            if not part:
                continue
            name, _, value = part.partition("=")
            if name in drop:
                continue
            pairs.append((name, "<redacted>" if name in redact else value))
        pairs.sort()
        return "&".join([f"{name}={value}" for name, value in pairs])
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name = _reencode_query_part(name)
        if name in drop:
            continue
        pairs.append((name, "<redacted>" if name in redact else _reencode_query_part(value)))
    pairs.sort()
    return "&".join([f"{name}={value}" for name, value in pairs])


def _trim(value: str) -> str:
    """Trimall: strip the value and collapse each whitespace run to one space."""
    if value.isprintable() and "  " not in value and value[:1] != " " and value[-1:] != " ":
        return value
    return _WS_RUN.sub(" ", value).strip(" ")


def _needs_trim(block: str, lines: int) -> bool:
    """Whether any value in a joined canonical-headers block might need trimming.

    Most values need none, and one scan of the joined block proves it: a value that starts or
    ends with a space, holds a double space, other whitespace or a line break shows up as one
    of these substrings or as an extra line.
    """
    return (
        ": " in block
        or " \n" in block
        or "  " in block
        or "\t" in block
        or "\r" in block
        or "\x0b" in block
        or "\x0c" in block
        or block.count("\n") != lines
    )


def _headers_block(names: Sequence[str], values: Sequence[str]) -> str:
    """The canonical headers, `name:value\\n` each, values trimmed."""
    block = "".join([f"{name}:{value}\n" for name, value in zip(names, values, strict=True)])
    if _needs_trim(block, len(names)):
        block = "".join(
            [f"{name}:{_trim(value)}\n" for name, value in zip(names, values, strict=True)]
        )
    return block


# ---------------------------------------------------------------------------------------------
# Keys and signatures


class _Hash(Protocol):
    def copy(self) -> _Hash: ...
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...


# A signing key with its HMAC pads already hashed: HMAC(key, m) = H(opad || H(ipad || m)), and
# copying two primed SHA-256 states is several times cheaper than a fresh HMAC per signature.
_Key = tuple[bytes, _Hash, _Hash]
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
_KEY_CACHE: dict[tuple[bytes, str, str, str], _Key] = {}
_KEY_CACHE_SIZE = 1024


def _derive(secret: str, date: str, region: str, service: str) -> _Key:
    key = hmac.digest(("AWS4" + secret).encode("utf-8"), date.encode("utf-8"), "sha256")
    for part in (region, service, "aws4_request"):
        key = hmac.digest(key, part.encode("utf-8"), "sha256")
    block = key.ljust(64, b"\0")  # a 32-byte key fits SHA-256's 64-byte block as is
    return key, hashlib.sha256(block.translate(_IPAD)), hashlib.sha256(block.translate(_OPAD))


@functools.lru_cache(maxsize=256)
def _fingerprint(secret: str) -> bytes:
    # Secrets are few (one per client and backend): hash each once, not twice per request.
    return hashlib.sha256(secret.encode("utf-8")).digest()


def _cached_key(secret: str, date: str, region: str, service: str) -> _Key:
    """The derived key from a bounded LRU cache keyed by a SHA-256 fingerprint of the secret.

    The fingerprint makes a rotated secret miss the cache, and keeps the raw secret out of
    anything that lists the cache's keys.
    """
    cache_key = (_fingerprint(secret), date, region, service)
    entry = _KEY_CACHE.pop(cache_key, None)
    if entry is None:
        entry = _derive(secret, date, region, service)
        if len(_KEY_CACHE) >= _KEY_CACHE_SIZE:
            # The oldest entry; another thread may have taken it already.
            with contextlib.suppress(KeyError, StopIteration, RuntimeError):
                del _KEY_CACHE[next(iter(_KEY_CACHE))]
    _KEY_CACHE[cache_key] = entry  # re-inserting moves the entry to the young end
    return entry


def signing_key(secret: str, date: str, region: str, service: str = "s3") -> bytes:
    """The SigV4 signing key (four chained HMACs), cached; see `_cached_key`."""
    return _cached_key(secret, date, region, service)[0]


def _string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    digest = hashlib.sha256(_utf8(canonical_request)).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def _signature(key: _Key, string_to_sign: str) -> str:
    """Hex HMAC-SHA256 of the string to sign, from the key's primed pad states."""
    inner = key[1].copy()
    inner.update(string_to_sign.encode("utf-8"))
    outer = key[2].copy()
    outer.update(inner.digest())
    return outer.hexdigest()


def amz_date(now: float) -> str:
    """`now` (epoch seconds) as the SigV4 timestamp `YYYYMMDDTHHMMSSZ`, UTC."""
    return _amz_date_of_second(int(now))


@functools.lru_cache(maxsize=4)  # every request in the same second shares one timestamp
def _amz_date_of_second(second: int) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))


@functools.lru_cache(maxsize=4096)  # requests in the same second share a timestamp
def _amz_epoch(value: str) -> int | None:
    """Epoch seconds of a `YYYYMMDDTHHMMSSZ` timestamp, or None when it is not one."""
    match = _AMZ_DATE.fullmatch(value)
    if match is None:
        return None
    try:
        moment = datetime(*(int(part) for part in match.groups()), tzinfo=UTC)
    except ValueError:
        return None
    return int(moment.timestamp())


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


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
        if len(authorizations) > 1 or (query and not _ANY_QUERY_AUTH_SET.isdisjoint(query)):
            raise S3Error(
                "InvalidArgument", _TWO_MECHANISMS, details={"ArgumentName": "Authorization"}
            )
        return _parse_header_auth(authorizations[0], headers)
    if not query:
        return None
    if not _QUERY_AUTH_SET.isdisjoint(query):
        return _parse_presigned_auth(query, headers)
    if not _SIGV2_QUERY_SET.isdisjoint(query):
        raise S3Error("NotImplemented", _SIGV2_NOT_IMPLEMENTED)
    return None


def _malformed(message: str, *, presigned: bool) -> S3Error:
    if presigned:
        return S3Error("AuthorizationQueryParametersError", message)
    return S3Error("AuthorizationHeaderMalformed", message)


# Parsed credentials and SignedHeaders lists, so that requests from the same client do not
# split and check the same strings again. Only successful parses are kept; bounded, oldest out.
_CREDENTIAL_CACHE: dict[tuple[str, str, bool], tuple[str, str, str, str]] = {}
_SIGNED_HEADERS_CACHE: dict[str, tuple[str, ...]] = {}
# Authorization headers up to their trailing "Signature=": (credential, signed headers).
_AUTH_HEAD_CACHE: dict[str, tuple[str, tuple[str, ...]]] = {}
_PARSE_CACHE_SIZE = 512
_PARSE_CACHE_MAX_KEY = 2048  # longer strings are parsed every time, never kept


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> None:
    if len(cache) >= _PARSE_CACHE_SIZE:
        # The oldest entry; another thread may have taken it already.
        with contextlib.suppress(KeyError, StopIteration, RuntimeError):
            del cache[next(iter(cache))]
    cache[key] = value


def _parse_credential(
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
        raise _malformed(
            f"Error parsing the {what}; the Credential is mal-formed; expecting "
            '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".',
            presigned=presigned,
        )
    access_key_id, date, region, service, _ = parts
    if date != amz_date[:8]:
        raise _malformed(
            f'Invalid credential date "{_for_display(date)}". This date is not the same as '
            f'X-Amz-Date: "{amz_date[:8]}".',
            presigned=presigned,
        )
    if service != "s3":
        what = (
            "Error parsing the X-Amz-Credential parameter"
            if presigned
            else ("The authorization header is malformed")
        )
        raise _malformed(
            f'{what}; incorrect service "{_for_display(service)}". This endpoint belongs to "s3".',
            presigned=presigned,
        )
    return access_key_id, date, region, service


def _parse_signed_headers(value: str, *, presigned: bool) -> tuple[str, ...]:
    cached = _SIGNED_HEADERS_CACHE.get(value)
    if cached is not None:
        return cached
    names = tuple(value.split(";"))
    if not value or not all(names) or any(name != name.strip() for name in names):
        raise _malformed("The SignedHeaders list is malformed.", presigned=presigned)
    if len(value) <= _PARSE_CACHE_MAX_KEY:
        _remember(_SIGNED_HEADERS_CACHE, value, names)
    return names


def _check_signature_syntax(signature: str, *, presigned: bool) -> None:
    # compare_digest refuses non-ASCII str, so the shape is checked before it is ever used.
    if _HEX64.fullmatch(signature) is None:
        raise _malformed("The signature is not 64 hexadecimal digits.", presigned=presigned)


def _check_payload_hash(value: str) -> None:
    if (
        value != UNSIGNED_PAYLOAD
        and value not in STREAMING_PAYLOADS
        and not _HEX64.fullmatch(value)
    ):
        raise S3Error(
            "InvalidArgument",
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* value, or a valid "
            "sha256 value.",
            details={
                "ArgumentName": "x-amz-content-sha256",
                "ArgumentValue": _for_display(value[:100]),
            },
        )


def _header_amz_date(headers: CIMultiDictProxy[str]) -> str:
    """The request time: x-amz-date, else the Date header in the SigV4 format."""
    value = headers.get("x-amz-date")
    if value is not None:
        if _amz_epoch(value) is None:
            raise S3Error("AccessDenied", _NO_DATE)
        return value
    value = headers.get("Date")
    if value is None:
        raise S3Error("AccessDenied", _NO_DATE)
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        raise S3Error("AccessDenied", _NO_DATE) from None
    if parsed.tzinfo is None:  # "-0000": UTC by RFC 5322
        epoch = calendar.timegm(parsed.timetuple())
    else:
        epoch = int(parsed.timestamp())
    return amz_date(epoch)


def _split_header_auth(authorization: str) -> tuple[str, tuple[str, ...], str]:
    """(Credential, SignedHeaders, Signature) of an Authorization header, syntax checked.

    Clients repeat everything before the signature: once a header up to its trailing
    `Signature=` has parsed, the same head with any 64-hex-digit signature parses the same
    way (a signature holds no comma, space or `=`), so the head's parse is kept.
    """
    head, sep, signature = authorization.rpartition("Signature=")
    if sep:
        cached = _AUTH_HEAD_CACHE.get(head)
        if cached is not None and _HEX64.fullmatch(signature) is not None:
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
            raise S3Error("NotImplemented", _SIGV2_NOT_IMPLEMENTED)
        raise S3Error("InvalidRequest", _UNSUPPORTED_SCHEME)
    fields: dict[str, str] = {}
    for component in rest.split(","):
        name, sep, value = component.strip().partition("=")
        if not sep or name in fields or name not in ("Credential", "SignedHeaders", "Signature"):
            raise _malformed(
                "The authorization header is malformed; unexpected component "
                f'"{_for_display(name[:40])}".',
                presigned=False,
            )
        fields[name] = value
    if len(fields) != 3:
        raise _malformed(
            "The authorization header is malformed; Credential, SignedHeaders and Signature "
            "are all required.",
            presigned=False,
        )
    signed_headers = _parse_signed_headers(fields["SignedHeaders"], presigned=False)
    signature = fields["Signature"]
    _check_signature_syntax(signature, presigned=False)
    return fields["Credential"], signed_headers, signature


def _parse_header_auth(authorization: str, headers: CIMultiDictProxy[str]) -> SigV4Auth:
    credential, signed_headers, signature = _split_header_auth(authorization)
    request_time = _header_amz_date(headers)
    access_key_id, date, region, service = _parse_credential(
        credential, request_time, presigned=False
    )

    payload_hashes = headers.getall("x-amz-content-sha256", [])
    if not payload_hashes:
        raise S3Error(
            "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"
        )
    if len(payload_hashes) > 1:
        raise S3Error("InvalidArgument", "x-amz-content-sha256 may appear only once.")
    payload_hash = payload_hashes[0]
    _check_payload_hash(payload_hash)

    return _new_auth(
        access_key_id,
        date,
        region,
        service,
        signed_headers,
        signature,
        request_time,
        payload_hash,
        False,
        None,
        headers.get("x-amz-security-token"),
    )


def _parse_presigned_auth(query: Mapping[str, str], headers: CIMultiDictProxy[str]) -> SigV4Auth:
    algorithm = query.get("X-Amz-Algorithm")
    if algorithm is not None and algorithm != ALGORITHM:
        if algorithm.startswith("AWS4-ECDSA"):
            raise S3Error("InvalidRequest", _UNSUPPORTED_SCHEME)
        raise S3Error(
            "AuthorizationQueryParametersError",
            'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"',
        )
    if not query.keys() >= _PRESIGNED_SET:
        raise S3Error("AuthorizationQueryParametersError", _PRESIGNED_MISSING)

    request_time = query["X-Amz-Date"]
    if _amz_epoch(request_time) is None:
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
    signed_headers = _parse_signed_headers(query["X-Amz-SignedHeaders"], presigned=True)
    signature = query["X-Amz-Signature"]
    _check_signature_syntax(signature, presigned=True)
    access_key_id, date, region, service = _parse_credential(
        query["X-Amz-Credential"], request_time, presigned=True
    )

    # SDKs differ in the case they hoist this parameter with; S3 only looks at the value.
    payload_hash = UNSIGNED_PAYLOAD
    for name, value in query.items():
        # lower() keeps the length of any name it could turn into this ASCII one
        if len(name) == 20 and name.lower() == "x-amz-content-sha256":
            _check_payload_hash(value)
            payload_hash = value
            break

    return _new_auth(
        access_key_id,
        date,
        region,
        service,
        signed_headers,
        signature,
        request_time,
        payload_hash,
        True,
        expires,
        query.get("X-Amz-Security-Token"),
    )


# ---------------------------------------------------------------------------------------------
# Time


def check_time(auth: SigV4Auth, now: float, *, max_skew: int = 900) -> None:
    """Refuse a request outside its time window.

    Header auth must be within `max_skew` seconds of `now` either way; a presigned URL is
    valid from its X-Amz-Date (tolerating `max_skew` of clock drift) until X-Amz-Expires later.
    """
    request_epoch = _amz_epoch(auth.amz_date)
    if request_epoch is None:  # parse_auth never builds one; a hand-made one is refused
        raise S3Error("AccessDenied", _NO_DATE)
    if auth.presigned:
        expires = auth.expires or 0
        if now > request_epoch + expires:
            raise S3Error(
                "AccessDenied",
                "Request has expired",
                details={
                    "X-Amz-Expires": str(expires),
                    "Expires": _iso(request_epoch + expires),
                    "ServerTime": _iso(now),
                },
            )
        if request_epoch > now + max_skew:
            raise S3Error(
                "AccessDenied",
                "Request is not valid yet",
                details={"X-Amz-Date": auth.amz_date, "ServerTime": _iso(now)},
            )
        return
    if abs(now - request_epoch) > max_skew:
        raise S3Error(
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
            details={
                "RequestTime": auth.amz_date,
                "ServerTime": _iso(now),
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
            values.append(",".join([_trim(value) for value in found]))
    return _headers_block(names, values)


def _uri_candidates(raw_path: str) -> Iterable[str]:
    """The raw path as signed by SDKs, then its canonical re-encoding (MinIO, RGW, lakeFS)."""
    first = raw_path or "/"
    yield first
    second = quote(unquote_to_bytes(_utf8(first)), safe="/")
    if second != first:
        yield second


def _for_display(text: str) -> str:
    """Text safe to put in error XML: invalid bytes and control characters escaped."""
    text = _utf8(text).decode("utf-8", "backslashreplace")
    return _XML_UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def verify_signature(request: S3Request, auth: SigV4Auth, secret: str) -> bytes:
    """Check the request's signature with `secret`; return the signing key for chunk checks.

    Raises AccessDenied for unsigned host or x-amz-* headers and SignatureDoesNotMatch (with
    the string to sign and canonical request, never the provided signature) on a mismatch.
    """
    _check_headers_signed(request.headers, _lower_set(auth.signed_headers))
    key = _cached_key(secret, auth.date, auth.region, auth.service)
    drop = _SIGNATURE_PARAM if auth.presigned else _NOTHING
    query = _raw_canonical_query(request.raw_query, drop=drop)
    headers_block = _canonical_headers(request.headers, auth.signed_headers)
    signed_line = ";".join(auth.signed_headers)
    scope = auth.scope
    first_sts = ""
    for uri in _uri_candidates(request.raw_path):
        canonical = (
            f"{request.method}\n{uri}\n{query}\n{headers_block}\n{signed_line}\n{auth.payload_hash}"
        )
        sts = _string_to_sign(auth.amz_date, scope, canonical)
        if hmac.compare_digest(_signature(key, sts), auth.signature):
            return key[0]
        first_sts = first_sts or sts

    shown_query = _raw_canonical_query(request.raw_query, drop=drop, redact=_REDACTED_QUERY)
    shown = (
        f"{request.method}\n{request.raw_path or '/'}\n{shown_query}\n"
        f"{_canonical_headers(request.headers, auth.signed_headers, redact=True)}\n"
        f"{signed_line}\n{auth.payload_hash}"
    )
    raise S3Error(
        "SignatureDoesNotMatch",
        details={
            "AWSAccessKeyId": _for_display(auth.access_key_id),
            "StringToSign": first_sts,
            "CanonicalRequest": _for_display(shown),
        },
    )


# ---------------------------------------------------------------------------------------------
# Signing toward backends


def sign_request(
    *,
    method: str,
    canonical_uri: str,
    canonical_query: str,
    headers: Mapping[str, str],
    payload_hash: str,
    access_key_id: str,
    secret_access_key: str,
    session_token: str | None,
    region: str,
    amz_date: str,
    service: str = "s3",
) -> dict[str, str]:
    """Sign a backend request; return the headers to add (date, payload hash, token, auth).

    Every header in `headers` (lower-case names, "host" included) is signed, plus the added
    x-amz-date, x-amz-content-sha256 and x-amz-security-token, as botocore signs them.
    `canonical_uri` and `canonical_query` must be exactly what is sent.
    """
    added = {"x-amz-date": amz_date, "x-amz-content-sha256": payload_hash}
    if session_token:
        added["x-amz-security-token"] = session_token
    if "".join(headers).islower():
        merged = dict(headers)
    else:
        merged = {name.lower(): value for name, value in headers.items()}
    merged.update(added)
    names = sorted(merged)
    signed_line = ";".join(names)
    # Inlined rather than shared with verification: this runs once per backend request.
    block = "".join([f"{name}:{merged[name]}\n" for name in names])
    if _needs_trim(block, len(names)):
        block = "".join([f"{name}:{_trim(merged[name])}\n" for name in names])
    canonical = (
        f"{method}\n{canonical_uri}\n{canonical_query}\n{block}\n{signed_line}\n{payload_hash}"
    )
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    digest = hashlib.sha256(_utf8(canonical)).hexdigest()
    signature = _signature(
        _cached_key(secret_access_key, date, region, service),
        f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}",
    )
    added["authorization"] = (
        f"{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={signed_line}, "
        f"Signature={signature}"
    )
    return added
