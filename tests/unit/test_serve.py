"""One serving process: the banner, and a real server that reloads on SIGHUP and drains and stops
on SIGTERM."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import signal
from pathlib import Path

import pytest

from s3router_proxy.config.load import load_config
from s3router_proxy.reload import Loader
from s3router_proxy.serve import announce, describe, serve
from s3router_proxy.telemetry import metrics

CONFIG = """\
router:
  listen_address: "127.0.0.1:0"
  admin_address: "off"
  shutdown_timeout: 5
backends:
  a: {endpoint: "https://a.example:9001", access_key_id: k, secret_access_key: s}
  b:
    endpoint: "http://127.0.0.1:9002"
    region: eu-west-1
    addressing_style: virtual
    access_key_id: k2
    secret_access_key: s2
routing:
  rules:
    - {pattern: "b-*", target: b}
  default_target: a
"""


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def test_the_banner_says_where_and_what(tmp_path: Path) -> None:
    config = load_config(config_file(tmp_path), env={})
    banner = describe(config, port=8123).splitlines()
    assert banner == [
        "lakefs-s3-router listening on http://127.0.0.1:8123",
        "  backend a: https://a.example:9001 (region us-east-1, path style)",
        "  backend b: http://127.0.0.1:9002 (region eu-west-1, virtual style)",
        "  1 routing rule(s), default target: a",
        "  2 client credential(s)",
    ]
    admin = dataclasses.replace(config, admin_host="127.0.0.1", tls_cert_file="c.pem")
    many = describe(admin, port=8123, workers=4).splitlines()
    assert many[0] == "lakefs-s3-router listening on https://127.0.0.1:8123 (4 worker processes)"
    assert many[1] == "  admin (health, ready, metrics) on http://127.0.0.1:9090"


def test_the_banner_says_how_unsigned_requests_go_out(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(CONFIG + "anonymous: {forward: unsigned}\n", encoding="utf-8")
    banner = describe(load_config(path, env={}))
    assert banner.endswith(
        "\n  unsigned requests: forwarded unsigned, for the stores' ACLs to decide"
    )
    path.write_text(CONFIG + "anonymous: {allow: [{buckets: [site]}]}\n", encoding="utf-8")
    assert "signed with store keys" in describe(load_config(path, env={}))


def test_with_json_logs_the_banner_is_a_log_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(config_file(tmp_path), env={})
    announce("banner", config)
    assert capsys.readouterr().out == "banner\n"
    with caplog.at_level(logging.INFO, logger="s3router_proxy"):
        announce("banner", dataclasses.replace(config, log_format="json"))
    assert capsys.readouterr().out == ""
    assert [r.getMessage() for r in caplog.records] == ["banner"]


async def test_serve_reloads_on_sighup_and_stops_on_sigterm(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    loader = Loader(str(path), None, {}, {})
    ports: list[int] = []
    reloads = metrics.CONFIG_RELOADS.labels("success")
    before = reloads.value
    threshold = gc.get_threshold()
    task = asyncio.create_task(serve(loader, loader.load(), on_listening=ports.append))
    try:
        while not ports:
            assert not task.done(), task
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", ports[0])
        writer.write(b"GET /b-bucket/k HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 10)
        assert status.startswith(b"HTTP/1.1 403"), status  # unsigned: S3's AccessDenied
        writer.close()
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(200):
            if reloads.value > before:
                break
            await asyncio.sleep(0.01)
        assert reloads.value == before + 1
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(task, 10)
    finally:
        task.cancel()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        gc.unfreeze()
        gc.set_threshold(*threshold)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", ports[0])
