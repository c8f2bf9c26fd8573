"""A client's listing request, validated, and the continuation tokens that resume it.

Positions are logical: a page resumes after the last client name it showed. Every backend's
position is derived from that name through its mapping, so the continuation token holds only
names the client has already seen (no backend prefix or backend token leaks), stays valid across
config reloads, and is signed (HMAC-SHA256, base64url) so a forged one is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..s3.errors import S3Error

MAX_KEYS = 1000
_BAD_TOKEN = "The continuation token provided is incorrect"
_TOKEN_CONTEXT = b"s3router-list-token-v1\0"
_KINDS = {"ListObjects": "v1", "ListObjectsV2": "v2", "ListObjectVersions": "versions"}


@dataclass(frozen=True, slots=True)
class ListParams:
    """A client's listing request, validated."""

    kind: str  # "v1" | "v2" | "versions"
    bucket: str
    prefix: str
    delimiter: str
    max_keys: int  # as requested (echoed); at most MAX_KEYS entries are returned
    encode: bool  # encoding-type=url
    after: str  # resume after this name ("" from the start)
    after_version: str | None  # versions: resume after this version of `after`
    fetch_owner: bool
    query: Mapping[str, str]

    @property
    def limit(self) -> int:
        return min(self.max_keys, MAX_KEYS)


def encode_token(secret: bytes, params: ListParams, after: str) -> str:
    """An opaque, signed continuation token for resuming `params` after name `after`."""
    payload = json.dumps(
        {"b": params.bucket, "p": params.prefix, "d": params.delimiter, "k": after},
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    ).encode("utf-8")
    mac = hmac.new(secret, _TOKEN_CONTEXT + payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(payload + mac).decode("ascii").rstrip("=")


def decode_token(
    keys: Sequence[bytes], token: str, bucket: str, prefix: str, delimiter: str
) -> str:
    """The name a token resumes after; `S3Error(InvalidArgument)` if forged, altered or foreign.

    `keys`: the current secret first, then the previous ones still accepted."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        raise _bad_token() from None
    if len(raw) <= 32:
        raise _bad_token()
    payload, mac = raw[:-32], raw[-32:]
    signed = [hmac.new(k, _TOKEN_CONTEXT + payload, hashlib.sha256).digest() for k in keys]
    if not any(hmac.compare_digest(mac, expected) for expected in signed):
        raise _bad_token()
    try:
        fields = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):  # pragma: no cover - signed by us
        raise _bad_token() from None
    if (fields.get("b"), fields.get("p"), fields.get("d")) != (bucket, prefix, delimiter):
        raise _bad_token()
    after = fields.get("k")
    if not isinstance(after, str):  # pragma: no cover - signed by us
        raise _bad_token()
    return after


def _bad_token() -> S3Error:
    return S3Error(
        "InvalidArgument",
        _BAD_TOKEN,
        details={"ArgumentName": "continuation-token"},
    )


def parse_list_params(
    operation: str, bucket: str, query: Mapping[str, str], token_keys: Sequence[bytes]
) -> ListParams:
    """Validate a client's ListObjects / ListObjectsV2 / ListObjectVersions query."""
    kind = _KINDS.get(operation)
    if kind is None:
        raise ValueError(f"not a merged listing: {operation}")
    raw_max = query.get("max-keys", str(MAX_KEYS))
    if not raw_max.strip().isdigit():
        raise S3Error(
            "InvalidArgument",
            "Provided max-keys not an integer or within integer range",
            details={"ArgumentName": "max-keys", "ArgumentValue": raw_max},
        )
    encoding = query.get("encoding-type")
    if encoding is not None and encoding != "url":
        raise S3Error(
            "InvalidArgument",
            "Invalid Encoding Method specified in Request",
            details={"ArgumentName": "encoding-type", "ArgumentValue": encoding},
        )
    prefix = query.get("prefix", "")
    delimiter = query.get("delimiter", "")
    after, after_version = "", None
    if kind == "v1":
        after = query.get("marker", "")
    elif kind == "v2":
        token = query.get("continuation-token")
        if token is not None:
            if not token:
                raise S3Error("InvalidArgument", "The continuation token provided is incorrect")
            after = decode_token(token_keys, token, bucket, prefix, delimiter)
        else:
            after = query.get("start-after", "")
    else:
        after = query.get("key-marker", "")
        after_version = query.get("version-id-marker") or None
        if after_version is not None and not after:
            raise S3Error(
                "InvalidArgument",
                "A version-id marker cannot be specified without a key marker.",
                details={"ArgumentName": "version-id-marker"},
            )
    return ListParams(
        kind=kind,
        bucket=bucket,
        prefix=prefix,
        delimiter=delimiter,
        max_keys=int(raw_max),
        encode=encoding == "url",
        after=after,
        after_version=after_version,
        fetch_owner=kind == "v1" or query.get("fetch-owner", "").lower() == "true",
        query=query,
    )
