"""Explaining and checking routing rules, as plain data (the CLI and admin endpoint render it).

`explain` answers "where does this request go, and why": each rule tried in order with the reason
it did not match, the rule that did (or the default target), the backend and the names the
backend sees, and for a bucket-level request on a bucket split by key rules, every part. It uses
exactly the functions the proxy routes with, so the explanation cannot drift from behaviour.

`check` looks at a whole config for rules that can never match (an earlier rule without
operations or conditions covers every request they would get), unknown targets, buckets split by
overlapping key patterns, conditions reads never satisfy, and boto-s3-router profiles whose keys
land elsewhere than boto-s3-router put them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from ..s3.errors import S3Error
from ..s3.operations import OPERATIONS, operation_group, operation_name
from ..s3.operationsets import OBJECT_LISTINGS
from .rules import (
    HTTP_METHODS,
    Part,
    RequestFacts,
    Route,
    Rule,
    glob_covers,
    literal_prefix,
    match_route,
    route_on,
    routes_for_bucket,
)


class RoutingConfig(Protocol):
    """What explain/check read from a `config.Config`."""

    @property
    def rules(self) -> tuple[Rule, ...]: ...

    @property
    def default_target(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    rule: Rule
    reason: str | None  # None: this rule matched


@dataclass(frozen=True, slots=True)
class Explanation:
    method: str
    bucket: str
    key: str
    operation: str
    group: str
    content_type: str | None
    size: int | None
    now: datetime
    verdicts: tuple[RuleVerdict, ...]  # rules tried, in order, up to the one that matched
    route: Route | None
    error: str | None  # why nothing routes the request
    parts: tuple[Part, ...] = ()  # bucket-level requests on split buckets: every part
    prefix: str = ""

    @property
    def rule(self) -> Rule | None:
        return None if self.route is None else self.route.rule


# What S3 accepts as a bucket name, legacy us-east-1 names (capitals, underscores) included.
_BUCKET = re.compile(r"[A-Za-z0-9._-]{1,255}")


def did_you_mean(word: str, choices: list[str]) -> str:
    near = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {near[0]!r}?" if near else ""


def request_method(text: str) -> str:
    """The method, upper-cased, if S3 uses it; else ValueError saying which ones it does."""
    method = text.upper()
    if method not in HTTP_METHODS:
        raise ValueError(
            f"{text!r} is not an HTTP method S3 uses ({', '.join(sorted(HTTP_METHODS))})"
            + did_you_mean(method, sorted(HTTP_METHODS))
        )
    return method


def request_url(text: str) -> tuple[str, str]:
    """(bucket, key) from `s3://bucket/key`, `s3://bucket` or `bucket/key`, the names a
    client uses; ValueError for anything no client could send (an HTTP URL, no bucket)."""
    scheme, sep, rest = text.partition("://")
    if sep and scheme.lower() in ("http", "https"):
        raise ValueError(
            f"{text!r} is an HTTP URL; give the bucket and key the client names, "
            "as s3://BUCKET/KEY (the proxy's own address plays no part in routing)"
        )
    if sep and scheme.lower() != "s3":
        raise ValueError(f"{text!r} is not s3://BUCKET/KEY")
    if not text:
        raise ValueError("the URL is empty; e.g. s3://photos/2024/cat.jpg")
    bucket, _, key = (rest if sep else text).partition("/")
    if not bucket and key:
        raise ValueError(f"{text!r} names no bucket; e.g. s3://photos/{key}")
    if not bucket:
        # No rule routes it: the proxy asks every backend and merges the answers.
        raise ValueError(
            f"{text!r} names no bucket: ListBuckets goes to every backend, no rule routes it; "
            "give s3://BUCKET or s3://BUCKET/KEY"
        )
    if not _BUCKET.fullmatch(bucket):
        raise ValueError(
            f"{text!r} is not s3://BUCKET/KEY: {bucket!r} is not a bucket name "
            "(letters, digits, '.', '-', '_')"
        )
    return bucket, key


def _lower_headers(headers: Mapping[str, str] | Sequence[tuple[str, str]] | None) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else (headers or [])
    return {name.strip().lower(): value.strip() for name, value in items}


def explain(
    config: RoutingConfig,
    method: str,
    bucket: str,
    key: str = "",
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    *,
    query: Mapping[str, str] | None = None,
    operation: str | None = None,
    now: datetime | None = None,
) -> Explanation:
    """Why a request `METHOD /bucket/key?query` with `headers` goes where it goes."""
    method = method.upper()
    plain_headers = _lower_headers(headers)
    query = dict(query or {})
    if operation is None:
        operation = operation_name(method, bucket, key, query, plain_headers)
    now = now or datetime.now(UTC)
    facts = RequestFacts(method, bucket, key, operation=operation, headers=plain_headers, now=now)
    verdicts = []
    for rule in config.rules:
        reason = rule.mismatch(facts)
        verdicts.append(RuleVerdict(rule, reason))
        if reason is None:
            break
    route: Route | None = None
    error: str | None = None
    try:
        route = match_route(
            config.rules,
            config.default_target,
            method,
            bucket,
            key,
            operation=operation,
            headers=plain_headers,
            now=now,
        )
    except S3Error as exc:
        error = f"{exc.code}: {exc.message}"
    parts: tuple[Part, ...] = ()
    prefix = query.get("prefix", "")
    if bucket and not key:
        found = routes_for_bucket(
            config.rules,
            config.default_target,
            bucket,
            prefix if operation in OBJECT_LISTINGS else "",
            method=method,
            operation=operation,
            headers=plain_headers,
            now=now,
        )
        if len(found) > 1 or (found and not found[0].plain):
            parts = tuple(found)
    return Explanation(
        method=method,
        bucket=bucket,
        key=key,
        operation=operation,
        group=operation_group(operation) if operation in OPERATIONS else "",
        content_type=facts.content_type,
        size=facts.size,
        now=now,
        verdicts=tuple(verdicts),
        route=route,
        error=error,
        parts=parts,
        prefix=prefix,
    )


def format_explanation(explanation: Explanation) -> str:
    """The explanation as text, one fact per line."""
    e = explanation
    target = f"s3://{e.bucket}/{e.key}" if e.bucket else "s3://"
    head = f"{e.method} {target}"
    if e.operation:
        head += f"  ({e.operation}" + (f", group {e.group}" if e.group else "") + ")"
    lines = [head]
    facts = []
    if e.content_type:
        facts.append(f"Content-Type {e.content_type}")
    facts.append(f"size {e.size} bytes" if e.size is not None else "size unknown")
    facts.append("time " + e.now.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    lines.append("  request: " + ", ".join(facts))
    for verdict in e.verdicts:
        rule = verdict.rule
        where = f"line {rule.line}, " if rule.line else ""
        lines.append(f"  {rule.label} ({where}{rule.describe()})")
        lines.append("    no: " + verdict.reason if verdict.reason else "    MATCH")
    if e.route is not None and e.route.rule is None:
        lines.append("  no rule matched: default_target")
    if e.route is not None:
        lines.append(f"  backend: {e.route.backend}")
        lines.append(f"  backend bucket: {e.route.bucket}")
        if e.key:
            lines.append(f"  backend key: {e.route.key}")
        rule, route = e.route.rule, e.route

        def where(backend: str) -> str:
            there = route_on(route, backend, e.key)
            if (there.bucket, there.key) == (route.bucket, route.key):
                return backend
            return (
                f"{backend} ({there.bucket}/{there.key})"
                if e.key
                else f"{backend} ({there.bucket})"
            )

        if rule is not None and rule.fallback:
            lines.append(
                "  reads the target answers 404"
                + (" or fails" if rule.failover_on_error else "")
                + " go on to: "
                + ", ".join(where(b) for b in rule.fallback)
            )
        if rule is not None and rule.mirror:
            lines.append(
                f"  writes are mirrored ({rule.mirror_mode}) to: "
                + ", ".join(where(b) for b in rule.mirror)
            )
    if e.error:
        lines.append(f"  not routed: {e.error}")
    if e.parts:
        lines.append(
            f"  bucket {e.bucket!r} is split"
            + (f" (under prefix {e.prefix!r})" if e.prefix else "")
            + f"; {e.operation or 'the request'} sees every part:"
        )
        for part in e.parts:
            lines.append(f"    {part.describe()}")
    return "\n".join(lines)


# -- check ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckWarning:
    """One finding of `check`: `warning` for likely mistakes, `note` for surprises."""

    where: str  # "routing.rules[2]", "profiles.minio", "routing.default_target"
    line: int
    message: str
    level: Literal["warning", "note"] = "warning"
    rule: Rule | None = field(default=None, compare=False)

    def __str__(self) -> str:
        location = f"line {self.line}: " if self.line else ""
        return f"{location}{self.where}: {self.level}: {self.message}"


def _may_overlap(a: str | None, b: str | None) -> bool:
    """Could some name match both globs? (False only when their literal prefixes diverge.)"""
    la, lb = literal_prefix(a), literal_prefix(b)
    if a is not None and la == a and b is not None and lb == b:
        return a == b
    return la.startswith(lb) or lb.startswith(la)


def _catches_all(rule: Rule) -> bool:
    return not rule.narrowed and rule.key_pattern is None and set(rule.pattern) == {"*"}


def check(config: RoutingConfig, backends: Sequence[str] | None = None) -> list[CheckWarning]:
    """Everything suspicious about a config's routing, in rule order.

    `backends` defaults to `config.backends` when the config has one.
    """
    rules = list(config.rules)
    known = set(backends if backends is not None else getattr(config, "backends", {}) or ())
    found: list[CheckWarning] = []

    def warn(
        rule: Rule | None, message: str, level: Literal["warning", "note"] = "warning"
    ) -> None:
        if rule is None:
            found.append(CheckWarning("routing.default_target", 0, message, level))
        else:
            found.append(CheckWarning(rule.label, rule.line, message, level, rule))

    if known:
        for rule in rules:
            if rule.target not in known:
                warn(rule, f"unknown target backend {rule.target!r}; known: {sorted(known)}")
        if config.default_target is not None and config.default_target not in known:
            warn(None, f"unknown backend {config.default_target!r}; known: {sorted(known)}")
    if config.default_target is None:
        found.append(
            CheckWarning(
                "routing",
                0,
                "no default_target: requests no rule matches are answered NoSuchBucket",
                "note",
            )
        )

    for i, rule in enumerate(rules):
        for earlier in rules[:i]:
            if (
                not earlier.narrowed
                and glob_covers(earlier.pattern, rule.pattern)
                and glob_covers(earlier.key_pattern, rule.key_pattern)
            ):
                warn(
                    rule,
                    f"can never match: {earlier.label} (line {earlier.line}) comes first and "
                    "matches every request this rule would, with no operations or conditions "
                    "to narrow it",
                )
                break
        else:
            _check_overlaps(rule, rules[:i], warn)
        _check_conditions(rule, warn)
        _check_mapping(rule, warn)
        _check_aliases(rule, rules[:i], warn)

    catch_all = next((r for r in rules if _catches_all(r)), None)
    if catch_all is not None and config.default_target is not None:
        warn(
            None,
            f"default_target {config.default_target!r} is never used: {catch_all.label} "
            "matches every request",
            "note",
        )
    return found


def _check_overlaps(rule: Rule, earlier_rules: Sequence[Rule], warn: _Warn) -> None:
    if rule.key_pattern is None:
        return
    for earlier in earlier_rules:
        if earlier.key_pattern is None or not _may_overlap(earlier.pattern, rule.pattern):
            continue
        if not _may_overlap(earlier.key_pattern, rule.key_pattern):
            continue
        if earlier.target == rule.target and earlier.backend_prefix == rule.backend_prefix:
            continue
        warn(
            rule,
            f"overlapping split: keys matching both {earlier.key_pattern!r} "
            f"({earlier.label}) and {rule.key_pattern!r} go to {earlier.target!r} by "
            f"{earlier.label}; this rule only gets the rest",
        )
        return


def _check_conditions(rule: Rule, warn: _Warn) -> None:
    conditions = rule.conditions
    if conditions is None:
        return
    uploads_only = rule.operations is not None and rule.operations.only_uploads()
    if conditions.needs_size and not uploads_only:
        warn(
            rule,
            "min_size/max_size only match uploads (PutObject, UploadPart, PostObject with a "
            "length): reads, listings and other operations skip this rule, so make sure a later "
            "rule sends reads of these objects to the same backend",
            "note",
        )
    if conditions.content_types and rule.operations is None:
        warn(
            rule,
            "content_types only match requests that send a Content-Type (uploads): reads and "
            "listings skip this rule, so make sure a later rule sends them to the same backend",
            "note",
        )


def _check_mapping(rule: Rule, warn: _Warn) -> None:
    if rule.mapped_bucket and any(c in rule.pattern for c in "*?["):
        warn(
            rule,
            f"every bucket matching {rule.pattern!r} is stored in the one backend bucket "
            f"{rule.mapped_bucket!r}: their keys mix, and each bucket's listing shows the others' "
            "keys",
        )
    if (
        rule.name.startswith("profiles.")
        and rule.key_pattern is not None
        and rule.mapped_prefix is not None
    ):
        sample = rule.client_prefix + "obj"
        ours = rule.mapping_for("b").to_backend_key(sample)
        theirs = rule.mapped_prefix + sample
        if ours != theirs:
            warn(
                rule,
                f"mapped_prefix replaces the key pattern's literal prefix: {sample!r} is stored "
                f"as {ours!r} (boto-s3-router prepended it: {theirs!r}); check where existing "
                "data lives",
                "note",
            )


def _backend_bucket(rule: Rule) -> str | None:
    """The one backend bucket a rule stores in, None when its pattern names several."""
    if rule.mapped_bucket:
        return rule.mapped_bucket
    return None if any(c in rule.pattern for c in "*?[") else rule.pattern


def _check_aliases(rule: Rule, earlier_rules: Sequence[Rule], warn: _Warn) -> None:
    """Two rules storing in one backend bucket under nested prefixes give one object two
    client names, and a grant, deny or key filter written for one name misses the other."""
    bucket = _backend_bucket(rule)
    if bucket is None:
        return
    for earlier in earlier_rules:
        if earlier.target != rule.target or _backend_bucket(earlier) != bucket:
            continue
        inner, outer = sorted((rule, earlier), key=lambda r: -len(r.backend_prefix))
        if not inner.backend_prefix.startswith(outer.backend_prefix):
            continue
        gap = inner.backend_prefix[len(outer.backend_prefix) :]
        if inner.pattern == outer.pattern and inner.client_prefix == outer.client_prefix + gap:
            continue  # the same client name either way (an ordinary split)
        sample = inner.backend_prefix + "obj"
        warn(
            rule,
            f"{bucket!r} on {rule.target!r} is reached by {earlier.label} too: the backend "
            f"object {sample!r} is {inner.pattern}/{inner.client_prefix}obj by "
            f"{inner.label} and {outer.pattern}/{outer.client_prefix}{gap}obj by "
            f"{outer.label}; client grants and denies must cover both names",
        )
        return


class _Warn(Protocol):
    def __call__(
        self, rule: Rule | None, message: str, level: Literal["warning", "note"] = ...
    ) -> None: ...
