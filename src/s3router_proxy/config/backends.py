"""The backends of a config: the `lakefs:` and `s3:` short forms and the `backends:` section,
each validated into a `BackendConfig` (endpoint, region, addressing, credentials, limits)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from .model import EMBEDDED, BackendConfig, ChunkedUploads
from .reader import Reader
from .redisbackend import parse_redis_backend
from .yamlfile import LineDict

_BACKEND_KEYS = {
    "kind",
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
    "chunked_uploads",
    "add_content_md5",
    "max_connections",
    "multipart_copy_threshold",
    "copy_part_size",
    "require_client_keys",
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
        chunked_uploads=_chunked_uploads(reader, section, where),
        add_content_md5=reader.flag(section, "add_content_md5", where, False),
        max_connections=reader.count(section, "max_connections", where, 256, "connections"),
        multipart_copy_threshold=_copy_size(
            reader, section, "multipart_copy_threshold", where, 256 * 1024**2, 1
        ),
        copy_part_size=_copy_size(
            reader, section, "copy_part_size", where, 64 * 1024**2, 5 * 1024**2
        ),
        require_client_keys=reader.flag(section, "require_client_keys", where, False),
    )


def _chunked_uploads(reader: Reader, section: LineDict, where: str) -> ChunkedUploads:
    """`chunked_uploads`: what a PutObject or UploadPart sent with Transfer-Encoding: chunked
    and no length meets. `refuse` (S3's own 411 MissingContentLength) whatever the store, unless
    the operator knows it takes chunked bodies: one that read such a body as empty would store
    an empty object, and the proxy cannot tell from an endpoint which kind it is."""
    value = reader.value(section, "chunked_uploads")
    if value is None:
        return "refuse"
    if value not in ("refuse", "forward"):
        raise reader.bad_value(section, "chunked_uploads", where, 'must be "refuse" or "forward"')
    return value  # type: ignore[return-value]


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


def parse_backends(
    reader: Reader, doc: LineDict, env: Mapping[str, str]
) -> dict[str, BackendConfig]:
    """The stores: `lakefs:` (with its environment variables), `s3:`, then `backends:`."""
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
        kind = reader.string(section, "kind", where, "s3")
        if kind not in ("s3", "redis"):
            raise reader.bad_value(section, "kind", where, f'{kind!r} is not "s3" or "redis"')
        if kind == "redis":
            backends[name] = parse_redis_backend(reader, name, section, where)
            continue
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
