"""`router.secret` and `router.previous_secrets`: a rotation keeps what the old secret sealed
working for a grace period, and a bad entry is refused with the file, line and key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from s3router_proxy.config.load import load_config
from s3router_proxy.config.model import Config
from s3router_proxy.config.reader import ConfigError

_CONFIG = """\
router:
{router}
backends:
  b:
    endpoint: "http://127.0.0.1:9000"
    access_key_id: "k"
    secret_access_key: "s"
routing:
  default_target: b
"""
NEW, OLD, OLDER = "the-new-secret-0001", "the-old-secret-0002", "the-older-secret-03"


def load(tmp_path: Path, router: str) -> Config:
    path = tmp_path / "router.yaml"
    path.write_text(_CONFIG.format(router=router), encoding="utf-8")
    return load_config(path, env={})


def test_the_current_secret_comes_first_then_those_still_in_their_grace_period(
    tmp_path: Path,
) -> None:
    until = dt.datetime(2027, 1, 31, tzinfo=dt.UTC)
    config = load(
        tmp_path,
        f'  secret: "{NEW}"\n  previous_secrets:\n'
        f'    - "{OLD}"\n    - {{secret: "{OLDER}", until: "2027-01-31T00:00:00Z"}}',
    )
    before, after = until.timestamp() - 1, until.timestamp() + 1
    assert config.sealing_keys(before) == (NEW.encode(), OLD.encode(), OLDER.encode())
    assert config.sealing_keys(after) == (NEW.encode(), OLD.encode())
    assert "the-old" not in repr(config)  # secrets never in a repr (or a log line made of it)


def test_without_previous_secrets_only_the_secret_opens(tmp_path: Path) -> None:
    assert load(tmp_path, f'  secret: "{NEW}"').sealing_keys() == (NEW.encode(),)
    derived = load(tmp_path, "  sigv2: true")
    assert derived.sealing_keys() == (derived.secret,) and len(derived.secret) == 32


@pytest.mark.parametrize(
    ("router", "problem"),
    [
        (f'  secret: "{NEW}"\n  previous_secrets: "{OLD}"', "must be a list"),
        (f'  previous_secrets: ["{OLD}"]', "needs router.secret"),
        (f'  secret: "{NEW}"\n  previous_secrets: ["short"]', "at least 16 characters"),
        (f'  secret: "{NEW}"\n  previous_secrets: [7]', "must be a secret or"),
        (
            f'  secret: "{NEW}"\n  previous_secrets:\n    - {{secret: "{OLD}", until: "soon"}}',
            "is not a time",
        ),
        (
            f'  secret: "{NEW}"\n  previous_secrets:\n'
            f'    - {{secret: "{OLD}", until: "2027-01-31T00:00:00"}}',
            "needs a time zone",
        ),
        (
            f'  secret: "{NEW}"\n  previous_secrets:\n    - {{secret: "{OLD}", after: "x"}}',
            "unknown key",
        ),
        ('  secret: "too-short"', "at least 16 characters"),
    ],
)
def test_a_bad_secret_setting_is_refused_with_its_place(
    tmp_path: Path, router: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, router)
    message = str(caught.value)
    assert problem in message and "router.yaml:" in message and "router." in message
    assert OLD not in message and NEW not in message  # a secret is never echoed
