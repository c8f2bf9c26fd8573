"""Reading a loaded config document: typed accessors that turn problems into located errors."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from .yamlload import LineDict


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

    def number(self, mapping: LineDict, key: str, where: str, default: float) -> float:
        value = mapping.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self.fail(
                f"{where}.{key}", "must be a positive number of seconds", self.line_of(mapping, key)
            )
        return float(value)

    def flag(self, mapping: LineDict, key: str, where: str, default: bool) -> bool:
        value = mapping.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{where}.{key}", "must be true or false", self.line_of(mapping, key))
        return value
