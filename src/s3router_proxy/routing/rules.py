"""Routing: which backend serves a request, as a pure function of the rules and the request.

Rules are tried in order and the first that matches wins; `default_target` catches the rest.
A rule matches when all of these hold:

- `pattern` matches the bucket and `key_pattern` (if any) matches the key, as globs
  (`globs.py`: case-sensitive, over the whole name, `*` crosses `/`). A rule with a
  `key_pattern` only matches requests that name a key: bucket-level requests (HeadBucket,
  ListObjects, …) skip it (`key_pattern: "*"` means "no key pattern"). Listings of a bucket
  split by key patterns are answered from every part (`bucketparts.routes_for_bucket`,
  `listing.merged_list`).
- `operations` (if any) contains the request's HTTP method, its S3 operation name or its group.
- every condition holds (`conditions.py`). A condition that cannot be evaluated for the request
  does *not* hold: no Content-Type for `content_types`, no known object size for
  `min_size`/`max_size` (size is known only for PutObject, UploadPart and PostObject, from
  x-amz-decoded-content-length or a plain Content-Length). `time_range` is start-inclusive,
  end-exclusive, in its time zone, and crosses midnight when start > end.

The matched rule also renames: `Route.bucket`/`Route.key` are the backend's names and
`Route.mapping` maps them back (see `names.py` for the exact prefix rule).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..s3.errors import S3Error
from ..s3.operations import OPERATIONS, operation_group
from ..s3.operationsets import NOT_CONFIGURATION
from .conditions import Conditions, Operations, compile_operations
from .facts import RequestFacts
from .globs import compile_glob, literal_prefix
from .names import NameMapping, join_prefix

# Paths that are not buckets on some S3-compatible stores but the root of an admin API that
# takes S3-signed requests: forwarded there and signed with the backend's keys, `GET
# /minio/admin/v3/info` or `PUT /admin/user?uid=…` would run an admin command with them. Only a
# rule naming one of these literally (the operator meant that bucket) routes it.
ADMIN_API_ROOTS = {
    "minio": "MinIO's admin, metrics and health APIs",
    "admin": "the Ceph Object Gateway admin API",
}
MAX_KEY_BYTES = 1024

# -- rules ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """One routing rule, compiled."""

    index: int
    pattern: str
    target: str
    methods: frozenset[str] | None  # the HTTP methods of `operations` (None: no operations)
    description: str
    line: int
    bucket_regex: re.Pattern[str] = field(repr=False)
    key_pattern: str | None = None  # None: every key, and bucket-level requests too
    key_regex: re.Pattern[str] | None = field(default=None, repr=False)
    operations: Operations | None = None  # None: every operation
    conditions: Conditions | None = None
    mapped_bucket: str | None = None
    mapped_prefix: str | None = None
    name: str = ""  # where it was written: "routing.rules[0]", "profiles.minio"
    client_prefix: str = ""  # C: the key pattern's literal prefix, replaced by ...
    backend_prefix: str = ""  # P: ... this on the backend (see `mapping.join_prefix`)
    max_body_size: int | None = None  # larger request bodies are refused (EntityTooLarge)
    fallback: tuple[str, ...] = ()  # backends that serve reads the target answers 404
    failover_on_error: bool = False  # also when the target is unreachable or answers 5xx
    mirror: tuple[str, ...] = ()  # backends every write is applied to as well
    mirror_mode: str = "strict"  # strict: all or nothing; best_effort: the target decides
    # Fallback or mirror backends that keep their own names: (backend, bucket, prefix), where
    # None means the client's bucket / keys unchanged. The others use the target's names.
    own_names: tuple[tuple[str, str | None, str | None], ...] = ()

    @property
    def label(self) -> str:
        return self.name or f"rule {self.index}"

    @property
    def narrowed(self) -> bool:
        """True when operations or conditions restrict the rule beyond its patterns."""
        return self.operations is not None or self.conditions is not None

    def mapping_for(self, bucket: str) -> NameMapping:
        return NameMapping(
            client_bucket=bucket,
            backend_bucket=self.mapped_bucket or bucket,
            client_prefix=self.client_prefix,
            backend_prefix=self.backend_prefix,
        )

    def describe(self) -> str:
        text = f"bucket {self.pattern!r}"
        if self.key_pattern is not None:
            text += f", keys {self.key_pattern!r}"
        if self.operations is not None:
            text += f", operations [{self.operations.describe()}]"
        if self.conditions is not None and self.conditions.describe():
            text += f", {self.conditions.describe()}"
        text += f" -> {self.target}"
        if self.mapped_bucket or self.mapped_prefix is not None:
            text += f" as {self.mapped_bucket or '<same bucket>'}"
            if self.mapped_prefix is not None:
                text += f", prefix {self.client_prefix!r} -> {self.backend_prefix!r}"
        return text

    def mismatch(self, facts: RequestFacts, *, keys: bool = True) -> str | None:
        """Why this rule does not match (None when it does). `keys=False` ignores the key."""
        if self.bucket_regex.fullmatch(facts.bucket) is None:
            return f"bucket {facts.bucket!r} does not match pattern {self.pattern!r}"
        if keys and self.key_regex is not None:
            if not facts.key:
                return (
                    f"the request names no key, and key_pattern {self.key_pattern!r} only "
                    "matches object requests"
                )
            if self.key_regex.fullmatch(facts.key) is None:
                return f"key {facts.key!r} does not match key_pattern {self.key_pattern!r}"
        if self.operations is not None and not self.operations.matches(
            facts.method, facts.operation
        ):
            what = facts.method + (f" {facts.operation}" if facts.operation else "")
            group = ""
            if facts.operation in OPERATIONS:
                group = f" (group {operation_group(facts.operation)})"
            return f"{what}{group} is not one of operations [{self.operations.describe()}]"
        if self.conditions is not None:
            return self.conditions.mismatch_reason(facts)
        return None


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """Which requests a rule takes: its bucket and key globs, operations and conditions.

    `methods` (HTTP methods, any case) are merged into `operations` (any entries)."""

    pattern: str
    key_pattern: str | None = None
    operations: Operations | Sequence[str] | None = None
    conditions: Conditions | None = None
    methods: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class MappedNames:
    """The names the rule's target knows a request by: `mapped_bucket`, `mapped_prefix`."""

    bucket: str | None = None
    prefix: str | None = None


@dataclass(frozen=True, slots=True)
class AroundTarget:
    """What a rule adds around its target: a body cap, fallbacks for reads, mirrors for writes."""

    max_body_size: int | None = None
    fallback: tuple[str, ...] = ()
    failover_on_error: bool = False
    mirror: tuple[str, ...] = ()
    mirror_mode: str = "strict"
    own_names: tuple[tuple[str, str | None, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class RuleSource:
    """Where a rule was written, for messages: `routing.rules[0]`, its line, its description."""

    name: str = ""
    line: int = 0
    description: str = ""


def compile_rule(
    index: int,
    match: RuleMatch,
    target: str,
    *,
    names: MappedNames = MappedNames(),
    around: AroundTarget = AroundTarget(),
    source: RuleSource = RuleSource(),
) -> Rule:
    """Compile a rule: its globs to regexes, its `operations:` entries, its key prefixes."""
    operations = match.operations
    if operations is not None and not isinstance(operations, Operations):
        operations = compile_operations(list(operations))
    if match.methods is not None:
        extra = Operations(methods=frozenset(m.upper() for m in match.methods))
        operations = (
            extra
            if operations is None
            else Operations(operations.methods | extra.methods, operations.names, operations.groups)
        )
    key_pattern = match.key_pattern
    if key_pattern is not None and key_pattern and set(key_pattern) == {"*"}:
        key_pattern = None
    return Rule(
        index=index,
        pattern=match.pattern,
        target=target,
        methods=None if operations is None else operations.methods or None,
        description=source.description,
        line=source.line,
        bucket_regex=compile_glob(match.pattern),
        key_pattern=key_pattern,
        key_regex=None if key_pattern is None else compile_glob(key_pattern),
        operations=operations,
        conditions=match.conditions,
        mapped_bucket=names.bucket,
        mapped_prefix=names.prefix,
        name=source.name,
        client_prefix=literal_prefix(key_pattern),
        backend_prefix=join_prefix(literal_prefix(key_pattern), names.prefix),
        max_body_size=around.max_body_size,
        fallback=around.fallback,
        failover_on_error=around.failover_on_error,
        mirror=around.mirror,
        mirror_mode=around.mirror_mode,
        own_names=around.own_names,
    )


class RoutingConfig(Protocol):
    """What `explain` and `check` read from a `config.Config`: the rules and the default."""

    @property
    def rules(self) -> tuple[Rule, ...]: ...

    @property
    def default_target(self) -> str | None: ...


# -- one request -> one route ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes: the backend and the names it knows the object by."""

    backend: str
    bucket: str  # the backend's bucket
    key: str  # the backend's key ("" for bucket-level requests)
    rule: Rule | None  # None: the default target
    mapping: NameMapping | None = None  # maps `bucket`/`key` back to the client's names

    @property
    def names(self) -> NameMapping:
        return self.mapping or NameMapping.identity(self.bucket)

    @property
    def renames(self) -> bool:
        """True when responses must be rewritten (bucket or key prefix differs)."""
        return not self.names.is_identity


def route_on(route: Route, backend: str, client_key: str) -> Route:
    """The route a rule's fallback or mirror `backend` is asked with: the target's backend
    names, or the backend's own names when the rule gives it some."""
    rule = route.rule
    if rule is not None:
        for name, bucket, prefix in rule.own_names:
            if name == backend:
                client_bucket = route.names.client_bucket
                mapping = NameMapping(
                    client_bucket,
                    bucket or client_bucket,
                    rule.client_prefix,
                    join_prefix(rule.client_prefix, prefix),
                )
                key = mapping.to_backend_key(client_key) if client_key else ""
                return Route(backend, mapping.backend_bucket, key, rule, mapping)
    key = route.names.to_backend_key(client_key) if client_key else ""
    return dataclasses.replace(route, backend=backend, key=key)


def match_route(rules: Sequence[Rule], default_target: str | None, facts: RequestFacts) -> Route:
    """The route for a request, or `S3Error(NoSuchBucket)` when nothing routes it.

    `facts.operation` (the S3 operation name) and `facts.headers` (case-insensitive, or a dict
    with lower-case names) are needed by rules with `operations` names/groups and `conditions`;
    without them such rules only match by HTTP method and never by condition.
    """
    bucket, key = facts.bucket, facts.key
    if bucket in ADMIN_API_ROOTS:
        rules, default_target = literal_rules(rules, bucket), None
    rule = first_match(rules, facts)
    if rule is not None:
        mapping = rule.mapping_for(bucket)
        backend_key = mapping.to_backend_key(key)
        if key and mapping.renames_keys:
            _check_backend_key(key, backend_key)
        return Route(rule.target, mapping.backend_bucket, backend_key, rule, mapping)
    if bucket in ADMIN_API_ROOTS:
        raise S3Error(
            "AccessDenied",
            f"/{bucket} is the root of {ADMIN_API_ROOTS[bucket]} on some backends; only a rule "
            f"naming the bucket {bucket!r} itself routes it.",
        )
    if default_target is None:
        raise S3Error(
            "NoSuchBucket",
            f"No routing rule matches bucket {bucket!r} and no default_target is configured.",
            details={"BucketName": bucket},
        )
    return Route(default_target, bucket, key, None, NameMapping.identity(bucket))


def check_bucket_configuration(route: Route, method: str, operation: str) -> None:
    """Refuse a change to the configuration of a backend bucket the client has only a prefix
    of (a rule with `mapped_prefix`): a lifecycle rule, policy, ACL or versioning setting would
    apply to the whole backend bucket, i.e. to keys of other rules and other clients too."""
    if (
        route.key
        or method not in ("PUT", "POST", "DELETE")
        or not route.names.renames_keys
        or operation in NOT_CONFIGURATION
        or (operation in OPERATIONS and operation_group(operation) != "admin")
    ):
        return
    raise S3Error(
        "AccessDenied",
        f"{operation} would change all of the backend bucket this bucket's keys live in (under "
        "a prefix), not just this bucket; change it on the backend itself.",
    )


def literal_rules(rules: Sequence[Rule], bucket: str) -> list[Rule]:
    """The rules that name `bucket` itself: the only ones that route an admin API root."""
    return [rule for rule in rules if rule.pattern == bucket]


def _check_backend_key(key: str, backend_key: str) -> None:
    if not backend_key:
        raise S3Error(
            "InvalidArgument",
            f"Key {key!r} maps to an empty key on the backend (it equals the rule's key prefix).",
            details={"ArgumentName": "key", "ArgumentValue": key},
        )
    if len(backend_key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", "The key is too long once mapped to the backend's prefix.")


def first_match(rules: Sequence[Rule], facts: RequestFacts) -> Rule | None:
    for rule in rules:
        if rule.mismatch(facts) is None:
            return rule
    return None
