"""The front server's limits in the `router:` section: defaults, tuning, and refusals that
name the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3router_proxy.config.model import ConfigError, load_config


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
