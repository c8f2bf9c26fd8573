"""The validated configuration: immutable data, built by `load.load_config` (or
`load.config_from_document`) from a whole document that passed every check.

Two forms of the file are accepted and may be mixed: the short one (`lakefs:` and `s3:`
sections, which are backends of those names) and the general one (`backends:` by name,
`clients:`). Each section is read by a module of its own: `backends`, `clients`, `router`,
`rules`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from ..auth.policy import NOBODY, UNRESTRICTED, ClientPolicy
from ..auth.signer import Credentials
from ..routing.rules import Rule

EMBEDDED = "embedded"
ChunkedUploads = Literal["refuse", "forward"]
DEFAULT_OBJECT_SIZE = 16 * 1024**2  # a `kind: redis` store's max_object_size


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """Where a `kind: redis` store keeps its objects, and for how long."""

    url: str  # redis://host:port/db (rediss:// for TLS), never with a password in it
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ttl: float | None = None  # seconds each object lives after its write; None: until deleted
    max_object_size: int = DEFAULT_OBJECT_SIZE


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """One S3-compatible store the proxy forwards to."""

    name: str
    endpoint: str  # scheme://host[:port], or "embedded" for an in-process demo store
    region: str = "us-east-1"
    addressing_style: Literal["path", "virtual"] = "path"
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    profile: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    checksum_trailers: bool = False  # forward aws-chunked checksum trailers (unsigned) as sent
    # A PutObject or UploadPart with Transfer-Encoding: chunked and no length: refused (411), or
    # streamed on chunked.
    chunked_uploads: ChunkedUploads = "refuse"
    add_content_md5: bool = False  # compute Content-MD5 for small bodies that lack one
    max_connections: int = 256  # open connections to this backend; more requests queue
    # Copies into this backend from another one: larger objects are written as multipart
    # uploads of parts this size (see backends/transfer.py).
    multipart_copy_threshold: int = 256 * 1024**2
    copy_part_size: int = 64 * 1024**2
    kind: Literal["s3", "redis"] = "s3"
    redis: RedisSettings | None = None  # kind: redis
    # Requests for clients are signed with their own `backend_keys` only: one without is refused.
    require_client_keys: bool = False

    @property
    def static_credentials(self) -> bool:
        return bool(self.access_key_id and self.secret_access_key)

    def running_at(self, endpoint: str) -> BackendConfig:
        """This `embedded` demo backend where its store runs: a Redis store's redis:// url,
        or the http one of the S3 store that stands in for it without redis-server."""
        if self.redis is None:
            return replace(self, endpoint=endpoint)
        if endpoint.startswith("redis://"):
            return replace(self, endpoint=endpoint, redis=replace(self.redis, url=endpoint))
        return BackendConfig(self.name, endpoint, access_key_id="demo", secret_access_key="demo")


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """A key pair the proxy accepts from its own clients."""

    name: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    policy: ClientPolicy = UNRESTRICTED
    session_token: str | None = field(default=None, repr=False)  # temporary credentials
    # Its own account on some stores, by backend name: what it asks of them is signed with these
    # (a store it has none for is asked with that store's own keys).
    backend_keys: Mapping[str, Credentials] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class PreviousSecret:
    """A sealing key that `router.secret` replaced: what it sealed is still opened, until
    `until` (epoch seconds; None: for as long as it is listed)."""

    secret: bytes = field(repr=False)
    until: float | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the proxy needs to serve, validated."""

    listen_host: str
    listen_port: int
    backends: Mapping[str, BackendConfig]
    clients: tuple[ClientConfig, ...]
    clients_from_backends: bool  # no `clients:` section: backend key pairs are accepted
    rules: tuple[Rule, ...]
    default_target: str | None
    virtual_host_domains: tuple[str, ...] = ()
    max_clock_skew: int = 900
    source: str = "<config>"
    admin_host: str | None = "127.0.0.1"  # None: no admin listener
    admin_port: int = 9090
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    log_format: str = "text"
    log_level: str | None = None  # None: the command line decides
    max_concurrent_requests: int = 1024
    keepalive_timeout: float = 75.0
    header_timeout: float = 20.0  # a request head must arrive whole within this
    body_timeout: float = 20.0  # a request body may stall this long, then must keep up...
    body_min_rate: int = 1024  # ...this many bytes per second
    send_timeout: float = 60.0  # an answer the client does not read for this long is cut
    max_request_head_bytes: int = 64 * 1024  # request line and headers together
    shutdown_timeout: float = 30.0
    watch_config: bool = False
    sigv2: bool = True  # accept AWS Signature Version 2 from legacy clients
    admin_token: str | None = field(default=None, repr=False)  # bearer token for /explain
    anonymous: ClientPolicy = NOBODY  # what unsigned requests may do
    anonymous_unsigned: bool = False  # ...forwarded unsigned: the backend's ACLs decide
    secret: bytes = field(default=b"", repr=False)  # HMAC key for upload ids and list tokens
    previous_secrets: tuple[PreviousSecret, ...] = ()  # still accepted, never used to seal
    mirror_journal: str | None = None  # where best-effort mirror failures are recorded
    s3_health_paths: bool = False  # /minio/health/{live,ready} unauthenticated on the S3 port

    @property
    def stores_without_acls(self) -> frozenset[str]:
        """Backends that cannot decide an unsigned request themselves: the Redis stores."""
        return frozenset(name for name, b in self.backends.items() if b.redis is not None)

    def sealing_keys(self, now: float | None = None) -> tuple[bytes, ...]:
        """The keys that open upload ids and listing tokens: `secret` (the one that seals)
        first, then each previous secret whose grace period has not ended."""
        moment = time.time() if now is None else now
        still = [p.secret for p in self.previous_secrets if p.until is None or moment < p.until]
        return (self.secret, *still)
