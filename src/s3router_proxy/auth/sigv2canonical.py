"""What a SigV2 (HMAC-SHA1) request presents (`SigV2Auth`) and what its signature signs: the
string to sign, and the readings clients use.

SigV2 signs far less than SigV4 (no body, no Host, only a listed set of query parameters), so
the list of signed "sub-resources" is a security boundary: a query parameter that selects an
operation but is not signed lets a signature made for one operation be replayed as another.
`SUBRESOURCES` therefore holds every parameter S3 or botocore signs plus every parameter
`operations.py` uses to pick an operation (except `list-type`, which only picks between two
listings).

The canonical form matches botocore's `HmacV1Auth` bit for bit, because botocore is the client
that matters most: the resource is the raw path exactly as sent (SDKs sign the path they send,
percent-encoding included), sub-resource values are percent-decoded, valueless parameters stay
valueless (`?acl`, not `?acl=`). Query names and values are decoded exactly as `s3.request`
decodes them (`+` is a space), so what is signed is what the proxy acts on; botocore never sends
a raw `+` in a query, so for everything it sends the two decodings agree. Where AWS, MinIO and
botocore disagree the verifier tries each reading in turn (see `candidates_v2`); every reading
signs the same request, so accepting either never accepts a different one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

from .canonical import raw_query_parts

if TYPE_CHECKING:
    from ..s3.request import S3Request


@dataclass(frozen=True, slots=True)
class SigV2Auth:
    """The SigV2 credentials a request carries, parsed but not yet verified."""

    access_key_id: str
    signature: str  # base64, as provided
    presigned: bool
    expires: int | None  # query form: epoch seconds
    security_token: str | None  # x-amz-security-token header / query, if any


_TOKEN = "x-amz-security-token"
_REDACTED = "<redacted>"

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


def query_values(request: S3Request) -> dict[str, list[str]]:
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
        value = query_values(request).get(name.lower(), [""])[0]
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
        for lower, values in query_values(request).items():
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
    for raw_name, sep, raw_value in raw_query_parts(raw_query):
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


def string_to_sign_v2(request: S3Request, auth: SigV2Auth, *, redact: bool = False) -> str:
    """The StringToSign as AWS documents it, from the request exactly as received.

    `VERB \\n Content-MD5 \\n Content-Type \\n Date-or-Expires \\n AmzHeaders Resource`; the
    resource is ["/" bucket] + raw path + sorted sub-resources. `verify_signature_v2` also
    accepts the few variants real clients sign (`candidates_v2`); this is the one it reports,
    with the session token hidden when `redact` is set.
    """
    head, prefix = _head(request, auth)
    return (
        f"{head}{_date_line(request, auth)}\n{_amz_headers(request, auth, redact=redact)}"
        f"{prefix}{request.raw_path}{_subresources(request.raw_query)}"
    )


def candidates_v2(request: S3Request, auth: SigV2Auth) -> Iterator[str]:
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
