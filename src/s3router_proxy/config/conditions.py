"""A rule's `conditions:`: the content types, object sizes and time of day a request must
have for the rule to match, validated into `routing.rules.Conditions`."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..routing.conditions import Conditions, TimeRange
from .reader import Reader
from .yamlfile import LineDict

_CONDITION_KEYS = {"content_types", "max_size", "min_size", "time_range", "description"}
_TIME_KEYS = {"start", "end", "timezone"}
_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


def parse_clock(value: Any, *, end: bool = False) -> int:
    """Seconds since midnight from "HH:MM" ("24:00" only as an end)."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(
            f'write the time in quotes, e.g. "17:00" (YAML reads an unquoted 17:00 as the '
            f"number {value})"
        )
    if not isinstance(value, str):
        raise ValueError('must be a time such as "09:00"')
    match = _CLOCK.match(value.strip())
    if match is None:
        raise ValueError(f'{value!r} is not a time "HH:MM" (00:00 to 23:59)')
    hours, minutes = int(match.group(1)), int(match.group(2))
    if hours == 24 and (minutes or not end):
        raise ValueError(f'{value!r} is not a time; "24:00" may only end a range')
    return hours * 3600 + minutes * 60


def parse_conditions(reader: Reader, item: LineDict, where: str) -> Conditions | None:
    """A rule's `conditions:`: content types, object sizes, a time of day; None when there is
    nothing to check."""
    if "conditions" not in item:
        return None
    where = f"{where}.conditions"
    section = item["conditions"]
    if not isinstance(section, LineDict):
        raise reader.fail(where, "must be a mapping", reader.line_of(item, "conditions"))
    reader.only_keys(section, _CONDITION_KEYS, where)
    content_types = section.get("content_types")
    types: tuple[str, ...] = ()
    if content_types is not None:
        if isinstance(content_types, str):
            content_types = [content_types]
        line = reader.line_of(section, "content_types")
        if not isinstance(content_types, list) or not content_types:
            raise reader.fail(
                f"{where}.content_types", 'must be a list such as ["image/*", "text/csv"]', line
            )
        for value in content_types:
            if not isinstance(value, str) or ("/" not in value and value != "*"):
                raise reader.fail(
                    f"{where}.content_types",
                    f'{value!r} is not a media type such as "image/png" or "image/*"',
                    line,
                )
        types = tuple(value.strip().lower() for value in content_types)
    sizes: dict[str, int | None] = {}
    for key in ("min_size", "max_size"):
        sizes[key] = reader.size(section, key, where, "100MiB")
    if (
        sizes["min_size"] is not None
        and sizes["max_size"] is not None
        and sizes["min_size"] > sizes["max_size"]
    ):
        raise reader.fail(
            where, "min_size is larger than max_size: no object could match", section.line
        )
    time_range = _time_range(reader, section, where)
    conditions = Conditions(
        content_types=types,
        min_size=sizes["min_size"],
        max_size=sizes["max_size"],
        time_range=time_range,
        description=reader.string(section, "description", where) or "",
    )
    if not (types or conditions.needs_size or time_range):
        return None  # only a description: nothing to check
    return conditions


def _time_range(reader: Reader, section: LineDict, where: str) -> TimeRange | None:
    if section.get("time_range") is None:
        return None
    where = f"{where}.time_range"
    value = section["time_range"]
    if not isinstance(value, LineDict):
        raise reader.fail(
            where,
            'must be a mapping such as {start: "09:00", end: "17:00", timezone: Europe/Berlin}',
            reader.line_of(section, "time_range"),
        )
    reader.only_keys(value, _TIME_KEYS, where)
    bounds = {}
    for key in ("start", "end"):
        if key not in value:
            raise reader.fail(where, f'needs `{key}:` ("HH:MM")', value.line)
        try:
            bounds[key] = parse_clock(value[key], end=key == "end")
        except ValueError as exc:
            raise reader.fail(f"{where}.{key}", str(exc), reader.line_of(value, key)) from None
    if bounds["start"] == bounds["end"] or (bounds["start"] == 0 and bounds["end"] == 86400):
        raise reader.fail(
            where,
            "start and end are the same time; leave time_range out to match at every hour",
            value.line,
        )
    zone = reader.string(value, "timezone", where, "UTC") or "UTC"
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise reader.fail(
            f"{where}.timezone",
            f"unknown time zone {zone!r}; use an IANA name such as Europe/Berlin or UTC "
            "(install the tzdata package if the system has no zone database)",
            reader.line_of(value, "timezone"),
        ) from None
    return TimeRange(bounds["start"], bounds["end"] or 86400, zone, tz)
