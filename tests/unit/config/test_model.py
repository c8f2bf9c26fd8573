"""The validated config's data classes: immutable, and secrets kept out of their repr."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from s3router_proxy.config.load import load_config
from s3router_proxy.config.model import BackendConfig, ClientConfig

REFERENCE = Path(__file__).resolve().parents[3] / "config" / "s3-router-config.yaml"


def test_secret_never_in_repr() -> None:
    config = load_config(REFERENCE, env={})
    assert "EXAMPLEKEY" not in repr(config)


def test_no_secret_field_shows_in_a_repr() -> None:
    backend = BackendConfig(
        "b", "http://h:1", access_key_id="AK", secret_access_key="SK1", session_token="TOK1"
    )
    client = ClientConfig("c", "AK2", "SK2", session_token="TOK2")
    shown = repr(backend) + repr(client)
    assert "AK" in shown and "AK2" in shown
    assert not any(secret in shown for secret in ("SK1", "TOK1", "SK2", "TOK2"))


def test_static_credentials_need_both_halves_of_the_pair() -> None:
    assert BackendConfig(
        "b", "http://h:1", access_key_id="AK", secret_access_key="SK"
    ).static_credentials
    assert not BackendConfig("b", "http://h:1", access_key_id="AK").static_credentials
    assert not BackendConfig("b", "http://h:1", profile="dev").static_credentials


def test_a_config_cannot_be_changed_in_place() -> None:
    config = load_config(REFERENCE, env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.listen_port = 1  # type: ignore[misc]
