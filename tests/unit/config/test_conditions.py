"""A rule's conditions in the config: content types, sizes and time ranges, each refusal naming
the line and the fix."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from s3router_proxy.config.conditions import parse_clock
from s3router_proxy.config.reader import ConfigError

from .test_rules import BACKENDS, load


@pytest.mark.parametrize(
    ("routing", "line", "fragment"),
    [
        (
            "routing:\n  rules:\n    - pattern: a\n      target: minio\n      conditions: [x]\n",
            8,
            "must be a mapping",
        ),
        (
            "routing:\n  rules:\n    - pattern: a\n      target: minio\n      conditions:\n"
            "        max_size: 10 parsecs\n",
            9,
            "is not a size",
        ),
        (
            "routing:\n  rules:\n    - pattern: a\n      target: minio\n      conditions:\n"
            "        min_size: 10MB\n        max_size: 1MB\n",
            9,
            "min_size is larger",
        ),
        (
            "routing:\n  rules:\n    - pattern: a\n      target: minio\n      conditions:\n"
            "        content_types: [image]\n",
            9,
            "not a media type",
        ),
        (
            "routing:\n  rules:\n    - pattern: a\n      target: minio\n      conditions:\n"
            "        time_range: {start: '09:00', end: 17:00}\n",
            9,
            'write the time in quotes, e.g. "17:00"',
        ),
        (
            "routing:\n  rules:\n    - pattern: a\n      target: minio\n      conditions:\n"
            "        time_range: {start: '09:00', end: '25:00'}\n",
            9,
            "is not a time",
        ),
        (
            "routing:\n  rules:\n    - pattern: a\n      target: minio\n      conditions:\n"
            "        time_range: {start: '09:00', end: '09:00'}\n",
            9,
            "same time",
        ),
        (
            "routing:\n  rules:\n    - pattern: a\n      target: minio\n      conditions:\n"
            "        time_range: {start: '09:00'}\n",
            9,
            "needs `end:`",
        ),
        (
            "routing:\n  rules:\n    - pattern: a\n      target: minio\n      conditions:\n"
            "        time_range: {start: '09:00', end: '10:00', timezone: Mars/Olympus}\n",
            9,
            "unknown time zone 'Mars/Olympus'",
        ),
        (
            "routing:\n  rules:\n    - pattern: a\n      target: minio\n      conditions:\n"
            "        colour: red\n",
            9,
            "unknown key",
        ),
    ],
)
def test_condition_errors_name_line_and_fix(routing: str, line: int, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(BACKENDS + routing)
    message = str(caught.value)
    assert message.startswith(f"r.yaml:{line}: "), message
    assert fragment in message, message


def test_conditions_with_only_a_description_are_none() -> None:
    config = load(
        BACKENDS
        + "routing:\n  rules:\n    - pattern: a\n      target: minio\n"
        + "      conditions: {description: nothing to check}\n"
    )
    assert config.rules[0].conditions is None


def test_time_range_across_midnight_and_24() -> None:
    config = load(
        BACKENDS
        + "routing:\n  rules:\n    - pattern: a\n      target: minio\n      conditions:\n"
        + "        time_range: {start: '22:00', end: '06:00'}\n"
        + "    - pattern: b\n      target: minio\n      conditions:\n"
        + "        time_range: {start: '18:00', end: '24:00'}\n"
    )
    night, evening = (rule.conditions.time_range for rule in config.rules)  # type: ignore[union-attr]
    assert night is not None and evening is not None
    assert night.contains(datetime(2024, 1, 1, 23, 0, tzinfo=UTC))
    assert not night.contains(datetime(2024, 1, 1, 6, 0, tzinfo=UTC))
    assert evening.contains(datetime(2024, 1, 1, 23, 59, 59, tzinfo=UTC))
    assert not evening.contains(datetime(2024, 1, 1, 0, 0, tzinfo=UTC))


def test_parse_clock() -> None:
    assert parse_clock("00:00") == 0
    assert parse_clock("23:59") == 86340
    assert parse_clock("24:00", end=True) == 86400
    for bad in ("24:00", "7:00", "12:60", "noon", 1020):
        with pytest.raises(ValueError):
            parse_clock(bad)
