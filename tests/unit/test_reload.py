"""Reloading: the file loaded the same way as at start, a bad file leaves the old config serving,
the listeners never move, and a watched file reloads when it changes."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

import pytest

from s3router_proxy import reload as reloading
from s3router_proxy.config.load import load_config
from s3router_proxy.config.reader import ConfigError
from s3router_proxy.reload import Loader, keep_listeners, reload, watch
from s3router_proxy.serving.handler import ProxyServer
from s3router_proxy.telemetry import metrics

CONFIG = """\
router:
  listen_address: "127.0.0.1:8080"
  admin_address: "off"
backends:
  a: {{endpoint: "http://127.0.0.1:9001", access_key_id: k, secret_access_key: s}}
  demo: {{endpoint: {demo}}}
routing:
  default_target: {target}
"""


def write(path: Path, *, target: str = "a", demo: str = "http://127.0.0.1:9002") -> Path:
    path.write_text(CONFIG.format(target=target, demo=demo), encoding="utf-8")
    return path


def test_the_loader_applies_the_command_line_and_the_running_demo_stores(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", demo="embedded")
    loader = Loader(str(path), None, {"listen_port": 9999}, {"demo": "http://127.0.0.1:4567"})
    config = loader.load()
    assert config.listen_port == 9999
    assert config.backends["demo"].endpoint == "http://127.0.0.1:4567"
    assert config.backends["a"].endpoint == "http://127.0.0.1:9001"


def test_a_reload_cannot_add_an_embedded_store(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", demo="embedded")
    with pytest.raises(ConfigError, match="cannot be added by a reload; restart"):
        Loader(str(path), None, {}, {}).load()


def test_listeners_and_tls_stay_as_they_were(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = load_config(write(tmp_path / "r.yaml"), env={})
    new = dataclasses.replace(old, listen_port=1, admin_host="0.0.0.0", default_target="demo")
    with caplog.at_level(logging.WARNING, logger="s3router_proxy"):
        kept = keep_listeners(new, old)
    assert (kept.listen_port, kept.admin_host) == (old.listen_port, old.admin_host)
    assert kept.default_target == "demo"  # everything else is the new file's
    assert "change only on restart" in caplog.text
    assert keep_listeners(old, old) is old


async def test_a_bad_file_keeps_the_old_config_serving(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml")
    loader = Loader(str(path), None, {}, {})
    server = ProxyServer(loader.load())
    success, rejected = (metrics.CONFIG_RELOADS.labels(r) for r in ("success", "rejected"))
    before = success.value, rejected.value
    try:
        write(path, target="demo")
        reload(server, loader)
        assert server.state.config.default_target == "demo"
        path.write_text("routing: [", encoding="utf-8")
        reload(server, loader)
        assert server.state.config.default_target == "demo"
        assert (success.value, rejected.value) == (before[0] + 1, before[1] + 1)
    finally:
        for backend in server.state.backends.values():
            await backend.close()


async def test_a_watched_file_reloads_when_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reloading, "WATCH_INTERVAL", 0.02)
    path = write(tmp_path / "r.yaml")
    reloads: list[str] = []
    watcher = asyncio.create_task(watch(str(path), lambda: reloads.append(path.read_text())))
    try:
        await asyncio.sleep(0.1)
        assert reloads == []  # an unchanged file is not reloaded
        write(path, target="demo")
        for _ in range(100):
            if reloads:
                break
            await asyncio.sleep(0.02)
        assert len(reloads) == 1 and "default_target: demo" in reloads[0]
        path.unlink()  # a file that is gone (mid-rename, say) is not a change
        await asyncio.sleep(0.1)
        assert len(reloads) == 1
    finally:
        watcher.cancel()
