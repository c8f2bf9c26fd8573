"""Explaining a routing decision, as plain data (the CLI and admin endpoint render it).

`explain` answers "where does this request go, and why": each rule tried in order with the reason
it did not match, the rule that did (or the default target), the backend and the names the
backend sees, and for a bucket-level request on a bucket split by key rules, every part. It uses
exactly the functions the proxy routes with, so the explanation cannot drift from behaviour.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ..s3.errors import S3Error
from ..s3.operations import OPERATIONS, operation_group, operation_name
from ..s3.operationsets import OBJECT_LISTINGS
from .bucketparts import Part, routes_for_bucket
from .conditions import HTTP_METHODS
from .facts import RequestFacts
from .rules import Route, RoutingConfig, Rule, match_route, route_on


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


@dataclass(frozen=True, slots=True)
class DescribedRequest:
    """A request as the `explain` command or admin endpoint describes it: `METHOD /bucket/key?query`
    with `headers` (a mapping or name/value pairs, any case); `operation` None: named from the
    rest, as the proxy names it; `now` None: the current time."""

    method: str
    bucket: str
    key: str = ""
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None
    query: Mapping[str, str] | None = None
    operation: str | None = None
    now: datetime | None = None


def explain(config: RoutingConfig, request: DescribedRequest) -> Explanation:
    """Why `request` goes where it goes."""
    method, bucket, key = request.method.upper(), request.bucket, request.key
    plain_headers = _lower_headers(request.headers)
    query = dict(request.query or {})
    operation = request.operation
    if operation is None:
        operation = operation_name(method, bucket, key, query, plain_headers)
    now = request.now or datetime.now(UTC)
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
        route = match_route(config.rules, config.default_target, facts)
    except S3Error as exc:
        error = f"{exc.code}: {exc.message}"
    parts: tuple[Part, ...] = ()
    prefix = query.get("prefix", "")
    if bucket and not key:
        listed = prefix if operation in OBJECT_LISTINGS else ""
        found = routes_for_bucket(config.rules, config.default_target, facts, listed)
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
