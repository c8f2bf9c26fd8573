"""MinIO's health paths on the S3 port, for load balancers that can probe no other port.

Opt-in (`router.s3_health_paths: true`): then `GET`/`HEAD /minio/health/live` answers 200 while
the process serves, and `/minio/health/ready` 200 when the admin listener's `/ready` would, else
503; both without a signature, before authentication. They say yes or no and nothing else: which
backend is down is the admin listener's to tell, not anyone's who can reach the S3 port. Off (the
default), they are ordinary S3 requests for bucket `minio`, signed like any other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from ..backends.backend import Backend
from ..http.messages import Response
from ..s3.request import virtual_host_bucket
from .readiness import SharedReadiness

LIVE = "/minio/health/live"
READY = "/minio/health/ready"

Check = Literal["live", "ready"]

# Anyone who reaches the S3 port may ask: one probe round per second at most, whatever the rate.
_readiness = SharedReadiness(ttl=1.0)


def requested_check(
    method: str, raw_path: str, host: str, base_domains: Iterable[str]
) -> Check | None:
    """Which health check a request asks for, or None for an S3 request."""
    if method not in ("GET", "HEAD"):
        return None
    path = raw_path.partition("?")[0]
    if path not in (LIVE, READY):
        return None
    if virtual_host_bucket(host, base_domains) is not None:
        return None  # a key `minio/health/...` in a virtual-hosted bucket
    return "live" if path == LIVE else "ready"


async def health_response(
    check: Check, backends: Mapping[str, Backend], *, draining: bool
) -> Response:
    if check == "live":
        status = 200
    else:
        status = 200 if (await _readiness(backends, draining=draining)).ready else 503
    # Never cached by anything between the balancer and here; an empty body, as MinIO sends.
    return Response(status=status, body=b"", headers={"Cache-Control": "no-store"})
