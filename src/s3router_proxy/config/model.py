"""Configuration: a YAML document turned into validated, immutable data.

Two forms are accepted and may be mixed: the short one (`lakefs:` and `s3:` sections, which are
backends of those names) and the general one (`backends:` by name, `clients:`). Every problem is
reported as `FILE:LINE: key.path: what is wrong; how to fix it`, and a config with any problem is
never used: `load_config` either returns a whole `Config` or raises `ConfigError`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from ..auth.policy import NOBODY, UNRESTRICTED, ClientPolicy, Grant, validate_operations
from ..routing.rules import Rule
from .reader import ConfigError, Reader
from .rules import ROUTING_TOP_KEYS, parse_routing
from .yamlfile import LineDict, YamlError, load_documents

EMBEDDED = "embedded"
log = logging.getLogger("s3router_proxy")


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
    add_content_md5: bool = False  # compute Content-MD5 for small bodies that lack one
    max_connections: int = 256  # open connections to this backend; more requests queue
    # Copies into this backend from another one: larger objects are written as multipart
    # uploads of parts this size (see backends/transfer.py).
    multipart_copy_threshold: int = 256 * 1024**2
    copy_part_size: int = 64 * 1024**2

    @property
    def static_credentials(self) -> bool:
        return bool(self.access_key_id and self.secret_access_key)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """A key pair the proxy accepts from its own clients."""

    name: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    policy: ClientPolicy = UNRESTRICTED
    session_token: str | None = field(default=None, repr=False)  # temporary credentials


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
    max_request_head_bytes: int = 64 * 1024  # request line and headers together
    shutdown_timeout: float = 30.0
    watch_config: bool = False
    sigv2: bool = True  # accept AWS Signature Version 2 from legacy clients
    admin_token: str | None = field(default=None, repr=False)  # bearer token for /explain
    anonymous: ClientPolicy = NOBODY  # what unsigned requests may do
    secret: bytes = field(default=b"", repr=False)  # HMAC key for upload ids and list tokens
    mirror_journal: str | None = None  # where best-effort mirror failures are recorded
    s3_health_paths: bool = False  # /minio/health/{live,ready} unauthenticated on the S3 port


def parse_listen_address(value: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or `:port` → (host, port)."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise ValueError(f'{value!r} is not HOST:PORT (e.g. "127.0.0.1:8080")')
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)


_BACKEND_KEYS = {
    "endpoint",
    "region",
    "addressing_style",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "profile",
    "connect_timeout",
    "read_timeout",
    "checksum_trailers",
    "add_content_md5",
    "max_connections",
    "multipart_copy_threshold",
    "copy_part_size",
}


def _backend(
    reader: Reader,
    name: str,
    section: LineDict,
    where: str,
    *,
    default_endpoint: str | None,
    default_region: str,
    default_style: str,
) -> BackendConfig:
    reader.only_keys(section, _BACKEND_KEYS, where)
    endpoint = reader.string(section, "endpoint", where, default_endpoint)
    if not endpoint:
        raise reader.fail(
            f"{where}.endpoint", 'is missing; e.g. endpoint: "http://127.0.0.1:9000"', section.line
        )
    if endpoint != EMBEDDED:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise reader.fail(
                f"{where}.endpoint",
                f'{endpoint!r} is not an http(s) URL; e.g. "https://s3.us-east-1.amazonaws.com"',
                reader.line_of(section, "endpoint"),
            )
        if parts.path.strip("/") or parts.query:
            raise reader.fail(
                f"{where}.endpoint",
                "must be scheme://host[:port] with no path",
                reader.line_of(section, "endpoint"),
            )
        endpoint = f"{parts.scheme}://{parts.netloc}"
    style = reader.string(section, "addressing_style", where, default_style)
    if style not in ("path", "virtual"):
        raise reader.fail(
            f"{where}.addressing_style",
            f'{style!r} is not "path" or "virtual"',
            reader.line_of(section, "addressing_style"),
        )
    key_id = reader.string(section, "access_key_id", where)
    secret = reader.string(section, "secret_access_key", where)
    profile = reader.string(section, "profile", where)
    if bool(key_id) != bool(secret):
        raise reader.fail(
            where,
            "access_key_id and secret_access_key go together: give both, or neither to use "
            "the default AWS credential chain",
            section.line,
        )
    if key_id and profile:
        raise reader.fail(
            f"{where}.profile", "give either a profile or a key pair, not both", section.line
        )
    return BackendConfig(
        name=name,
        endpoint=endpoint,
        region=reader.string(section, "region", where, default_region) or default_region,
        addressing_style=style,  # type: ignore[arg-type]
        access_key_id=key_id or None,
        secret_access_key=secret or None,
        session_token=reader.string(section, "session_token", where) or None,
        profile=profile or None,
        connect_timeout=reader.number(section, "connect_timeout", where, 5.0),
        read_timeout=reader.number(section, "read_timeout", where, 60.0),
        checksum_trailers=reader.flag(section, "checksum_trailers", where, False),
        add_content_md5=reader.flag(section, "add_content_md5", where, False),
        max_connections=reader.count(section, "max_connections", where, 256, "connections"),
        multipart_copy_threshold=_copy_size(
            reader, section, "multipart_copy_threshold", where, 256 * 1024**2, 1
        ),
        copy_part_size=_copy_size(
            reader, section, "copy_part_size", where, 64 * 1024**2, 5 * 1024**2
        ),
    )


def _copy_size(
    reader: Reader, section: LineDict, key: str, where: str, default: int, smallest: int
) -> int:
    """A size for cross-backend copies: between `smallest` and 5 GiB (S3's largest PUT/part)."""
    size = reader.size(section, key, where, "64MiB")
    if size is None:
        return default
    if not smallest <= size <= 5 * 1024**3:
        low = "5MiB" if smallest == 5 * 1024**2 else f"{smallest} byte"
        raise reader.bad_value(section, key, where, f"must be between {low} and 5GiB")
    return size


def _lakefs_section(section: LineDict, env: Mapping[str, str]) -> LineDict:
    """The `lakefs:` section with the documented environment variables applied on top."""
    merged = LineDict(section)
    merged.line, merged.key_lines = section.line, dict(section.key_lines)
    for key, variable in (
        ("endpoint", "LAKEFS_ENDPOINT"),
        ("access_key_id", "LAKEFS_ACCESS_KEY_ID"),
        ("secret_access_key", "LAKEFS_SECRET_ACCESS_KEY"),
    ):
        if env.get(variable):
            merged[key] = env[variable]
    return merged


def _backends(reader: Reader, doc: LineDict, env: Mapping[str, str]) -> dict[str, BackendConfig]:
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    backends: dict[str, BackendConfig] = {}
    lakefs = reader.mapping(doc, "lakefs", "lakefs")
    if "lakefs" in doc or env.get("LAKEFS_ENDPOINT"):
        backends["lakefs"] = _backend(
            reader,
            "lakefs",
            _lakefs_section(lakefs, env),
            "lakefs",
            default_endpoint=None,
            default_region="us-east-1",
            default_style="path",
        )
    if "s3" in doc:
        s3 = reader.mapping(doc, "s3", "s3")
        s3_region = reader.string(s3, "region", "s3", region) or region
        backends["s3"] = _backend(
            reader,
            "s3",
            s3,
            "s3",
            default_endpoint=f"https://s3.{s3_region}.amazonaws.com",
            default_region=s3_region,
            default_style="virtual" if "endpoint" not in s3 else "path",
        )
    general = reader.mapping(doc, "backends", "backends")
    for name, section in general.items():
        where = f"backends.{name}"
        if not isinstance(name, str) or not name:
            raise reader.fail(where, "backend names must be strings", reader.line_of(general, name))
        if name in backends:
            raise reader.fail(
                where,
                f"backend {name!r} is already defined by the top-level {name}: section",
                reader.line_of(general, name),
            )
        if not isinstance(section, LineDict):
            raise reader.fail(where, "must be a mapping", reader.line_of(general, name))
        backends[name] = _backend(
            reader,
            name,
            section,
            where,
            default_endpoint=None,
            default_region=region,
            default_style="path",
        )
    if not backends:
        raise reader.fail(
            "backends",
            "no backend is configured; add a `backends:` section (or `lakefs:` / `s3:`)",
            doc.line,
        )
    return backends


def _clients(reader: Reader, doc: LineDict) -> tuple[ClientConfig, ...] | None:
    if "clients" not in doc:
        return None
    items = doc["clients"]
    if not isinstance(items, list):
        raise reader.fail(
            "clients",
            "must be a list of {name, access_key_id, secret_access_key}",
            reader.line_of(doc, "clients"),
        )
    clients = []
    seen: dict[str, str] = {}
    for index, item in enumerate(items):
        where = f"clients[{index}]"
        if not isinstance(item, LineDict):
            raise reader.fail(where, "must be a mapping", reader.line_of(doc, "clients"))
        reader.only_keys(
            item,
            {"name", "access_key_id", "secret_access_key", "session_token", "allow", "deny"},
            where,
        )
        key_id = reader.string(item, "access_key_id", where)
        secret = reader.string(item, "secret_access_key", where)
        if not key_id or not secret:
            raise reader.fail(where, "needs access_key_id and secret_access_key", item.line)
        if key_id in seen:
            raise reader.fail(
                f"{where}.access_key_id",
                f"access key id is already used by client {seen[key_id]!r}",
                reader.line_of(item, "access_key_id"),
            )
        name = reader.string(item, "name", where, key_id) or key_id
        seen[key_id] = name
        clients.append(
            ClientConfig(
                name=name,
                access_key_id=key_id,
                secret_access_key=secret,
                policy=_policy(reader, item, where),
                session_token=reader.string(item, "session_token", where) or None,
            )
        )
    return tuple(clients)


def _grants(reader: Reader, section: LineDict, key: str, where: str) -> tuple[Grant, ...]:
    items = section.get(key)
    if not isinstance(items, list):
        raise reader.fail(
            f"{where}.{key}",
            'must be a list of {buckets: ["glob"], keys: ["glob"], operations: [read, list]}',
            reader.line_of(section, key),
        )
    grants = []
    for index, item in enumerate(items):
        place = f"{where}.{key}[{index}]"
        if not isinstance(item, LineDict):
            raise reader.fail(place, "must be a mapping", reader.line_of(section, key))
        reader.only_keys(item, {"buckets", "keys", "operations"}, place)

        def strings(name: str, entry: LineDict = item, place: str = place) -> list[str] | None:
            value = entry.get(name)
            if value is None:
                return None
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise reader.fail(f"{place}.{name}", "must be a list of strings", entry.line)
            return value

        buckets = strings("buckets")
        if not buckets:
            raise reader.fail(place, 'needs `buckets:` (globs, e.g. ["analytics-*"])', item.line)
        operations = strings("operations")
        known = None
        if operations is not None:
            known, unknown = validate_operations(operations)
            if unknown:
                raise reader.fail(
                    f"{place}.operations",
                    f"unknown operation {unknown[0]!r}; use an S3 operation name or one of "
                    "read, write, list, delete, admin",
                    reader.line_of(item, "operations"),
                )
        keys = strings("keys")
        grants.append(Grant(tuple(buckets), tuple(keys) if keys else None, known))
    return tuple(grants)


def _policy(reader: Reader, section: LineDict, where: str) -> ClientPolicy:
    allow = _grants(reader, section, "allow", where) if "allow" in section else None
    deny = _grants(reader, section, "deny", where) if "deny" in section else ()
    return ClientPolicy(allow=allow, deny=deny)


def _anonymous(reader: Reader, doc: LineDict) -> ClientPolicy:
    """The `anonymous:` section: what unsigned requests may do (nothing by default)."""
    if "anonymous" not in doc:
        return NOBODY
    section = reader.mapping(doc, "anonymous", "anonymous")
    reader.only_keys(section, {"allow"}, "anonymous")
    if "allow" not in section:
        return NOBODY
    return ClientPolicy(allow=_grants(reader, section, "allow", "anonymous"))


_TOP_KEYS = {"router", "lakefs", "s3", "backends", "clients", "anonymous"} | ROUTING_TOP_KEYS
_ROUTER_KEYS = {
    "listen_address",
    "admin_address",
    "virtual_host_domains",
    "max_clock_skew_seconds",
    "tls",
    "log_format",
    "log_level",
    "max_concurrent_requests",
    "keepalive_timeout",
    "header_timeout",
    "body_timeout",
    "body_min_rate",
    "max_request_head_bytes",
    "shutdown_timeout",
    "watch_config",
    "secret",
    "sigv2",
    "admin_token",
    "mirror_journal",
    "s3_health_paths",
}
_LOG_LEVELS = ("debug", "info", "warning", "error")


def _router_extras(reader: Reader, router: LineDict, source: str) -> dict[str, Any]:
    """The operational `router:` settings: admin listener, TLS, logging, limits."""
    extras: dict[str, Any] = {}
    admin = reader.value(router, "admin_address") if "admin_address" in router else "127.0.0.1:9090"
    if admin in (None, "", False, "off", "disabled"):
        extras["admin_host"] = None
    else:
        try:
            extras["admin_host"], extras["admin_port"] = parse_listen_address(str(admin))
        except ValueError as exc:
            raise reader.fail(
                "router.admin_address",
                f'{exc}; or "off" for no admin listener',
                reader.line_of(router, "admin_address"),
            ) from None
    tls = reader.mapping(router, "tls", "router.tls")
    reader.only_keys(tls, {"cert_file", "key_file"}, "router.tls")
    if tls:
        cert = reader.string(tls, "cert_file", "router.tls")
        key = reader.string(tls, "key_file", "router.tls")
        if not cert or not key:
            raise reader.fail("router.tls", "needs both cert_file and key_file (PEM)", tls.line)
        base = Path(source).parent
        for name, value in (("cert_file", cert), ("key_file", key)):
            if not (base / value).is_file():
                raise reader.fail(
                    f"router.tls.{name}",
                    f"{value!r} is not a readable file",
                    reader.line_of(tls, name),
                )
        extras["tls_cert_file"] = str(base / cert)
        extras["tls_key_file"] = str(base / key)
    log_format = reader.string(router, "log_format", "router", "text")
    if log_format not in ("text", "json"):
        raise reader.fail(
            "router.log_format", 'must be "text" or "json"', reader.line_of(router, "log_format")
        )
    extras["log_format"] = log_format
    level = reader.string(router, "log_level", "router")
    if level is not None and level.lower() not in _LOG_LEVELS:
        raise reader.fail(
            "router.log_level",
            f"must be one of {list(_LOG_LEVELS)}",
            reader.line_of(router, "log_level"),
        )
    extras["log_level"] = level.lower() if level else None
    extras["max_concurrent_requests"] = reader.count(
        router, "max_concurrent_requests", "router", 1024, "requests"
    )
    extras["keepalive_timeout"] = reader.number(router, "keepalive_timeout", "router", 75.0)
    extras["header_timeout"] = reader.number(router, "header_timeout", "router", 20.0)
    extras["body_timeout"] = reader.number(router, "body_timeout", "router", 20.0)
    extras["body_min_rate"] = _byte_count(reader, router, "body_min_rate", 1024, 1, 1 << 30)
    extras["max_request_head_bytes"] = _byte_count(
        reader, router, "max_request_head_bytes", 64 * 1024, 16 * 1024, 1024 * 1024
    )
    extras["shutdown_timeout"] = reader.number(router, "shutdown_timeout", "router", 30.0)
    extras["watch_config"] = reader.flag(router, "watch_config", "router", False)
    extras["sigv2"] = reader.flag(router, "sigv2", "router", True)
    extras["admin_token"] = reader.string(router, "admin_token", "router") or None
    extras["s3_health_paths"] = reader.flag(router, "s3_health_paths", "router", False)
    journal = reader.string(router, "mirror_journal", "router")
    if journal:
        extras["mirror_journal"] = str(Path(source).parent / journal)
    secret = reader.string(router, "secret", "router")
    if secret is not None and len(secret) < 16:
        raise reader.fail(
            "router.secret",
            "must be at least 16 characters (it signs upload ids and listing tokens)",
            reader.line_of(router, "secret"),
        )
    if secret:
        extras["secret"] = secret.encode()
    return extras


def _byte_count(
    reader: Reader, router: LineDict, key: str, default: int, low: int, high: int
) -> int:
    value = router.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise reader.fail(
            f"router.{key}",
            f"must be a whole number of bytes from {low} to {high}",
            reader.line_of(router, key),
        )
    return value


def _derived_secret(
    backends: Mapping[str, BackendConfig], clients: tuple[ClientConfig, ...]
) -> bytes:
    """A stable HMAC key when none is configured: every replica with the same config agrees,
    and it is as hard to guess as the credentials it is derived from."""
    material = hashlib.sha256(b"s3router-proxy tokens v1")
    for backend in sorted(backends.values(), key=lambda b: b.name):
        material.update(f"{backend.name}\0{backend.secret_access_key or ''}\0".encode())
    for client in clients:
        material.update(f"{client.access_key_id}\0{client.secret_access_key}\0".encode())
    return material.digest()


def config_from_document(
    doc: Any, *, source: str = "<config>", env: Mapping[str, str] | None = None
) -> Config:
    """Validate one loaded YAML document into a `Config`."""
    env = os.environ if env is None else env
    reader = Reader(source)
    if not isinstance(doc, LineDict):
        raise reader.fail("(top level)", "the document must be a mapping of sections", 1)
    reader.only_keys(doc, _TOP_KEYS, "(top level)")
    router = reader.mapping(doc, "router", "router")
    reader.only_keys(router, _ROUTER_KEYS, "router")
    listen = reader.string(router, "listen_address", "router", "127.0.0.1:8080") or ""
    try:
        host, port = parse_listen_address(listen)
    except ValueError as exc:
        raise reader.fail(
            "router.listen_address", str(exc), reader.line_of(router, "listen_address")
        ) from None
    domains = router.get("virtual_host_domains") or []
    if isinstance(domains, str):
        domains = [domains]
    if not isinstance(domains, list) or not all(isinstance(d, str) and d for d in domains):
        raise reader.fail(
            "router.virtual_host_domains",
            'must be a list of domain names, e.g. ["s3.local"]',
            reader.line_of(router, "virtual_host_domains"),
        )
    skew = reader.count(router, "max_clock_skew_seconds", "router", 900, "seconds")
    extras = _router_extras(reader, router, source)
    backends = _backends(reader, doc, env)
    clients = _clients(reader, doc)
    rules, default_target = parse_routing(reader, doc, backends)
    anonymous = _anonymous(reader, doc)
    clients_from_backends = clients is None
    if clients is None:
        clients = tuple(
            ClientConfig(
                name=f"backend:{b.name}",
                access_key_id=b.access_key_id,  # type: ignore[arg-type]
                secret_access_key=b.secret_access_key,  # type: ignore[arg-type]
            )
            for b in backends.values()
            if b.static_credentials
        )
        by_key: dict[str, str] = {}
        for client in clients:
            if by_key.setdefault(client.access_key_id, client.secret_access_key) != (
                client.secret_access_key
            ):
                raise reader.fail(
                    "clients",
                    f"two backends share access key id {client.access_key_id!r} with different "
                    "secrets, so clients cannot be derived from them: add a `clients:` section",
                    doc.line,
                )
    return Config(
        listen_host=host,
        listen_port=port,
        backends=backends,
        clients=clients,
        clients_from_backends=clients_from_backends,
        rules=rules,
        default_target=default_target,
        virtual_host_domains=tuple(d.lower().strip(".") for d in domains),
        max_clock_skew=skew,
        source=source,
        anonymous=anonymous,
        **{"secret": _derived_secret(backends, clients), **extras},
    )


def _document_environment(doc: Any) -> str | None:
    routing = doc.get("routing") if isinstance(doc, Mapping) else None
    value = routing.get("environment") if isinstance(routing, Mapping) else None
    return str(value) if value is not None else None


# The variable that picks a document. ENVIRONMENT is read when it is not set, as older
# versions did; but platforms set ENVIRONMENT for their own reasons, so a name read from it that
# matches no document is not taken as a choice (see select_environment).
ENVIRONMENT_VARIABLE = "S3_ROUTER_ENVIRONMENT"
FALLBACK_ENVIRONMENT_VARIABLE = "ENVIRONMENT"


def chosen_environment(environment: str | None, env: Mapping[str, str]) -> tuple[str | None, str]:
    """(name, where it came from): `--environment`, else $S3_ROUTER_ENVIRONMENT, else
    $ENVIRONMENT, else (None, "")."""
    if environment:
        return environment, "--environment"
    for variable in (ENVIRONMENT_VARIABLE, FALLBACK_ENVIRONMENT_VARIABLE):
        if env.get(variable):
            return env[variable], f"${variable}"
    return None, ""


def select_environment(
    documents: list[Any], environment: str | None, source: str, origin: str = "--environment"
) -> Any:
    """The document for `environment` from a multi-document file (`routing.environment`).

    A name from the fallback $ENVIRONMENT that matches no document picks nothing: a file of one
    document is used with a warning, a file of several is an error asking for a real choice.
    """
    if len(documents) == 1 and environment is None:
        return documents[0]
    named = {_document_environment(doc): doc for doc in documents}
    available = sorted(name for name in named if name)
    if environment is None:
        raise ConfigError(
            f"{source}: holds {len(documents)} documents for environments {available}; choose one "
            f"with --environment NAME or {ENVIRONMENT_VARIABLE}=NAME"
        )
    if environment not in named:
        if len(documents) == 1 and _document_environment(documents[0]) is None:
            return documents[0]
        fallback = origin == f"${FALLBACK_ENVIRONMENT_VARIABLE}"
        if fallback and len(documents) == 1:
            log.warning(
                "%s: $%s is %r but the file's only document is for environment %r; using it "
                "(set %s to choose a document explicitly)",
                source,
                FALLBACK_ENVIRONMENT_VARIABLE,
                environment,
                available[0],
                ENVIRONMENT_VARIABLE,
            )
            return documents[0]
        reason = f" (from {origin}" + (
            f", as {ENVIRONMENT_VARIABLE} is not set)" if fallback else ")"
        )
        raise ConfigError(
            f"{source}: no document for environment {environment!r}{reason}; the file has "
            f"{available}: choose one with --environment NAME or {ENVIRONMENT_VARIABLE}=NAME"
        )
    return named[environment]


def load_config(
    path: str | Path, env: Mapping[str, str] | None = None, *, environment: str | None = None
) -> Config:
    """Read, interpolate and validate the config file at `path`.

    A file may hold several YAML documents, one per `routing.environment`; `environment` (else
    the S3_ROUTER_ENVIRONMENT variable, else ENVIRONMENT) picks one.
    """
    source = str(path)
    env = os.environ if env is None else env
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the config file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: the file is not UTF-8 (byte {exc.start})") from None
    try:
        documents = load_documents(text, env)
    except YamlError as exc:
        location = f"{source}:{exc.line}" if exc.line else source
        raise ConfigError(f"{location}: {exc}") from None
    if not documents:
        raise ConfigError(f"{source}: the file is empty; see config/s3-router-config.yaml")
    name, origin = chosen_environment(environment, env)
    chosen = select_environment(documents, name, source, origin)
    return config_from_document(chosen, source=source, env=env)
