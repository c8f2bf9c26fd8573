"""The `router:` section: listen addresses, and the front server's limits (defaults, tuning,
and refusals that name the file, the line and the key)."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3router_proxy.config.load import load_config
from s3router_proxy.config.reader import ConfigError, Reader
from s3router_proxy.config.router import parse_listen_address, parse_router
from s3router_proxy.config.yamlfile import load_documents


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(text, encoding="utf-8")
    return path


_FRONT_LIMITS = """\
router:
  {setting}
backends:
  b:
    endpoint: "http://127.0.0.1:9000"
    access_key_id: "k"
    secret_access_key: "s"
routing:
  default_target: b
"""


def test_front_server_limits_have_defaults_and_are_validated(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, _FRONT_LIMITS.format(setting="sigv2: true")), env={})
    assert (config.header_timeout, config.body_timeout) == (20.0, 20.0)
    assert (config.body_min_rate, config.max_request_head_bytes) == (1024, 65536)
    tuned = "header_timeout: 5\n  body_timeout: 7.5\n  body_min_rate: 4096\n"
    tuned += "  max_request_head_bytes: 32768"
    config = load_config(write(tmp_path, _FRONT_LIMITS.format(setting=tuned)), env={})
    assert (config.header_timeout, config.body_timeout) == (5.0, 7.5)
    assert (config.body_min_rate, config.max_request_head_bytes) == (4096, 32768)
    for bad in (
        "header_timeout: 0",
        "body_timeout: -1",
        "body_min_rate: 0.5",
        "max_request_head_bytes: 1000",
        "max_request_head_bytes: 64KiB",
    ):
        with pytest.raises(ConfigError) as caught:
            load_config(write(tmp_path, _FRONT_LIMITS.format(setting=bad)), env={})
        assert f"router.{bad.split(':')[0]}" in str(caught.value)
        assert "router.yaml:2" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        (":9000", ("0.0.0.0", 9000)),
        ("[::1]:443", ("::1", 443)),
    ],
)
def test_listen_addresses(text: str, address: tuple[str, int]) -> None:
    assert parse_listen_address(text) == address


@pytest.mark.parametrize("text", ["8080", "host:", "host:http", "host:65536"])
def test_a_listen_address_without_a_port_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen_address(text)


def test_router_settings_are_config_fields() -> None:
    (doc,) = load_documents(
        "router:\n  listen_address: ':81'\n  virtual_host_domains: S3.Local.\n"
        "  admin_address: 'off'\n  mirror_journal: journal.jsonl\n",
        {},
    )
    settings = parse_router(Reader("/etc/router/r.yaml"), doc, "/etc/router/r.yaml")
    assert (settings["listen_host"], settings["listen_port"]) == ("0.0.0.0", 81)
    assert settings["virtual_host_domains"] == ("s3.local",)
    assert settings["admin_host"] is None
    # Relative paths are the config file's neighbours, wherever the proxy was started.
    assert settings["mirror_journal"] == "/etc/router/journal.jsonl"
    assert "secret" not in settings  # derived from the credentials when not given


def test_an_unknown_router_key_names_the_nearest_one() -> None:
    (doc,) = load_documents("router:\n  listen_adress: ':81'\n", {})
    with pytest.raises(ConfigError, match=r"^r.yaml:2: router.listen_adress: .*'listen_address'"):
        parse_router(Reader("r.yaml"), doc, "r.yaml")
