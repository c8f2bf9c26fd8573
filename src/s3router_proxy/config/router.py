"""The `router:` section: where the proxy listens (S3 port, admin listener, TLS), how it logs,
and the limits and timeouts that protect it, each validated with its unit in the message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .reader import Reader
from .secrets import parse_secrets
from .yamlfile import LineDict

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
    "send_timeout",
    "max_request_head_bytes",
    "shutdown_timeout",
    "watch_config",
    "secret",
    "previous_secrets",
    "sigv2",
    "admin_token",
    "mirror_journal",
    "s3_health_paths",
}
LOG_LEVELS = ("debug", "info", "warning", "error")


def parse_listen_address(value: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or `:port` → (host, port)."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise ValueError(f'{value!r} is not HOST:PORT (e.g. "127.0.0.1:8080")')
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)


def parse_router(reader: Reader, doc: LineDict, source: str) -> dict[str, Any]:
    """The `router:` section as `Config` fields: listeners, TLS, logging, limits."""
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
    return {
        "listen_host": host,
        "listen_port": port,
        "virtual_host_domains": tuple(d.lower().strip(".") for d in domains),
        "max_clock_skew": skew,
        **_router_extras(reader, router, source),
    }


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
    if level is not None and level.lower() not in LOG_LEVELS:
        raise reader.fail(
            "router.log_level",
            f"must be one of {list(LOG_LEVELS)}",
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
    extras["send_timeout"] = reader.number(router, "send_timeout", "router", 60.0)
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
    extras.update(parse_secrets(reader, router))
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
