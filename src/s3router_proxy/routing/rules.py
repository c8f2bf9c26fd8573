"""Routing: which backend serves a request, as a pure function of the rules and the request.

Rules are tried in order and the first that matches wins; `default_target` catches the rest.
A rule matches when all of these hold:

- `pattern` matches the bucket and `key_pattern` (if any) matches the key. Both are
  case-sensitive globs over the *whole* name, with one semantics everywhere: `*` is any run of
  characters *including `/`* (as in fnmatch and boto-s3-router: `team2/*` matches `team2/a/b`),
  `?` is one character, `[abc]` / `[!abc]` a class. A rule with a `key_pattern` only matches
  requests that name a key: bucket-level requests (HeadBucket, ListObjects, …) skip it
  (`key_pattern: "*"` means "no key pattern"). Listings of a bucket split by key patterns are
  answered from every part (`routes_for_bucket`, `listing.merged_list`).
- `operations` (if any) contains the request's HTTP method, its S3 operation name or its group.
- every condition holds. A condition that cannot be evaluated for the request does *not* hold:
  no Content-Type for `content_types`, no known object size for `min_size`/`max_size` (size is
  known only for PutObject, UploadPart and PostObject, from x-amz-decoded-content-length or a
  plain Content-Length). `time_range` is start-inclusive, end-exclusive, in its time zone, and
  crosses midnight when start > end.

The matched rule also renames: `Route.bucket`/`Route.key` are the backend's names and
`Route.mapping` maps them back (see `names.py` for the exact prefix rule).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Literal

from ..s3.errors import S3Error
from ..s3.operations import GROUPS, OPERATIONS, UNKNOWN, operation_group
from ..s3.operationsets import NOT_CONFIGURATION, SIZED_OPERATIONS
from .names import NameMapping, join_prefix

HTTP_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE"})

_GLOB_SPECIAL = "*?["
# Paths that are not buckets on some S3-compatible stores but the root of an admin API that
# takes S3-signed requests: forwarded there and signed with the backend's keys, `GET
# /minio/admin/v3/info` or `PUT /admin/user?uid=…` would run an admin command with them. Only a
# rule naming one of these literally (the operator meant that bucket) routes it.
ADMIN_API_ROOTS = {
    "minio": "MinIO's admin, metrics and health APIs",
    "admin": "the Ceph Object Gateway admin API",
}
MAX_KEY_BYTES = 1024
Region = Literal["all", "none", "some"]


# -- globs ----------------------------------------------------------------------------------------


def compile_glob(pattern: str) -> re.Pattern[str]:
    """A whole-name, case-sensitive matcher; `*` crosses `/`."""
    return re.compile(fnmatch.translate(pattern), re.DOTALL)


def literal_prefix(pattern: str | None) -> str:
    """The pattern up to its first wildcard: every name it matches starts with this."""
    if pattern is None:
        return ""
    for index, char in enumerate(pattern):
        if char in _GLOB_SPECIAL:
            return pattern[:index]
    return pattern


def glob_region(pattern: str | None, prefix: str) -> Region:
    """Does `pattern` match all, none or some of the names that start with `prefix`?

    Exact for the shapes routing rules use (`literal`, `literal*`, no pattern); "some" whenever
    it cannot tell cheaply, which callers treat as "look at the names".
    """
    if pattern is None:
        return "all"
    literal = literal_prefix(pattern)
    rest = pattern[len(literal) :]
    if not (prefix.startswith(literal) or literal.startswith(prefix)):
        return "none"
    if not rest:  # a literal name: only that one name matches
        return "some" if literal.startswith(prefix) else "none"
    if prefix.startswith(literal) and set(rest) == {"*"}:
        return "all"
    return "some"


def glob_covers(general: str | None, specific: str | None) -> bool:
    """True when every name `specific` matches is matched by `general` (None: every name).

    Decided for the common shapes only; False means "not known to cover".
    """
    if general is None:
        return True
    if specific is None:
        return set(general) == {"*"}
    if general == specific:
        return True
    literal = literal_prefix(general)
    if set(general[len(literal) :]) == {"*"}:
        return literal_prefix(specific).startswith(literal)
    if literal_prefix(specific) == specific:
        return compile_glob(general).fullmatch(specific) is not None
    return False


# -- what a rule can look at in a request ---------------------------------------------------------


_UNSET: object = object()


class RequestFacts:
    """The parts of a request rules look at; headers are read only if a condition asks."""

    __slots__ = (
        "_content_type",
        "_now",
        "_size",
        "bucket",
        "headers",
        "key",
        "method",
        "operation",
    )

    def __init__(
        self,
        method: str,
        bucket: str,
        key: str,
        *,
        operation: str = "",
        headers: Mapping[str, str] | None = None,
        now: datetime | None = None,
    ) -> None:
        self.method = method.upper()
        self.bucket = bucket
        self.key = key
        self.operation = operation  # "" when the caller did not name it
        self.headers: Mapping[str, str] = headers if headers is not None else {}
        self._now = now
        self._content_type: object = _UNSET
        self._size: object = _UNSET

    @property
    def content_type(self) -> str | None:
        """The media type without parameters, lower-case; None without a Content-Type."""
        if self._content_type is _UNSET:
            value = self.headers.get("content-type")
            media = value.split(";", 1)[0].strip().lower() if value else ""
            self._content_type = media or None
        return self._content_type  # type: ignore[return-value]

    @property
    def size(self) -> int | None:
        """The object size in bytes, None when the request does not say."""
        if self._size is _UNSET:
            self._size = object_size(self.method, self.key, self.operation, self.headers)
        return self._size  # type: ignore[return-value]

    @property
    def now(self) -> datetime:
        if self._now is None:
            self._now = datetime.now(UTC)
        return self._now


def object_size(method: str, key: str, operation: str, headers: Mapping[str, str]) -> int | None:
    """The size of the object a request uploads, None when unknown (reads, copies, chunked)."""
    if operation:
        if operation not in SIZED_OPERATIONS:
            return None
    elif method.upper() not in ("PUT", "POST") or not key or "x-amz-copy-source" in headers:
        return None
    streaming = "aws-chunked" in headers.get("content-encoding", "").lower() or headers.get(
        "x-amz-content-sha256", ""
    ).upper().startswith("STREAMING-")
    # Only an aws-chunked body is held to its decoded length (the decoder refuses any other
    # size); next to a plain body the header is a claim nothing checks, so it is ignored.
    length = headers.get("x-amz-decoded-content-length" if streaming else "content-length")
    if length is None or not length.strip().isdigit():
        return None
    return int(length)


# -- operations and conditions --------------------------------------------------------------------


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

    def mismatch_reason(
        self,
        method: str,
        bucket: str,
        key: str = "",
        *,
        operation: str = "",
        headers: Mapping[str, str] | None = None,
        now: datetime | None = None,
    ) -> str | None:
        """Why this rule does not match (None when it does): for `explain` and logs."""
        facts = RequestFacts(method, bucket, key, operation=operation, headers=headers, now=now)
        return self.mismatch(facts)


def compile_rule(
    *,
    index: int,
    pattern: str,
    target: str,
    methods: frozenset[str] | None = None,
    description: str = "",
    line: int = 0,
    key_pattern: str | None = None,
    operations: Operations | Sequence[str] | None = None,
    conditions: Conditions | None = None,
    mapped_bucket: str | None = None,
    mapped_prefix: str | None = None,
    name: str = "",
    max_body_size: int | None = None,
    fallback: tuple[str, ...] = (),
    failover_on_error: bool = False,
    mirror: tuple[str, ...] = (),
    mirror_mode: str = "strict",
    own_names: tuple[tuple[str, str | None, str | None], ...] = (),
) -> Rule:
    """Compile a rule. `methods` (HTTP methods) and `operations` (any entries) are merged."""
    if operations is not None and not isinstance(operations, Operations):
        operations = compile_operations(list(operations))
    if methods is not None:
        extra = Operations(methods=frozenset(m.upper() for m in methods))
        operations = (
            extra
            if operations is None
            else Operations(operations.methods | extra.methods, operations.names, operations.groups)
        )
    if key_pattern is not None and key_pattern and set(key_pattern) == {"*"}:
        key_pattern = None
    return Rule(
        index=index,
        pattern=pattern,
        target=target,
        methods=None if operations is None else operations.methods or None,
        description=description,
        line=line,
        bucket_regex=compile_glob(pattern),
        key_pattern=key_pattern,
        key_regex=None if key_pattern is None else compile_glob(key_pattern),
        operations=operations,
        conditions=conditions,
        mapped_bucket=mapped_bucket,
        mapped_prefix=mapped_prefix,
        name=name,
        client_prefix=literal_prefix(key_pattern),
        backend_prefix=join_prefix(literal_prefix(key_pattern), mapped_prefix),
        max_body_size=max_body_size,
        fallback=fallback,
        failover_on_error=failover_on_error,
        mirror=mirror,
        mirror_mode=mirror_mode,
        own_names=own_names,
    )


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


def match_route(
    rules: Sequence[Rule],
    default_target: str | None,
    method: str,
    bucket: str,
    key: str,
    *,
    operation: str = "",
    headers: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> Route:
    """The route for a request, or `S3Error(NoSuchBucket)` when nothing routes it.

    `operation` (the S3 operation name) and `headers` (case-insensitive, or a dict with
    lower-case names) are needed by rules with `operations` names/groups and `conditions`;
    without them such rules only match by HTTP method and never by condition.
    """
    if bucket in ADMIN_API_ROOTS:
        rules, default_target = _literal_rules(rules, bucket), None
    facts = RequestFacts(method, bucket, key, operation=operation, headers=headers, now=now)
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


def _literal_rules(rules: Sequence[Rule], bucket: str) -> list[Rule]:
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


# -- one bucket -> every place its keys live ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Part:
    """One backend's share of a logical bucket, as a listing or bucket-level operation sees it.

    The part owns client key k when its rule's key pattern matches k and no earlier rule's
    (`excluded`) does: exactly the keys an object request would route here. `owns` is what keeps
    stale or foreign keys in a backend bucket out of the client's listing.
    """

    backend: str
    mapping: NameMapping
    rule: Rule | None  # None: the default target
    excluded: tuple[Rule, ...] = ()

    @property
    def bucket(self) -> str:
        return self.mapping.backend_bucket

    @property
    def key_pattern(self) -> str | None:
        return None if self.rule is None else self.rule.key_pattern

    def owns(self, key: str) -> bool:
        regex = None if self.rule is None else self.rule.key_regex
        if regex is not None and regex.fullmatch(key) is None:
            return False
        return not any(
            rule.key_regex is not None and rule.key_regex.fullmatch(key) for rule in self.excluded
        )

    def region(self, prefix: str) -> Region:
        """Does this part own all, none or some of the keys that start with `prefix`?"""
        own = glob_region(self.key_pattern, prefix)
        if own == "none":
            return "none"
        for rule in self.excluded:
            other = glob_region(rule.key_pattern, prefix)
            if other == "all":
                return "none"
            if other == "some":
                own = "some"
        return own

    @property
    def plain(self) -> bool:
        """True when the backend's listing of this part is the client's listing, unchanged."""
        return self.mapping.is_identity and self.key_pattern is None and not self.excluded

    def describe(self) -> str:
        where = f"{self.backend}:{self.bucket}"
        if self.mapping.renames_keys:
            c, p = self.mapping.client_prefix, self.mapping.backend_prefix
            where += f" (keys {c!r}… stored as {p!r}…)"
        owner = "default_target" if self.rule is None else self.rule.label
        owns = "every key" if self.key_pattern is None else f"keys {self.key_pattern!r}"
        if self.excluded:
            owns += " except " + ", ".join(repr(r.key_pattern) for r in self.excluded)
        return f"{where}: {owns} [{owner}]"


def routes_for_bucket(
    rules: Sequence[Rule],
    default_target: str | None,
    bucket: str,
    prefix: str = "",
    *,
    method: str = "GET",
    operation: str = "ListObjectsV2",
    headers: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> list[Part]:
    """Every part of `bucket` that can hold keys starting with `prefix`, in rule order.

    Rules are filtered by bucket, operations and conditions as a request with this
    method/operation/headers would be; key patterns split the bucket. The list ends at the first
    rule without a key pattern (it owns everything left) or with the default target. An empty
    list means the bucket routes nowhere (`NoSuchBucket`). One `plain` part means the request
    can be forwarded as it is; anything else needs `listing.merged_list` (listings) or an
    answer per part (bucket-level operations).
    """
    facts = RequestFacts(method, bucket, "", operation=operation, headers=headers, now=now)
    parts: list[Part] = []
    excluded: list[Rule] = []
    if bucket in ADMIN_API_ROOTS:
        rules, default_target = _literal_rules(rules, bucket), None
    for rule in rules:
        if rule.mismatch(facts, keys=False) is not None:
            continue
        region = glob_region(rule.key_pattern, prefix)
        if region == "none":
            continue
        parts.append(Part(rule.target, rule.mapping_for(bucket), rule, tuple(excluded)))
        if region == "all":
            return parts
        excluded.append(rule)
    if default_target is not None:
        parts.append(Part(default_target, NameMapping.identity(bucket), None, tuple(excluded)))
    return parts


def listing_is_plain(parts: Sequence[Part]) -> bool:
    """True when a listing can be forwarded to the single part's backend without rewriting."""
    return len(parts) == 1 and parts[0].plain


def visible_buckets(
    rules: Sequence[Rule],
    default_target: str | None,
    held: Mapping[str, Iterable[str]],
    *,
    headers: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> list[str]:
    """The client's bucket names for ListBuckets, from what each backend holds.

    `held` maps a backend name to the bucket names it lists. A client bucket is shown when a
    listing of it would read at least one bucket that exists: candidates are every backend
    bucket under its own name and every rule `pattern` without wildcards (renamed buckets).
    Sorted, without duplicates.
    """
    existing = {(backend, name) for backend, names in held.items() for name in names}
    candidates = {name for _, name in existing}
    candidates.update(r.pattern for r in rules if not any(c in r.pattern for c in _GLOB_SPECIAL))
    shown = []
    for bucket in sorted(candidates):
        parts = routes_for_bucket(
            rules, default_target, bucket, operation="ListObjects", headers=headers, now=now
        )
        if any((part.backend, part.bucket) in existing for part in parts):
            shown.append(bucket)
    return shown
