"""Which document of a multi-document config file is used: --environment, else
S3_ROUTER_ENVIRONMENT, else (carefully) ENVIRONMENT."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from s3router_proxy.config.environments import chosen_environment, select_environment
from s3router_proxy.config.load import load_config
from s3router_proxy.config.reader import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(text, encoding="utf-8")
    return path


MULTI = """
routing:
  environment: production
  default_target: s3
backends:
  s3: {endpoint: "http://prod:9000"}
---
routing:
  environment: development
  default_target: s3
backends:
  s3: {endpoint: "http://dev:9000"}
"""


def test_environments_pick_one_document(tmp_path: Path) -> None:
    path = write(tmp_path, MULTI)
    prod = load_config(path, env={}, environment="production")
    assert prod.backends["s3"].endpoint == "http://prod:9000"
    dev = load_config(path, env={"ENVIRONMENT": "development"})
    assert dev.backends["s3"].endpoint == "http://dev:9000"
    with pytest.raises(ConfigError, match=r"choose one with --environment"):
        load_config(path, env={})
    with pytest.raises(ConfigError, match=r"no document for environment 'staging'.*development"):
        load_config(path, env={}, environment="staging")


ONE_NAMED = """
routing:
  environment: production
  default_target: s3
backends:
  s3: {endpoint: "http://prod:9000"}
"""


def test_s3_router_environment_picks_the_document_and_beats_environment(tmp_path: Path) -> None:
    path = write(tmp_path, MULTI)
    env = {"S3_ROUTER_ENVIRONMENT": "development", "ENVIRONMENT": "production"}
    assert load_config(path, env=env).backends["s3"].endpoint == "http://dev:9000"
    # The command line beats both.
    explicit = load_config(path, env=env, environment="production")
    assert explicit.backends["s3"].endpoint == "http://prod:9000"


def test_environment_alone_still_picks_a_document_it_names(tmp_path: Path) -> None:
    path = write(tmp_path, MULTI)
    config = load_config(path, env={"ENVIRONMENT": "production"})
    assert config.backends["s3"].endpoint == "http://prod:9000"


def test_environment_alone_naming_no_document_of_several_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, MULTI)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={"ENVIRONMENT": "prod"})
    message = str(caught.value)
    assert "no document for environment 'prod' (from $ENVIRONMENT" in message
    assert "S3_ROUTER_ENVIRONMENT is not set" in message
    assert "['development', 'production']" in message


def test_environment_alone_naming_no_document_uses_the_only_one_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, ONE_NAMED)
    with caplog.at_level("WARNING", logger="s3router_proxy"):
        config = load_config(path, env={"ENVIRONMENT": "staging-platform"})
    assert config.backends["s3"].endpoint == "http://prod:9000"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "$ENVIRONMENT is 'staging-platform'" in warnings[0]
    assert "'production'" in warnings[0] and "S3_ROUTER_ENVIRONMENT" in warnings[0]


@pytest.mark.parametrize(
    ("env", "environment", "origin"),
    [
        ({"S3_ROUTER_ENVIRONMENT": "staging"}, None, "$S3_ROUTER_ENVIRONMENT"),
        ({}, "staging", "--environment"),
    ],
)
def test_an_explicit_name_no_document_has_is_an_error(
    tmp_path: Path, env: dict[str, str], environment: str | None, origin: str
) -> None:
    path = write(tmp_path, ONE_NAMED)
    with pytest.raises(
        ConfigError, match=re.escape(f"no document for environment 'staging' (from {origin})")
    ):
        load_config(path, env=env, environment=environment)


def test_an_unnamed_single_document_ignores_every_environment_name(tmp_path: Path) -> None:
    path = write(tmp_path, "backends:\n  b: {endpoint: 'http://h:2'}\n")
    for env in ({"ENVIRONMENT": "x"}, {"S3_ROUTER_ENVIRONMENT": "y"}):
        assert load_config(path, env=env).backends["b"].endpoint == "http://h:2"


def test_the_name_comes_from_the_flag_then_each_variable_in_turn() -> None:
    both = {"S3_ROUTER_ENVIRONMENT": "a", "ENVIRONMENT": "b"}
    assert chosen_environment("flag", both) == ("flag", "--environment")
    assert chosen_environment(None, both) == ("a", "$S3_ROUTER_ENVIRONMENT")
    assert chosen_environment(None, {"ENVIRONMENT": "b"}) == ("b", "$ENVIRONMENT")
    assert chosen_environment(None, {"S3_ROUTER_ENVIRONMENT": ""}) == (None, "")


def test_select_environment_picks_by_routing_environment() -> None:
    prod = {"routing": {"environment": "production"}}
    dev = {"routing": {"environment": "development"}}
    assert select_environment([prod, dev], "development", "f.yaml") is dev
    with pytest.raises(ConfigError, match=r"^f\.yaml: holds 2 documents"):
        select_environment([prod, dev], None, "f.yaml")
    unnamed = {"backends": {}}
    assert select_environment([unnamed], None, "f.yaml") is unnamed
    assert select_environment([unnamed], "anything", "f.yaml") is unnamed
