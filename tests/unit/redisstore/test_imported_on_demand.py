"""redis-py is imported only by a proxy that has a `kind: redis` store: it costs the process
about 8 MiB of memory, which a proxy in front of S3 stores alone should not pay."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CONFIG = """\
backends:
  s3:
    endpoint: "http://127.0.0.1:9"
    access_key_id: "k"
    secret_access_key: "s"
  fast:
    kind: redis
    url: "redis://127.0.0.1:9/0"
clients:
  - name: "c"
    access_key_id: "ck"
    secret_access_key: "cs"
routing:
  default_target: "s3"
"""

CHECK = """
import sys
from s3router_proxy import cli  # the whole proxy, as `lakefs-s3-router` loads it
from s3router_proxy.backends.backend import Backend
from s3router_proxy.config.load import load_config

config = load_config(sys.argv[1], env={})
print("after loading:", "redis" in sys.modules)
Backend(config.backends["s3"])
print("after an S3 store:", "redis" in sys.modules)
Backend(config.backends["fast"])
print("after a Redis store:", "redis" in sys.modules)
"""


def test_redis_is_imported_only_for_a_redis_store(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    done = subprocess.run(
        [sys.executable, "-c", CHECK, str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "after loading: False",
        "after an S3 store: False",
        "after a Redis store: True",
    ]
