"""Config loading: the reference document as-is, the general form, and bad documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3router_proxy.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "config" / "s3-router-config.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_reference_document_loads_unchanged() -> None:
    config = load_config(REFERENCE, env={})
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 8080)
    assert set(config.backends) == {"lakefs", "s3"}
    lakefs = config.backends["lakefs"]
    assert lakefs.endpoint == "http://localhost:8000"
    assert lakefs.access_key_id == "AKIAIOSFODNN7EXAMPLE"
    s3 = config.backends["s3"]
    assert s3.endpoint == "https://s3.us-east-1.amazonaws.com"
    assert s3.addressing_style == "virtual"
    assert not s3.static_credentials
    assert [(r.pattern, r.target) for r in config.rules] == [
        ("lakefs-*", "lakefs"),
        ("versioned-*", "lakefs"),
        ("*", "s3"),
    ]
    assert config.default_target == "s3"
    # No clients section: the backends' key pairs are what clients may use.
    assert config.clients_from_backends
    assert [c.access_key_id for c in config.clients] == ["AKIAIOSFODNN7EXAMPLE"]


def test_environment_overrides_lakefs_and_region() -> None:
    env = {
        "LAKEFS_ENDPOINT": "http://lakefs.internal:8000",
        "LAKEFS_ACCESS_KEY_ID": "AKIAENV",
        "LAKEFS_SECRET_ACCESS_KEY": "secret-from-env",
        "AWS_REGION": "eu-west-1",
    }
    text = REFERENCE.read_text().replace(
        '  region: "us-east-1"        # default AWS credential chain\n', "  {}\n"
    )
    path = REFERENCE.parent / "does-not-exist"  # only used in messages
    from s3router_proxy.config import config_from_document
    from s3router_proxy.yamlload import load_documents

    config = config_from_document(load_documents(text, env)[0], source=str(path), env=env)
    lakefs = config.backends["lakefs"]
    assert lakefs.endpoint == "http://lakefs.internal:8000"
    assert (lakefs.access_key_id, lakefs.secret_access_key) == ("AKIAENV", "secret-from-env")
    assert config.backends["s3"].region == "eu-west-1"
    assert config.backends["s3"].endpoint == "https://s3.eu-west-1.amazonaws.com"


def test_general_form(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
backends:
  minio:
    endpoint: "http://127.0.0.1:9000/"
    region: "us-east-1"
    addressing_style: "path"
    access_key_id: "minio"
    secret_access_key: "${MINIO_SECRET}"
  aws:
    endpoint: "https://s3.eu-central-1.amazonaws.com"
    region: eu-central-1
    addressing_style: virtual
    profile: prod
    connect_timeout: 2
    read_timeout: 30
clients:
  - name: "pipeline"
    access_key_id: "AKIAPIPELINE"
    secret_access_key: "pipeline-secret"
routing:
  rules:
    - pattern: "raw-*"
      target: minio
      operations: [GET, head]
  default_target: aws
""",
    )
    config = load_config(path, env={"MINIO_SECRET": "from-env"})
    minio = config.backends["minio"]
    assert minio.endpoint == "http://127.0.0.1:9000"
    assert minio.secret_access_key == "from-env"
    aws = config.backends["aws"]
    assert (aws.profile, aws.connect_timeout, aws.read_timeout) == ("prod", 2.0, 30.0)
    assert [c.name for c in config.clients] == ["pipeline"]
    assert not config.clients_from_backends
    assert config.rules[0].methods == frozenset({"GET", "HEAD"})


def test_secret_never_in_repr(tmp_path: Path) -> None:
    config = load_config(REFERENCE, env={})
    assert "EXAMPLEKEY" not in repr(config)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (
            "routing:\n  rules:\n    - pattern: a\n      target: nowhere\n"
            "backends:\n  x: {endpoint: 'http://h:1'}\n",
            4,
            "unknown backend 'nowhere'",
        ),
        (
            "backends:\n  x: {endpoint: 'http://h:1', acces_key_id: k}\n",
            2,
            "did you mean 'access_key_id'",
        ),
        ("backends:\n  x:\n    endpoint: 'ftp://h'\n", 3, "is not an http(s) URL"),
        (
            "backends:\n  x:\n    endpoint: 'http://h:1'\n    access_key_id: only\n",
            3,
            "go together",
        ),
        (
            "router:\n  listen_address: 'nope'\nbackends:\n  x: {endpoint: 'http://h:1'}\n",
            2,
            "HOST:PORT",
        ),
        (
            "backends:\n  x: {endpoint: 'http://h:1'}\n  y: {endpoint: 'http://h:2'}\n",
            0,
            "default_target",
        ),
        ("routing:\n  default_target: 's3'\n", 0, "no backend is configured"),
        ("backends:\n  x: {endpoint: '${NOPE}'}\n", 2, "NOPE is not set"),
        ("backends:\n  x: {endpoint: 'http://h:1'\n", 3, "invalid YAML"),
        (
            "backends:\n  x: {endpoint: 'http://h:1'}\nrouting:\n  rules:\n    - pattern: a\n"
            "      target: x\n      operations: [FETCH]\n",
            7,
            "unknown HTTP method",
        ),
        (
            "backends:\n  x: {endpoint: 'http://h:1'}\nbackends:\n  y: {endpoint: 'http://h:1'}\n",
            3,
            "duplicate key",
        ),
        (
            "backends:\n  a: {endpoint: 'http://h:1', access_key_id: k, secret_access_key: s1}\n"
            "  b: {endpoint: 'http://h:2', access_key_id: k, secret_access_key: s2}\n"
            "routing: {default_target: a}\n",
            0,
            "add a `clients:` section",
        ),
        (
            "clients:\n  - {name: a, access_key_id: k, secret_access_key: s}\n"
            "  - {name: b, access_key_id: k, secret_access_key: t}\n"
            "backends:\n  x: {endpoint: 'http://h:1'}\n",
            0,
            "already used by client 'a'",
        ),
    ],
)
def test_bad_documents_name_line_and_fix(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    message = str(caught.value)
    assert fragment in message
    assert message.startswith(str(path))
    if line:
        assert message.startswith(f"{path}:{line}:"), message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


MULTI = """
routing:
  environment: production
  default_target: s3
backends:
  s3: {endpoint: "http://prod:9000"}
---
routing:
  environment: development
  default_target: s3
backends:
  s3: {endpoint: "http://dev:9000"}
"""


def test_environments_pick_one_document(tmp_path: Path) -> None:
    path = write(tmp_path, MULTI)
    prod = load_config(path, env={}, environment="production")
    assert prod.backends["s3"].endpoint == "http://prod:9000"
    dev = load_config(path, env={"ENVIRONMENT": "development"})
    assert dev.backends["s3"].endpoint == "http://dev:9000"
    with pytest.raises(ConfigError, match=r"choose one with --environment"):
        load_config(path, env={})
    with pytest.raises(ConfigError, match=r"no document for environment 'staging'.*development"):
        load_config(path, env={}, environment="staging")
