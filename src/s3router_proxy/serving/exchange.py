"""One request on its way through the stages, and what each stage found out about it.

The stages (`stages.py`) fill it in order: parse sets `request`; authenticate sets `auth`,
`signing_key` and `policy`; authorize may set `keys_body`; route sets `route`, `backend`,
`pin` and `mirrors`; locate_copy_source sets `copy`; the body stage sets `plan`. What replaces
the client's headers or body is set by the stage or decorator that reads or rewrites it;
a mirrored CreateMultipartUpload sets `pin` to the upload it creates, once the mirrors' exist.
A field a stage has not set yet is unset (reading it raises), never a stand-in value that a
later stage could mistake for a real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..auth.policy import ClientPolicy
from ..auth.sigv4 import SigV4Auth
from ..backends.backend import Backend
from ..body.payload import PayloadPlan
from ..http.messages import Request
from ..multi.mirrorwrite import NO_MIRRORS, Mirrors
from ..routing.names import CopySource
from ..routing.rules import Route
from ..routing.uploadid import UploadPin
from ..s3.request import S3Request
from ..telemetry.accessrecord import RequestRecord
from .state import ProxyState


@dataclass(slots=True)
class Exchange:
    """The front server's request, the state it is served from, its access-log record, and
    everything the stages add."""

    http: Request
    state: ProxyState
    record: RequestRecord
    request: S3Request = field(init=False)
    auth: SigV4Auth = field(init=False)
    signing_key: bytes | None = None
    policy: ClientPolicy = field(init=False)
    # DeleteObjects: the body, read and verified before routing because its keys need grants.
    keys_body: tuple[PayloadPlan, bytes] | None = None
    route: Route = field(init=False)
    backend: Backend = field(init=False)
    pin: UploadPin | None = None
    mirrors: Mirrors = NO_MIRRORS
    # The copy's source as the client named it, and where it lives.
    copy: tuple[CopySource, Route] | None = None
    plan: PayloadPlan = field(init=False)
    header_overrides: dict[str, str] | None = None
    body_override: bytes | None = None

    @property
    def copy_source(self) -> tuple[str, str, str, str | None] | None:
        """(backend, bucket, key, version) of a copy's source, as mirrors repeat it."""
        if self.copy is None:
            return None
        source, source_route = self.copy
        return source_route.backend, source_route.bucket, source_route.key, source.version_id
