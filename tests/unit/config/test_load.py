"""Config loading: the reference document as-is, the general form, bad documents, and `${VAR}`
values typed by the setting they fill."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3router_proxy.config.load import load_config
from s3router_proxy.config.reader import ConfigError

REPO = Path(__file__).resolve().parents[3]
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
    config = load_config(REFERENCE, env=env)  # the file as shipped, unchanged
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
        ("router:\n  {a: b}: 1\n", 2, "a key must be a plain name"),
        ("backends:\n  ? [x, y]\n  : {endpoint: 'http://h:1'}\n", 2, "a key must be a plain name"),
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


def test_region_variables_fill_only_backends_without_a_region(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "backends:\n  own: {endpoint: 'http://h:1', region: ap-south-1}\n"
        "  plain: {endpoint: 'http://h:2'}\nrouting: {default_target: own}\n",
    )
    config = load_config(path, env={"AWS_DEFAULT_REGION": "eu-north-1"})
    assert config.backends["own"].region == "ap-south-1"
    assert config.backends["plain"].region == "eu-north-1"
    both = {"AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "eu-north-1"}
    assert load_config(path, env=both).backends["plain"].region == "eu-west-3"


# ---------------------------------------------------------------------------------------------
# ${VAR} fills settings of every type, typed by the setting

TYPED = """\
router:
  max_concurrent_requests: ${MAXC:-100}
  keepalive_timeout: ${KEEPALIVE:-12.5}
  shutdown_timeout: "${SHUTDOWN:-7}"
  max_clock_skew_seconds: ${SKEW:-300}
  watch_config: ${WATCH:-true}
  sigv2: ${SIGV2:-off}
  admin_address: ${ADMIN:-false}
backends:
  a:
    endpoint: "${ENDPOINT:-http://h:1}"
    max_connections: ${MAXCONN:-8}
    connect_timeout: ${CONNECT:-2}
    checksum_trailers: ${TRAILERS:-yes}
    copy_part_size: ${PART:-8MiB}
    multipart_copy_threshold: ${THRESHOLD:-1048576}
    access_key_id: ${KEY:-0123}
    secret_access_key: ${SECRET:-true}
routing:
  rules:
    - pattern: "big-*"
      target: a
      max_body_size: ${CAP:-10MiB}
      conditions:
        max_size: ${MAX_SIZE:-1024}
  default_target: a
"""


def test_variables_fill_numbers_sizes_durations_and_flags(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, TYPED), env={})
    assert config.max_concurrent_requests == 100
    assert type(config.max_concurrent_requests) is int
    assert (config.keepalive_timeout, config.shutdown_timeout) == (12.5, 7.0)
    assert config.max_clock_skew == 300
    assert (config.watch_config, config.sigv2, config.admin_host) == (True, False, None)
    a = config.backends["a"]
    assert (a.max_connections, a.connect_timeout, a.checksum_trailers) == (8, 2.0, True)
    assert (a.copy_part_size, a.multipart_copy_threshold) == (8 * 1024**2, 1024**2)
    # Text settings keep the text: a key id of digits or a secret spelled like a flag.
    assert (a.access_key_id, a.secret_access_key) == ("0123", "true")
    assert type(a.access_key_id) is str
    rule = config.rules[0]
    assert rule.max_body_size == 10 * 1024**2
    assert rule.conditions is not None and rule.conditions.max_size == 1024


def test_variables_from_the_environment_win_over_defaults(tmp_path: Path) -> None:
    env = {
        "MAXC": "64",
        "KEEPALIVE": "30",
        "WATCH": "false",
        "ADMIN": "127.0.0.1:9191",
        "MAXCONN": "16",
        "PART": "16MiB",
        "KEY": "1e3",
        "CAP": "1GB",
    }
    config = load_config(write(tmp_path, TYPED), env=env)
    assert (config.max_concurrent_requests, config.keepalive_timeout) == (64, 30.0)
    assert not config.watch_config
    assert (config.admin_host, config.admin_port) == ("127.0.0.1", 9191)
    assert config.backends["a"].max_connections == 16
    assert config.backends["a"].copy_part_size == 16 * 1024**2
    assert config.backends["a"].access_key_id == "1e3"
    assert config.rules[0].max_body_size == 10**9


def test_an_empty_variable_means_the_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, TYPED), env={"MAXC": "", "WATCH": "", "PART": ""})
    assert config.max_concurrent_requests == 1024
    assert not config.watch_config
    assert config.backends["a"].copy_part_size == 64 * 1024**2


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MAXC", "1.5", "must be a positive whole number of requests"),
        ("MAXC", "0", "must be a positive whole number of requests"),
        ("MAXC", "lots", "must be a positive whole number of requests"),
        ("KEEPALIVE", "soon", "must be a positive number of seconds"),
        ("SKEW", "2.5", "must be a positive whole number of seconds"),
        ("WATCH", "maybe", "must be true or false"),
        ("ADMIN", "nowhere", "HOST:PORT"),
        ("MAXCONN", "-1", "must be a positive whole number of connections"),
        ("CONNECT", "0", "must be a positive number of seconds"),
        ("PART", "1.5", "must be a size in bytes"),
        ("PART", "1KiB", "must be between 5MiB and 5GiB"),
        ("CAP", "huge", "must be a size in bytes"),
        ("MAX_SIZE", "x", "must be a size in bytes"),
    ],
)
def test_a_variable_that_does_not_fit_names_line_unit_and_variable(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    path = write(tmp_path, TYPED)
    line = next(n for n, text in enumerate(TYPED.splitlines(), 1) if f"${{{variable}:" in text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={variable: value})
    text = str(caught.value)
    assert text.startswith(f"{path}:{line}: "), text
    assert message in text
    if variable != "ADMIN":
        assert f"(the value comes from ${{{variable}}})" in text
        assert repr(value) not in text  # the value itself could be a misplaced secret


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("router:\n  max_concurrent_requests:", "0", "positive whole number of requests"),
        ("router:\n  max_concurrent_requests:", "1.5", "positive whole number of requests"),
        ("router:\n  max_clock_skew_seconds:", "1.5", "positive whole number of seconds"),
        ("router:\n  keepalive_timeout:", "0", "positive number of seconds"),
        ("router:\n  shutdown_timeout:", ".inf", "positive number of seconds"),
        ("backends:\n  b:\n    endpoint: 'http://h:2'\n    max_connections:", "2.5", "connections"),
        ("backends:\n  b:\n    endpoint: 'http://h:2'\n    read_timeout:", "-1", "seconds"),
        ("backends:\n  b:\n    endpoint: 'http://h:2'\n    copy_part_size:", "-1", "negative"),
    ],
)
def test_each_setting_names_its_own_unit(
    tmp_path: Path, setting: str, value: str, message: str
) -> None:
    text = f"{setting} {value}\n" + (
        "" if "backends:" in setting else "backends:\n  b: {endpoint: 'http://h:2'}\n"
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    line = setting.count("\n") + 1
    assert str(caught.value).startswith(f"{path}:{line}: "), caught.value
    assert message in str(caught.value)
    if "seconds" not in message:
        assert "seconds" not in str(caught.value)


def test_whole_floats_are_whole_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "router:\n  max_concurrent_requests: 8.0\nbackends:\n  b: {endpoint: 'http://h:2'}\n",
    )
    assert load_config(path, env={}).max_concurrent_requests == 8


def test_literal_reads_text_as_an_unquoted_yaml_scalar() -> None:
    from s3router_proxy.config.yamlfile import literal

    assert literal("100") == 100 and type(literal("100")) is int
    assert literal(" 2.5 ") == 2.5
    assert literal("true") is True and literal("off") is False
    assert literal("") is None
    assert literal("10MiB") == "10MiB"
    assert literal("[1, 2]") == "[1, 2]"  # only scalars: no YAML structure from a variable


def test_the_documented_example_loads_and_fails_as_documented(tmp_path: Path) -> None:
    doc = (REPO / "docs" / "configuration.md").read_text()
    section = doc.split("## Environment variables", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "router.yaml"
    path.write_text(example)
    env = {
        "MINIO_ENDPOINT": "http://127.0.0.1:9000",
        "MINIO_ACCESS_KEY": "true",
        "MINIO_SECRET": "0123",
        "KEEPALIVE": "20",
    }
    config = load_config(path, env=env)
    assert (config.max_concurrent_requests, config.keepalive_timeout) == (1024, 20.0)
    assert config.admin_host is None and not config.watch_config
    minio = config.backends["minio"]
    assert (minio.access_key_id, minio.secret_access_key) == ("true", "0123")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={**env, "S3_ROUTER_MAX_REQUESTS": "1.5"})
    documented = " ".join(section.split("A value that does not fit", 1)[1].split("`")[1].split())
    assert str(caught.value) == documented.replace("router.yaml", str(path))
