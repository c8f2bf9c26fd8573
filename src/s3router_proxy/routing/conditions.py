"""What narrows a rule beyond its patterns: its `operations:` list and its `conditions:`."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from ..s3.operations import GROUPS, OPERATIONS, UNKNOWN, operation_group
from ..s3.operationsets import SIZED_OPERATIONS
from .facts import RequestFacts

HTTP_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE"})


@dataclass(frozen=True, slots=True)
class Operations:
    """What a rule's `operations:` list accepts: HTTP methods, operation names, groups."""

    methods: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    def matches(self, method: str, operation: str) -> bool:
        if method in self.methods:
            return True
        if not operation:
            return False
        if operation in self.names:
            return True
        if self.groups and operation in OPERATIONS:
            return operation_group(operation) in self.groups
        return False

    def describe(self) -> str:
        return ", ".join([*sorted(self.methods), *sorted(self.names), *sorted(self.groups)])

    def only_uploads(self) -> bool:
        """True when every operation accepted carries an object body (whose size is known)."""
        if self.methods or self.groups:
            return False
        return bool(self.names) and self.names <= SIZED_OPERATIONS


def parse_operation(entry: str) -> tuple[str, str] | None:
    """("method"|"name"|"group", value) for one `operations:` entry, None if unknown.

    HTTP methods are case-insensitive except `delete`, which is the group (write `DELETE` for
    the method); groups are lower-case; operation names are spelt as in the S3 API reference.
    """
    if entry in GROUPS:
        return "group", entry
    if entry.upper() in HTTP_METHODS:
        return "method", entry.upper()
    if entry in OPERATIONS and entry != UNKNOWN:
        return "name", entry
    return None


def compile_operations(entries: Sequence[str]) -> Operations:
    methods, names, groups = set(), set(), set()
    for entry in entries:
        parsed = parse_operation(entry)
        if parsed is None:
            raise ValueError(f"unknown HTTP method, S3 operation or group {entry!r}")
        kind, value = parsed
        {"method": methods, "name": names, "group": groups}[kind].add(value)
    return Operations(frozenset(methods), frozenset(names), frozenset(groups))


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Local seconds since midnight: start inclusive, end exclusive; start > end crosses 0:00."""

    start: int
    end: int
    timezone: str
    tz: tzinfo = field(compare=False)

    def contains(self, now: datetime) -> bool:
        local = now.astimezone(self.tz)
        second = local.hour * 3600 + local.minute * 60 + local.second
        if self.start < self.end:
            return self.start <= second < self.end
        return second >= self.start or second < self.end

    def describe(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)} {self.timezone}"


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


@dataclass(frozen=True, slots=True)
class Conditions:
    """A rule's `conditions:`; all given ones must hold."""

    content_types: tuple[str, ...] = ()  # lower-case globs such as "image/*"
    min_size: int | None = None
    max_size: int | None = None
    time_range: TimeRange | None = None
    description: str = ""

    @property
    def needs_size(self) -> bool:
        return self.min_size is not None or self.max_size is not None

    def mismatch_reason(self, facts: RequestFacts) -> str | None:
        if self.content_types:
            if facts.content_type is None:
                return "the request has no Content-Type, so content_types cannot match"
            if not any(fnmatch.fnmatchcase(facts.content_type, t) for t in self.content_types):
                return (
                    f"Content-Type {facts.content_type!r} is not one of {list(self.content_types)}"
                )
        if self.needs_size:
            if facts.size is None:
                return (
                    "the object size is unknown for this request (only PutObject, UploadPart "
                    "and PostObject with a length carry one), so a size condition cannot match"
                )
            if self.min_size is not None and facts.size < self.min_size:
                return f"size {facts.size} is below min_size {self.min_size}"
            if self.max_size is not None and facts.size > self.max_size:
                return f"size {facts.size} is above max_size {self.max_size}"
        if self.time_range is not None and not self.time_range.contains(facts.now):
            local = facts.now.astimezone(self.time_range.tz).strftime("%H:%M")
            return f"time {local} is outside {self.time_range.describe()}"
        return None

    def describe(self) -> str:
        parts = []
        if self.content_types:
            parts.append("content_types " + ",".join(self.content_types))
        if self.min_size is not None:
            parts.append(f"min_size {self.min_size}")
        if self.max_size is not None:
            parts.append(f"max_size {self.max_size}")
        if self.time_range is not None:
            parts.append("time " + self.time_range.describe())
        return "; ".join(parts)
