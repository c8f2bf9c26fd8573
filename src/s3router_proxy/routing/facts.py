"""What a routing rule can look at in a request: method, names, operation and, only when a
condition asks, its Content-Type, object size and the time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from ..s3.operationsets import SIZED_OPERATIONS

_UNSET: object = object()


class RequestFacts:
    """The parts of a request rules look at; headers are read only if a condition asks."""

    __slots__ = (
        "_content_type",
        "_now",
        "_size",
        "bucket",
        "headers",
        "key",
        "method",
        "operation",
    )

    def __init__(
        self,
        method: str,
        bucket: str,
        key: str,
        *,
        operation: str = "",
        headers: Mapping[str, str] | None = None,
        now: datetime | None = None,
    ) -> None:
        self.method = method.upper()
        self.bucket = bucket
        self.key = key
        self.operation = operation  # "" when the caller did not name it
        self.headers: Mapping[str, str] = headers if headers is not None else {}
        self._now = now
        self._content_type: object = _UNSET
        self._size: object = _UNSET

    @property
    def content_type(self) -> str | None:
        """The media type without parameters, lower-case; None without a Content-Type."""
        if self._content_type is _UNSET:
            value = self.headers.get("content-type")
            media = value.split(";", 1)[0].strip().lower() if value else ""
            self._content_type = media or None
        return self._content_type  # type: ignore[return-value]

    @property
    def size(self) -> int | None:
        """The object size in bytes, None when the request does not say."""
        if self._size is _UNSET:
            self._size = object_size(self.method, self.key, self.operation, self.headers)
        return self._size  # type: ignore[return-value]

    @property
    def now(self) -> datetime:
        if self._now is None:
            self._now = datetime.now(UTC)
        return self._now


def object_size(method: str, key: str, operation: str, headers: Mapping[str, str]) -> int | None:
    """The size of the object a request uploads, None when unknown (reads, copies, chunked)."""
    if operation:
        if operation not in SIZED_OPERATIONS:
            return None
    elif method.upper() not in ("PUT", "POST") or not key or "x-amz-copy-source" in headers:
        return None
    streaming = "aws-chunked" in headers.get("content-encoding", "").lower() or headers.get(
        "x-amz-content-sha256", ""
    ).upper().startswith("STREAMING-")
    # Only an aws-chunked body is held to its decoded length (the decoder refuses any other
    # size); next to a plain body the header is a claim nothing checks, so it is ignored.
    length = headers.get("x-amz-decoded-content-length" if streaming else "content-length")
    if length is None or not length.strip().isdigit():
        return None
    return int(length)
