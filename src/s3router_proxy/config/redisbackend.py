"""A `kind: redis` backend: a store the proxy keeps in Redis itself, for small transient objects.

backends:
  scratch:
    kind: redis
    url: redis://127.0.0.1:6379/0      # rediss:// (or tls: true) for TLS
    password: ${REDIS_PASSWORD}        # never in the url: the url is shown by `explain`
    ttl: 3600                          # seconds; omit to keep objects until deleted
    max_object_size: 16MiB             # larger PUTs are refused with EntityTooLarge
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .model import DEFAULT_OBJECT_SIZE, EMBEDDED, BackendConfig, RedisSettings
from .reader import Reader
from .yamlfile import LineDict

REDIS_KEYS = {
    "kind",
    "url",
    "password",
    "tls",
    "ttl",
    "max_object_size",
    "max_connections",
    "connect_timeout",
    "read_timeout",
}
# Redis refuses a value over 512 MiB; a scratch store is for far smaller ones.
LARGEST_OBJECT = 512 * 1024**2


def _url(reader: Reader, section: LineDict, where: str) -> str:
    url = reader.string(section, "url", where)
    if not url:
        raise reader.fail(
            f"{where}.url", 'is missing; e.g. url: "redis://127.0.0.1:6379/0"', section.line
        )
    if url == EMBEDDED:
        return url
    line = reader.line_of(section, "url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise reader.fail(f"{where}.url", f"{url!r} has no valid port", line) from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise reader.fail(
            f"{where}.url", f"{url!r} is not a redis:// or rediss:// URL with a host", line
        )
    if parts.username or parts.password:
        raise reader.fail(
            f"{where}.url",
            "must not carry credentials (the url is shown by explain and in logs); "
            "give `password: ${VARIABLE}` instead",
            line,
        )
    db = parts.path.strip("/") or "0"
    if not db.isdigit() or parts.query or parts.fragment:
        raise reader.fail(
            f"{where}.url", "must be redis://host[:port][/db] with a numeric db and no query", line
        )
    netloc = parts.hostname if port is None else f"{parts.hostname}:{port}"
    if ":" in (parts.hostname or ""):
        netloc = f"[{parts.hostname}]" + ("" if port is None else f":{port}")
    return f"{parts.scheme}://{netloc}/{int(db)}"


def parse_redis_backend(reader: Reader, name: str, section: LineDict, where: str) -> BackendConfig:
    """A `kind: redis` section, validated (file:line errors name the key and the fix)."""
    reader.only_keys(section, REDIS_KEYS, where)
    url = _url(reader, section, where)
    ttl = reader.number(section, "ttl", where, 3600.0) if "ttl" in section else None
    size = reader.size(section, "max_object_size", where, "16MiB")
    if size is not None and not 0 < size <= LARGEST_OBJECT:
        raise reader.bad_value(section, "max_object_size", where, "must be between 1 and 512MiB")
    settings = RedisSettings(
        url=url,
        password=reader.string(section, "password", where) or None,
        tls=reader.flag(section, "tls", where, False) or url.startswith("rediss://"),
        ttl=ttl,
        max_object_size=size or DEFAULT_OBJECT_SIZE,
    )
    return BackendConfig(
        name=name,
        endpoint=url,
        kind="redis",
        redis=settings,
        connect_timeout=reader.number(section, "connect_timeout", where, 5.0),
        read_timeout=reader.number(section, "read_timeout", where, 60.0),
        max_connections=reader.count(section, "max_connections", where, 64, "connections"),
        # aws-chunked uploads reach the store with the client's checksum trailer, to keep it.
        checksum_trailers=True,
    )
