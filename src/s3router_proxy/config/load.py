"""A config file read, its document chosen and validated into a `Config`.

Every problem is reported as `FILE:LINE: key.path: what is wrong; how to fix it`, and a config
with any problem is never used: `load_config` either returns a whole `Config` or raises
`ConfigError`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .backends import parse_backends
from .clients import check_required_keys, clients_of_backends, parse_anonymous, parse_clients
from .environments import chosen_environment, select_environment
from .journal import s3_mirror_journal
from .model import BackendConfig, ClientConfig, Config
from .reader import ConfigError, Reader
from .router import parse_router
from .rules import ROUTING_TOP_KEYS, parse_routing
from .yamlfile import LineDict, YamlError, load_documents

_TOP_KEYS = {"router", "lakefs", "s3", "backends", "clients", "anonymous"} | ROUTING_TOP_KEYS


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
    settings = parse_router(reader, doc, source)
    backends = parse_backends(reader, doc, env)
    journal = s3_mirror_journal(reader, doc, backends)
    if journal is not None:
        settings["mirror_journal"] = journal  # a backend's bucket, not a path to resolve
    clients = parse_clients(reader, doc, backends)
    check_required_keys(reader, doc, backends, clients)
    rules, default_target = parse_routing(reader, doc, backends)
    anonymous, anonymous_unsigned = parse_anonymous(reader, doc)
    clients_from_backends = clients is None
    if clients is None:
        clients = clients_of_backends(reader, doc, backends)
    return Config(
        backends=backends,
        clients=clients,
        clients_from_backends=clients_from_backends,
        rules=rules,
        default_target=default_target,
        source=source,
        anonymous=anonymous,
        anonymous_unsigned=anonymous_unsigned,
        **{"secret": _derived_secret(backends, clients), **settings},
    )


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
