"""Which requests are MinIO health checks (`router.s3_health_paths`), and the setting itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3router_proxy.config.load import load_config
from s3router_proxy.config.reader import ConfigError
from s3router_proxy.serving.s3health import requested_check

CONFIG = """\
router:
  s3_health_paths: {value}
backends:
  store: {{endpoint: "http://127.0.0.1:9000", access_key_id: "k", secret_access_key: "s"}}
routing:
  default_target: store
"""


@pytest.mark.parametrize(
    ("method", "raw_path", "host", "check"),
    [
        ("GET", "/minio/health/live", "10.0.0.7:8080", "live"),
        ("HEAD", "/minio/health/live", "", "live"),
        ("GET", "/minio/health/ready", "s3.local", "ready"),
        ("GET", "/minio/health/ready?probe=1", "s3.local", "ready"),
        # Anything else is an S3 request: other methods, paths near these, other spellings.
        ("PUT", "/minio/health/live", "s3.local", None),
        ("POST", "/minio/health/ready", "s3.local", None),
        ("GET", "/minio/health/live/", "s3.local", None),
        ("GET", "/minio/health/cluster", "s3.local", None),
        ("GET", "/minio//health/live", "s3.local", None),
        ("GET", "/minio/health/%6Cive", "s3.local", None),
        ("GET", "/MINIO/health/live", "s3.local", None),
        # Virtual-hosted: the key `minio/health/live` in bucket `photos`, not a health check.
        ("GET", "/minio/health/live", "photos.s3.local", None),
    ],
)
def test_requested_check(method: str, raw_path: str, host: str, check: str | None) -> None:
    assert requested_check(method, raw_path, host, ("s3.local",)) == check


def test_off_by_default_and_validated(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.format(value="true"))
    assert load_config(path, env={}).s3_health_paths is True
    path.write_text(CONFIG.format(value="true").replace("s3_health_paths: true", "sigv2: true"))
    assert load_config(path, env={}).s3_health_paths is False
    path.write_text(CONFIG.format(value='"yes"'))
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert f"{path}:2" in str(caught.value)
    assert "router.s3_health_paths" in str(caught.value) and "true or false" in str(caught.value)
