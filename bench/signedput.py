"""The large PUT with a signed payload: the request's SigV4 covers the body's SHA-256, so the
proxy must hash every byte before the backend may commit it (its last piece is held back until
the hash matches). Presigned URLs carry `UNSIGNED-PAYLOAD` and are the other case.

curl sends the file (`-T`); the headers are botocore's SigV4 for the proxy's address with the
file's SHA-256, computed once per run. nginx ignores them, so the same request goes to every
path. Signed afresh before each transfer: a run outlasts the 15 minutes of allowed clock skew.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from bench.procs import LOOPBACK

CHUNK = 4 * 1024 * 1024


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def signed_put_headers(
    port: int, path: str, payload_sha256: str, *, key: str, secret: str, region: str
) -> dict[str, str]:
    """The headers of a header-signed PUT of `path` whose body has `payload_sha256`."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    class KnownPayload(S3SigV4Auth):
        def payload(self, request: AWSRequest) -> str:
            return payload_sha256

    request = AWSRequest(method="PUT", url=f"http://{LOOPBACK}:{port}{path}")
    KnownPayload(Credentials(key, secret), "s3", region).add_auth(request)
    return dict(request.headers.items())
