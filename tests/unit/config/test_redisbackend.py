"""A `kind: redis` backend's section: its url, password, TLS, TTL and size, validated with the
file, the line and the fix."""

from __future__ import annotations

import pytest

from s3router_proxy.config.backends import parse_backends
from s3router_proxy.config.model import DEFAULT_OBJECT_SIZE, BackendConfig
from s3router_proxy.config.reader import ConfigError, Reader
from s3router_proxy.config.yamlfile import load_documents


def backend(section: str, env: dict[str, str] | None = None) -> BackendConfig:
    (doc,) = load_documents(f"backends:\n  scratch:\n    kind: redis\n{section}", env or {})
    return parse_backends(Reader("r.yaml"), doc, {})["scratch"]


def test_a_redis_backend_with_every_setting() -> None:
    config = backend(
        "    url: redis://cache.internal:6380/3\n"
        "    password: ${REDIS_PASSWORD}\n"
        "    ttl: 90\n"
        "    max_object_size: 1MiB\n"
        "    max_connections: 8\n",
        {"REDIS_PASSWORD": "s3cr3t-0123"},
    )
    assert config.kind == "redis"
    assert config.endpoint == "redis://cache.internal:6380/3"
    assert config.redis is not None
    assert config.redis.password == "s3cr3t-0123"
    assert (config.redis.ttl, config.redis.max_object_size) == (90.0, 1024 * 1024)
    assert config.max_connections == 8
    assert not config.redis.tls
    assert "s3cr3t" not in repr(config)


def test_defaults_keep_objects_until_deleted() -> None:
    config = backend("    url: redis://127.0.0.1\n")
    assert config.endpoint == "redis://127.0.0.1/0"
    assert config.redis is not None
    assert config.redis.ttl is None
    assert config.redis.max_object_size == DEFAULT_OBJECT_SIZE
    assert backend("    url: rediss://r.example:6379/0\n").redis.tls  # type: ignore[union-attr]
    assert backend("    url: redis://r.example/0\n    tls: true\n").redis.tls  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("", "r.yaml:3: backends.scratch.url: is missing"),
        ("    url: http://127.0.0.1:6379\n", "is not a redis:// or rediss:// URL"),
        ("    url: redis://:pw@127.0.0.1:6379\n", "must not carry credentials"),
        ("    url: redis://127.0.0.1:6379/cache\n", "with a numeric db"),
        ("    url: redis://127.0.0.1:99999\n", "has no valid port"),
        ("    url: redis://h\n    ttl: -1\n", "r.yaml:5: backends.scratch.ttl: must be a positive"),
        ("    url: redis://h\n    max_object_size: 1GiB\n", "must be between 1 and 512MiB"),
        ("    url: redis://h\n    endpoint: http://x\n", "backends.scratch.endpoint: unknown key"),
    ],
)
def test_mistakes_name_the_line_and_the_fix(section: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        backend(section)
    assert message in str(caught.value)


def test_an_unknown_kind_is_refused() -> None:
    (doc,) = load_documents("backends:\n  b:\n    kind: memcached\n", {})
    with pytest.raises(ConfigError, match=r"r\.yaml:3: backends\.b\.kind: 'memcached' is not"):
        parse_backends(Reader("r.yaml"), doc, {})


def test_an_embedded_store_runs_where_the_demo_started_it() -> None:
    embedded = backend('    url: "embedded"\n    ttl: 5\n')
    assert embedded.endpoint == "embedded"
    running = embedded.running_at("redis://127.0.0.1:7000/0")
    assert running.redis is not None
    assert (running.endpoint, running.redis.url, running.redis.ttl) == (
        "redis://127.0.0.1:7000/0",
        "redis://127.0.0.1:7000/0",
        5.0,
    )
    # Without redis-server an S3 store stands in: a backend of the s3 kind, with keys.
    stand_in = embedded.running_at("http://127.0.0.1:7001")
    assert (stand_in.kind, stand_in.redis, stand_in.endpoint) == (
        "s3",
        None,
        "http://127.0.0.1:7001",
    )
    assert stand_in.static_credentials
