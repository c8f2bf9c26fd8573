"""What the subcommands share: `--config` from the command line or $S3_ROUTER_CONFIG, the
config it names (or the one-line reason it cannot be used), and argparse types."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from s3router_proxy.commands.base import (
    argument_type,
    command_config,
    command_parser,
    config_option,
    parse_command_args,
)


def test_config_defaults_to_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_ROUTER_CONFIG", "/etc/router.yaml")
    parser = argparse.ArgumentParser()
    config_option(parser, "the file")
    assert parser.parse_args([]).config == "/etc/router.yaml"
    assert parser.parse_args(["--config", "x.yaml"]).config == "x.yaml"
    assert "the file (default: $S3_ROUTER_CONFIG)" in parser.format_help()


def test_a_command_without_a_config_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("S3_ROUTER_CONFIG", raising=False)
    parser = command_parser("check", "Check.", "example:\n  lakefs-s3-router check")
    with pytest.raises(SystemExit) as exited:
        parse_command_args(parser, [])
    assert exited.value.code == 2
    assert "no config: pass --config FILE" in capsys.readouterr().err


def test_command_config_loads_or_says_why_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("backends:\n  a: {endpoint: 'http://h:1'}\n", encoding="utf-8")
    args = argparse.Namespace(config=str(good), environment=None)
    config = command_config(args)
    assert config is not None and set(config.backends) == {"a"}
    bad = argparse.Namespace(config=str(tmp_path / "absent.yaml"), environment=None)
    assert command_config(bad, "lakefs-s3-router repair") is None
    err = capsys.readouterr().err
    assert err.startswith(f"lakefs-s3-router repair: {tmp_path / 'absent.yaml'}: cannot read")
    assert err.count("\n") == 1


def test_an_argument_types_value_error_is_the_usage_message() -> None:
    def even(text: str) -> int:
        if int(text) % 2:
            raise ValueError(f"{text} is odd")
        return int(text)

    parse = argument_type(even)
    assert parse("4") == 4 and parse.__name__ == "even"
    with pytest.raises(argparse.ArgumentTypeError, match="3 is odd"):
        parse("3")
