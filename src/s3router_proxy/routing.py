"""Routing: which backend serves a request, as a pure function of the rules and the request.

Rules are tried in order and the first that matches wins; `default_target` catches the rest.
A bucket `pattern` is a case-sensitive glob over the whole bucket name (`*` any run of
characters, `?` one character, `[abc]` a class), compiled once at load time.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from .errors import S3Error


@dataclass(frozen=True, slots=True)
class Rule:
    """One routing rule, compiled."""

    index: int
    pattern: str
    target: str
    methods: frozenset[str] | None  # None: every method
    description: str
    line: int
    bucket_regex: re.Pattern[str]

    def matches(self, method: str, bucket: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return self.bucket_regex.fullmatch(bucket) is not None

    def mismatch_reason(self, method: str, bucket: str) -> str | None:
        """Why this rule does not match (None when it does): for `explain` and logs."""
        if self.bucket_regex.fullmatch(bucket) is None:
            return f"bucket {bucket!r} does not match pattern {self.pattern!r}"
        if self.methods is not None and method not in self.methods:
            return f"method {method} is not one of {sorted(self.methods)}"
        return None


def compile_rule(
    *,
    index: int,
    pattern: str,
    target: str,
    methods: frozenset[str] | None = None,
    description: str = "",
    line: int = 0,
) -> Rule:
    return Rule(
        index=index,
        pattern=pattern,
        target=target,
        methods=methods,
        description=description,
        line=line,
        bucket_regex=re.compile(fnmatch.translate(pattern)),
    )


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes: the backend and the names it knows the object by."""

    backend: str
    bucket: str
    key: str
    rule: Rule | None  # None: the default target


def match_route(
    rules: tuple[Rule, ...], default_target: str | None, method: str, bucket: str, key: str
) -> Route:
    """The route for a request, or `S3Error(NoSuchBucket)` when nothing routes it."""
    for rule in rules:
        if rule.matches(method, bucket):
            return Route(rule.target, bucket, key, rule)
    if default_target is None:
        raise S3Error(
            "NoSuchBucket",
            f"No routing rule matches bucket {bucket!r} and no default_target is configured.",
            details={"BucketName": bucket},
        )
    return Route(default_target, bucket, key, None)
