"""`check` and `explain` on a config with a `kind: redis` store: what it keeps is named, and a
size condition the store would refuse is a warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3router_proxy.commands.explain import check_main, explain_main

CONFIG = """
backends:
  scratch:
    kind: redis
    url: redis://127.0.0.1:6379/2
    password: ${REDIS_PASSWORD}
    ttl: 60
    max_object_size: 1MiB
  main:
    endpoint: http://127.0.0.1:9000
    access_key_id: a
    secret_access_key: b
clients:
  - {name: app, access_key_id: K, secret_access_key: S}
routing:
  rules:
    - {pattern: "tmp-*", target: scratch}
    - {pattern: "small", operations: [write], conditions: {max_size: RULE_SIZE}, target: scratch}
  default_target: main
"""


def write(tmp_path: Path, size: str) -> str:
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.replace("RULE_SIZE", size), encoding="utf-8")
    return str(path)


def test_check_names_the_store_and_warns_of_sizes_it_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", "never-printed-0123")
    assert check_main(["--config", write(tmp_path, "64KiB")]) == 0
    out = capsys.readouterr().out
    assert "backends.scratch: note: redis at redis://127.0.0.1:6379/2" in out
    assert "60 s after each write" in out and "no multipart uploads" in out
    assert check_main(["--config", write(tmp_path, "2MiB")]) == 1
    out = capsys.readouterr().out
    assert "routing.rules[1]: warning: max_size 2097152 is above backend scratch's" in out
    assert "never-printed" not in out


def test_explain_says_where_the_store_keeps_objects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", "never-printed-0123")
    assert explain_main(["--config", write(tmp_path, "1KiB"), "PUT", "s3://tmp-a/k"]) == 0
    out = capsys.readouterr().out
    assert "backend: scratch" in out
    assert "store: redis at redis://127.0.0.1:6379/2, objects kept 60 s" in out
    assert explain_main(["--config", write(tmp_path, "1KiB"), "GET", "s3://other/k"]) == 0
    assert "store:" not in capsys.readouterr().out
    assert "never-printed" not in out
