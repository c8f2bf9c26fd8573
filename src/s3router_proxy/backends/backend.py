"""Backends at run time: where a backend lives, how it is addressed, whose keys sign for it.

A `Backend` owns its connection pool (an `UpstreamPool` per Host, with the backend's timeouts
and connection limit), which every request to it takes: forwarded ones and those the proxy makes
itself (listings it merges, deletes, copies, mirror writes, probes); and a credential source.
Static keys are used as they are; otherwise botocore's default chain (environment, profile,
assume-role, web identity, container and instance metadata) is resolved and refreshed in a
background thread, so a slow metadata call never blocks the event loop and an immutable
snapshot is what each request signs with.

A request the proxy sends for a client (the forwarded one, and each it makes itself while
serving it: listings it merges, deletes, copies, mirror writes and their undoing) is signed
with that client's own `backend_keys` for the store when it has some, so the store sees the
client's account. `acting_for` holds them for the request: asyncio tasks started while serving
it inherit them, and the handler resets them when it is answered. Outside a client's request
(readiness, health paths, the journal, `repair`, `migrate`) the store's own keys sign.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from yarl import URL

from ..auth.canonical import uri_encode
from ..auth.requesttime import amz_date
from ..auth.signer import Credentials, OutgoingRequest, sign_request
from ..config.model import BackendConfig
from ..http.pool import UpstreamPool
from ..s3.errors import S3Error

if TYPE_CHECKING:
    from ..redisstore.store import RedisStore

log = logging.getLogger("s3router_proxy.backends")

CREDENTIAL_REFRESH_SECONDS = 60.0
# Bucket names that can be a host name label (botocore's test for virtual-hosted addressing).
# Anything else (dots, upper case, `:`, `@`, `?`, `#`, …) goes path style: a client's bucket
# name must never decide which host the proxy connects to.
_DNS_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
# The backend keys of the client whose request is being served, by backend name; None: no
# client's (the proxy's own requests).
_CLIENT_KEYS: contextvars.ContextVar[Mapping[str, Credentials] | None] = contextvars.ContextVar(
    "client_backend_keys", default=None
)


def acting_for(keys: Mapping[str, Credentials] | None) -> contextvars.Token:
    """Sign what follows in this task (and the tasks it starts) for a client with these
    backend keys (None: for the proxy itself); `stop_acting(token)` undoes it."""
    return _CLIENT_KEYS.set(keys)


def stop_acting(token: contextvars.Token) -> None:
    _CLIENT_KEYS.reset(token)


@contextlib.contextmanager
def as_proxy() -> Iterator[None]:
    """Sign with the stores' own keys inside, even while serving a client: what the proxy
    writes for itself (the divergence journal) is the proxy's, not the client's."""
    token = _CLIENT_KEYS.set(None)
    try:
        yield
    finally:
        _CLIENT_KEYS.reset(token)


@dataclass(frozen=True, slots=True)
class BackendRequest:
    """A request as a backend gets it, before it is signed: the backend's bucket and key,
    `query` canonical (as `canonical.canonical_query_string` makes it, sent exactly as signed),
    `headers` to sign (lower-case names) and the payload hash they are signed with."""

    method: str
    bucket: str
    key: str
    query: str
    headers: Mapping[str, str]
    payload_hash: str


class CredentialSource:
    """The current credentials of one backend, refreshed off the event loop."""

    def __init__(self, config: BackendConfig) -> None:
        self.name = config.name
        self._refreshable = None
        self.current: Credentials | None = None
        if config.kind == "redis":
            # Nothing is signed for a store the proxy keeps itself; it is there to be asked.
            self.current = Credentials("", "", None)
            return
        if config.static_credentials:
            self.current = Credentials(
                config.access_key_id,  # type: ignore[arg-type]
                config.secret_access_key,  # type: ignore[arg-type]
                config.session_token,
            )
            return
        import botocore.session

        session = botocore.session.Session(profile=config.profile)
        self._refreshable = session.get_credentials()
        if self._refreshable is None:
            log.warning(
                "backend %s: no credentials found in the default AWS chain; requests routed "
                "to it will be refused until credentials appear",
                config.name,
            )
        else:
            self._publish(self._refreshable.get_frozen_credentials())

    def _publish(self, frozen: object) -> None:
        self.current = Credentials(
            frozen.access_key,  # type: ignore[attr-defined]
            frozen.secret_key,  # type: ignore[attr-defined]
            frozen.token,  # type: ignore[attr-defined]
        )

    @property
    def refreshable(self) -> bool:
        return self._refreshable is not None

    async def refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(CREDENTIAL_REFRESH_SECONDS)
            try:
                frozen = await asyncio.to_thread(self._refreshable.get_frozen_credentials)  # type: ignore[union-attr]
            except Exception as exc:  # keep the last good credentials
                log.warning(
                    "backend %s: credential refresh failed: %s", self.name, type(exc).__name__
                )
                continue
            self._publish(frozen)


def key_path(key: str) -> str:
    """A key as a URI path: UriEncoded once, `/` kept, and `.` and `..` segments escaped.

    `a/../b` is a key of its own in S3, but a hop that normalises paths (a load balancer, an
    HTTP library, a store) would make it `b`, or climb out of the bucket: another key than the
    one a policy allowed. `%2E%2E` survives every hop, decodes to the same key, and is the
    canonical URI the request is signed with: botocore's S3 signer and moto take the path as
    sent. A store that re-encodes the decoded path instead (MinIO, Ceph RGW, lakeFS) computes
    `..` and refuses the signature: it fails closed (MinIO refuses such keys anyway).
    """
    encoded = uri_encode(key, keep_slash=True)
    if "." not in encoded:
        return encoded
    return "/".join(
        "%2E" * len(segment) if segment in (".", "..") else segment
        for segment in encoded.split("/")
    )


class Backend:
    """One configured store: its address, its credentials and its connection pool."""

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.name = config.name
        parts = urlsplit(config.endpoint)
        self.scheme = parts.scheme
        self.netloc = parts.netloc
        self.credentials = CredentialSource(config)
        self.refresher: asyncio.Task[None] | None = None
        self._pools: dict[str, UpstreamPool] = {}
        # A `kind: redis` backend answers S3 itself (`backends/call.backend_response`). The
        # Redis client is imported only then: it costs a proxy without one 8 MiB of memory.
        self.store: RedisStore | None = None
        if config.kind == "redis":
            from ..redisstore.store import RedisStore

            self.store = RedisStore(config)

    @property
    def pool(self) -> UpstreamPool:
        """Keep-alive connections for forwarded requests to the endpoint (see `http/client.py`)."""
        return self.pool_for(self.netloc)

    def pool_for(self, host: str) -> UpstreamPool:
        """The pool for one Host: the endpoint's, or a bucket's own name in virtual-hosted
        addressing (connected and, over TLS, verified as that name, as any S3 client does)."""
        pool = self._pools.get(host)
        if pool is None:
            url = URL(f"{self.scheme}://{host}")
            pool = self._pools[host] = UpstreamPool(
                url.host or "",
                url.port or (443 if self.scheme == "https" else 80),
                tls=self.scheme == "https",
                limit=self.config.max_connections,
                connect_timeout=self.config.connect_timeout,
                read_timeout=self.config.read_timeout,
            )
        return pool

    def address(self, bucket: str, key: str) -> tuple[str, str]:
        """(Host header, canonical URI) for a bucket and key on this backend."""
        encoded_key = key_path(key)
        if self.config.addressing_style == "virtual" and _DNS_BUCKET.fullmatch(bucket):
            return f"{bucket}.{self.netloc}", "/" + encoded_key
        if not bucket:
            return self.netloc, "/"
        path = "/" + uri_encode(bucket, keep_slash=False)
        if key:
            path += "/" + encoded_key
        return self.netloc, path

    def signing_credentials(self) -> Credentials | None:
        """Whose keys sign a request to this backend now: the client's own for it, when a
        client's request is being served and it has some; else the backend's (None when it
        has none, or takes only clients' own keys)."""
        keys = _CLIENT_KEYS.get()
        if keys is None:
            return self.credentials.current
        own = keys.get(self.name)
        if own is not None:
            return own
        return None if self.config.require_client_keys else self.credentials.current

    def signed_target(self, request: BackendRequest) -> tuple[str, str, dict[str, str]]:
        """(Host, request target: path and query, signed headers) of `request` to this backend,
        signed with the credentials `signing_credentials` names."""
        credentials = self.signing_credentials()
        if credentials is None:
            if self.config.require_client_keys and _CLIENT_KEYS.get() is not None:
                raise S3Error(
                    "AccessDenied",
                    f"Backend {self.name!r} takes only clients' own keys, and this client "
                    "has none for it.",
                )
            raise S3Error(
                "AccessDenied", f"The proxy has no credentials for backend {self.name!r}."
            )
        host, canonical_uri = self.address(request.bucket, request.key)
        signed = {**request.headers, "host": host}
        signed.update(
            sign_request(
                OutgoingRequest(
                    request.method, canonical_uri, request.query, signed, request.payload_hash
                ),
                credentials,
                region=self.config.region,
                amz_date=amz_date(time.time()),
            )
        )
        query = request.query
        return host, (f"{canonical_uri}?{query}" if query else canonical_uri), signed

    def unsigned_target(self, request: BackendRequest) -> tuple[str, str, dict[str, str]]:
        """(Host, request target, headers) of `request` to this backend as it is: no
        Authorization, x-amz-date, payload hash or session token (an unsigned request,
        forwarded for the backend's own ACLs to decide)."""
        host, canonical_uri = self.address(request.bucket, request.key)
        query = request.query
        target = f"{canonical_uri}?{query}" if query else canonical_uri
        return host, target, {**request.headers, "host": host}

    async def close(self) -> None:
        if self.refresher is not None:
            self.refresher.cancel()
            self.refresher = None
        for pool in self._pools.values():
            await pool.close()
        self._pools.clear()
        if self.store is not None:
            await self.store.close()
