"""What one request did, filled in as it is served and written out as its access-log line."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    started: float = field(default_factory=time.monotonic)
    client: str = ""  # access key id of the authenticated client
    operation: str = ""
    bucket: str = ""
    key: str = ""
    backend: str = ""
    backend_bucket: str = ""
    backend_key: str = ""
    rule: str = ""
    status: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    backend_seconds: float | None = None
    error_code: str = ""
    payload: str = ""  # how the body was signed: a hex hash shows as "sha256"
    backend_request_id: str = ""  # the backend's id for its answer (clients see request_id)

    def fields(self, remote: str | None, method: str) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "remote": remote or "",
            "method": method,
            "client": self.client,
            "operation": self.operation,
            "bucket": self.bucket,
            "key": self.key,
            "backend": self.backend,
            "backend_bucket": self.backend_bucket,
            "backend_key": self.backend_key,
            "rule": self.rule,
            "status": self.status,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "duration_ms": round((time.monotonic() - self.started) * 1000, 3),
            "backend_ms": None
            if self.backend_seconds is None
            else round(self.backend_seconds * 1000, 3),
            "error_code": self.error_code,
            "payload": self.payload,
            "backend_request_id": self.backend_request_id,
        }
