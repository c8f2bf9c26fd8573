"""SigV4 toward backends: the proxy signs again, with the backend's keys, what it sends.

The client's signature never travels on; each backend request is signed from the strings the
proxy will send byte for byte (`canonical_uri`, `canonical_query`, lower-case header names),
as botocore signs them, so a backend that checks signatures sees exactly what was signed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .canonical import needs_trim, trim
from .signingkey import ALGORITHM, cached_key, signature, string_to_sign


@dataclass(frozen=True, slots=True)
class Credentials:
    """Whose keys sign a backend request; a snapshot, so a refresh never tears one in two."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """A backend request as it will be sent, before it is signed.

    `canonical_uri` and `canonical_query` are exactly what is sent; every header in `headers`
    (lower-case names, "host" included) is signed.
    """

    method: str
    canonical_uri: str
    canonical_query: str
    headers: Mapping[str, str]
    payload_hash: str


def sign_request(
    request: OutgoingRequest,
    credentials: Credentials,
    *,
    region: str,
    amz_date: str,
    service: str = "s3",
) -> dict[str, str]:
    """Sign a backend request; return the headers to add (date, payload hash, token, auth).

    Every header of the request is signed, plus the added x-amz-date, x-amz-content-sha256
    and x-amz-security-token, as botocore signs them.
    """
    headers = request.headers
    added = {"x-amz-date": amz_date, "x-amz-content-sha256": request.payload_hash}
    if credentials.session_token:
        added["x-amz-security-token"] = credentials.session_token
    if "".join(headers).islower():
        merged = dict(headers)
    else:
        merged = {name.lower(): value for name, value in headers.items()}
    merged.update(added)
    names = sorted(merged)
    signed_line = ";".join(names)
    # Inlined rather than `canonical.headers_block`: this runs once per backend request.
    block = "".join([f"{name}:{merged[name]}\n" for name in names])
    if needs_trim(block, len(names)):
        block = "".join([f"{name}:{trim(merged[name])}\n" for name in names])
    canonical = (
        f"{request.method}\n{request.canonical_uri}\n{request.canonical_query}\n"
        f"{block}\n{signed_line}\n{request.payload_hash}"
    )
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    key = cached_key(credentials.secret_access_key, date, region, service)
    added["authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed_line}, "
        f"Signature={signature(key, string_to_sign(amz_date, scope, canonical))}"
    )
    return added
