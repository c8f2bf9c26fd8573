"""Reading a loaded config document: typed accessors that turn problems into located errors.

Each accessor types a value by the setting it fills, so text that `${VAR}` put there is read as
if written literally (`literal`), and each message names the setting's own unit. A message about
a value that came from the environment names the variables, never the value (it may be a secret
set in the wrong place).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any

from .yamlfile import LineDict, Substituted, literal

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?i?B?)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1,
    "B": 1,
    "K": 1000,
    "KB": 1000,
    "M": 1000**2,
    "MB": 1000**2,
    "G": 1000**3,
    "GB": 1000**3,
    "T": 1000**4,
    "TB": 1000**4,
    "P": 1000**5,
    "PB": 1000**5,
    "KI": 1024,
    "KIB": 1024,
    "MI": 1024**2,
    "MIB": 1024**2,
    "GI": 1024**3,
    "GIB": 1024**3,
    "TI": 1024**4,
    "TIB": 1024**4,
    "PI": 1024**5,
    "PIB": 1024**5,
}


def parse_size(value: Any) -> int:
    """Bytes from `1048576`, `"10MiB"`, `"1GB"`, `"512 KiB"` (KB/MB/GB are powers of 1000)."""
    if isinstance(value, bool):
        raise ValueError("is not a size")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        return value
    if not isinstance(value, str):
        raise ValueError('must be a number of bytes or a string such as "10MiB"')
    match = _SIZE.match(value)
    unit = (match.group(2) or "").upper() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f'{value!r} is not a size; e.g. 1048576, "10MiB" or "1GB"')
    number = float(match.group(1)) * _UNITS[unit]
    if number != int(number):
        raise ValueError(f"{value!r} is not a whole number of bytes")
    return int(number)


class ConfigError(ValueError):
    """A configuration that must not be used; the message names file, line and fix."""


class Reader:
    """Walks the loaded document, turning problems into located `ConfigError`s."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str, line: int = 0) -> ConfigError:
        location = f"{self.source}:{line}" if line else self.source
        return ConfigError(f"{location}: {where}: {problem}")

    def line_of(self, mapping: Any, key: Any) -> int:
        if isinstance(mapping, LineDict):
            return mapping.key_lines.get(key, mapping.line)
        return 0

    def mapping(self, parent: Any, key: str, where: str, *, required: bool = False) -> LineDict:
        value = parent.get(key) if isinstance(parent, Mapping) else None
        if value is None:
            if required:
                raise self.fail(where, "is missing", getattr(parent, "line", 0))
            empty = LineDict()
            empty.line, empty.key_lines = getattr(parent, "line", 0), {}
            return empty
        if not isinstance(value, LineDict):
            raise self.fail(where, "must be a mapping of keys", self.line_of(parent, key))
        return value

    def only_keys(self, mapping: LineDict, allowed: set[str], where: str) -> None:
        for key in mapping:
            if key not in allowed:
                near = difflib.get_close_matches(str(key), sorted(allowed), n=1)
                hint = (
                    f"; did you mean {near[0]!r}?" if near else f"; known keys: {sorted(allowed)}"
                )
                raise self.fail(f"{where}.{key}", f"unknown key{hint}", self.line_of(mapping, key))

    def string(
        self, mapping: LineDict, key: str, where: str, default: str | None = None
    ) -> str | None:
        value = mapping.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(f"{where}.{key}", "must be a string", self.line_of(mapping, key))
        return str(value)

    def value(self, mapping: LineDict, key: str) -> Any:
        """The value at `key`, typed as if written literally when `${VAR}` produced it."""
        value = mapping.get(key)
        return literal(value) if isinstance(value, Substituted) else value

    def bad_value(self, mapping: LineDict, key: str, where: str, problem: str) -> ConfigError:
        value = mapping.get(key)
        if isinstance(value, Substituted):
            names = ", ".join(f"${{{name}}}" for name in value.variables)
            problem = f"{problem} (the value comes from {names})"
        return self.fail(f"{where}.{key}", problem, self.line_of(mapping, key))

    def number(
        self, mapping: LineDict, key: str, where: str, default: float, unit: str = "seconds"
    ) -> float:
        """A positive number of `unit` (fractions allowed): a duration unless told otherwise."""
        value = self.value(mapping, key)
        if value is None:
            return float(default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise self.bad_value(
                mapping, key, where, f"must be a positive number of {unit}, e.g. {default:g}"
            )
        return float(value)

    def count(self, mapping: LineDict, key: str, where: str, default: int, unit: str) -> int:
        """A positive whole number of `unit`; 1.5 is refused rather than cut to 1."""
        value = self.value(mapping, key)
        if value is None:
            return default
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.bad_value(
                mapping, key, where, f"must be a positive whole number of {unit}, e.g. {default}"
            )
        return value

    def size(self, mapping: LineDict, key: str, where: str, example: str) -> int | None:
        """A number of bytes (`1048576`, `"10MiB"`, `"1GB"`); None when not given."""
        value = self.value(mapping, key)
        if value is None:
            return None
        try:
            return parse_size(value)
        except ValueError as exc:
            if isinstance(mapping.get(key), Substituted):
                problem = f'must be a size in bytes, e.g. {example}, 1048576 or "1GB"'
            else:
                problem = str(exc) if "e.g." in str(exc) else f"{exc}; e.g. {example}"
            raise self.bad_value(mapping, key, where, problem) from None

    def flag(self, mapping: LineDict, key: str, where: str, default: bool) -> bool:
        value = self.value(mapping, key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.bad_value(mapping, key, where, "must be true or false")
        return value
