"""Hand-made S3 requests for the cases real SDKs never send: wrong hashes, skewed clocks, odd
framings. Requests are signed with botocore's own `S3SigV4Auth` (the reference signer), with the
clock set by the caller, and sent with urllib3 exactly as built.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from unittest import mock

import botocore.auth
import urllib3
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from lxml import etree

_POOL = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=120))


@dataclass
class RawResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def error_code(self) -> str | None:
        if not self.body.startswith(b"<?xml") and not self.body.startswith(b"<Error"):
            return None
        root = etree.fromstring(self.body)
        code = root.find("Code")
        return code.text if code is not None else None


def sign(
    method: str,
    url: str,
    key: str,
    secret: str,
    *,
    headers: Mapping[str, str] | None = None,
    payload_hash: str | None = None,
    body: bytes = b"",
    when: dt.datetime | None = None,
) -> dict[str, str]:
    """The headers botocore's S3 signer adds for this request, as of `when` (default: now)."""
    request = AWSRequest(method=method, url=url, headers=dict(headers or {}), data=body)
    signer = botocore.auth.S3SigV4Auth(Credentials(key, secret), "s3", "us-east-1")
    claimed = payload_hash or hashlib.sha256(body).hexdigest()
    signer.payload = lambda _request: claimed  # type: ignore[method-assign]
    moment = (when or dt.datetime.now(dt.UTC)).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=moment):
        signer.add_auth(request)
    return dict(request.headers.items())


def send(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    body: bytes | Iterable[bytes] | None = None,
    chunked: bool = False,
) -> RawResponse:
    response = _POOL.request(
        method,
        url,
        headers=dict(headers),
        body=body,
        chunked=chunked,
        preload_content=True,
        redirect=False,
    )
    return RawResponse(response.status, dict(response.headers), response.data)


def signed_request(
    method: str,
    url: str,
    key: str,
    secret: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    payload_hash: str | None = None,
    when: dt.datetime | None = None,
) -> RawResponse:
    all_headers = sign(
        method, url, key, secret, headers=headers, payload_hash=payload_hash, body=body, when=when
    )
    return send(method, url, headers=all_headers, body=body or None)


def aws_chunked(
    data: bytes,
    *,
    chunk_size: int,
    seed: str | None = None,
    signing_key: bytes | None = None,
    amz_date: str = "",
    scope: str = "",
    trailers: Mapping[str, str] | None = None,
) -> bytes:
    """Frame `data` as aws-chunked; with a seed and key, sign each chunk as SigV4 streaming does."""
    import hmac

    empty = hashlib.sha256(b"").hexdigest()
    previous = seed
    out = bytearray()
    pieces = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    for piece in pieces:
        line = f"{len(piece):x}"
        if signing_key is not None and previous is not None:
            to_sign = "\n".join(
                [
                    "AWS4-HMAC-SHA256-PAYLOAD",
                    amz_date,
                    scope,
                    previous,
                    empty,
                    hashlib.sha256(piece).hexdigest(),
                ]
            )
            previous = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
            line += f";chunk-signature={previous}"
        out += line.encode() + b"\r\n"
        if piece:
            out += piece + b"\r\n"
    for name, value in (trailers or {}).items():
        out += f"{name}:{value}\r\n".encode()
    out += b"\r\n"
    return bytes(out)
