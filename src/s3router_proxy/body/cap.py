"""A rule's `max_body_size`, enforced from what the client promised before any byte is read
(and so before `Expect: 100-continue` is answered): the stream itself never carries more than
its promised length, which the front server and the payload checks hold it to. A body that
promised no length (Transfer-Encoding: chunked) is held to the cap as it streams instead, and
aborted before the backend got its end.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..s3.errors import S3Error
from .payload import PayloadPlan


def check_body_cap(plan: PayloadPlan, headers: Mapping[str, str], cap: int) -> None:
    """Refuse a body larger than `cap` bytes (after aws-chunked decoding); cap one whose size
    is unknown until it ends (Transfer-Encoding: chunked) while it streams."""
    size = plan.decoded_length if plan.chunked else plan.upstream_length
    if size is None:
        if "chunked" in headers.get("Transfer-Encoding", "").lower():
            plan.size_limit = cap
        return
    if size > cap:
        raise S3Error(
            "EntityTooLarge",
            f"Your proposed upload exceeds the maximum allowed size for this bucket ({cap} bytes).",
            details={"ProposedSize": str(size), "MaxSizeAllowed": str(cap)},
        )
