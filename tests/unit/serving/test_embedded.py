"""Where the demo's embedded stores listen, as a running proxy tells `migrate`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from s3router_proxy.serving.embedded import EmbeddedStores, running_stores, state_path


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir(mode=0o700)
    path = tmp_path / "demo.yaml"
    path.write_text("backends: {}\n")
    return path


def published(config: Path) -> EmbeddedStores:
    stores = EmbeddedStores()
    stores.endpoints = {"lakefs": "http://127.0.0.1:4001", "s3": "http://127.0.0.1:4002"}
    stores._publish(str(config))
    return stores


def test_a_running_proxy_publishes_its_stores_until_it_stops(config: Path) -> None:
    stores = published(config)
    path = state_path(config)
    assert path.stat().st_mode & 0o777 == 0o600
    assert running_stores(config) == stores.endpoints
    # The same file by another spelling of its path is the same proxy's.
    assert running_stores(Path(os.path.relpath(config))) == stores.endpoints
    assert running_stores(config.with_name("other.yaml")) == {}
    stores.stop()
    assert not path.exists()
    assert running_stores(config) == {}


def test_a_dead_proxys_file_is_ignored(config: Path) -> None:
    published(config)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    path = state_path(config)
    state = json.loads(path.read_text())
    path.write_text(json.dumps({**state, "pid": int(gone.stdout)}))
    assert running_stores(config) == {}


def test_a_directory_others_can_write_is_not_trusted(config: Path) -> None:
    published(config)
    state_path(config).parent.chmod(0o777)
    assert running_stores(config) == {}
