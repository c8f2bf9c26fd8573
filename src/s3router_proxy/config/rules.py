"""The routing part of the config: `routing:` rules, or boto-s3-router `profiles:`, compiled.

Two spellings of the same rules are accepted (one per file):

- `routing:` with `rules:` (bucket `pattern`, `key_pattern`, `target`, `operations`,
  `conditions`, `mapped_bucket`, `mapped_prefix`, `description`) and `default_target`;
- boto-s3-router's own configuration, as its users already have it: `profiles:` (profile name →
  `source_bucket_pattern`, `source_key_pattern`, `mapped_bucket_name`, `mapped_prefix`) and
  `client_mapping:` (profile name → backend name, with the required `default`).

Both become the same tuple of `routing.Rule`s plus a default target. Every problem is a
`ConfigError` naming file, line, key path and the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..routing.conditions import (
    HTTP_METHODS,
    Operations,
    compile_operations,
    parse_operation,
)
from ..routing.rules import AroundTarget, MappedNames, Rule, RuleMatch, RuleSource, compile_rule
from ..s3.operations import GROUPS, OPERATIONS
from .conditions import parse_conditions as _conditions
from .reader import ConfigError, Reader
from .yamlfile import LineDict

if TYPE_CHECKING:
    from .model import BackendConfig

# Top-level config sections this module reads (load.py accepts them).
ROUTING_TOP_KEYS: frozenset[str] = frozenset({"routing", "profiles", "client_mapping"})

_ROUTING_KEYS = {"rules", "default_target", "environment"}
_RULE_KEYS = {
    "pattern",
    "key_pattern",
    "target",
    "operations",
    "conditions",
    "mapped_bucket",
    "mapped_prefix",
    "description",
    "max_body_size",
    "fallback",
    "failover_on_error",
    "mirror",
    "mirror_mode",
}
_PROFILE_KEYS = {
    "source_bucket_pattern",
    "source_key_pattern",
    "mapped_bucket_name",
    "mapped_prefix",
}

_OPERATION_WORDS = sorted({*HTTP_METHODS, *GROUPS, *OPERATIONS})


def _backend_list(
    reader: Reader,
    item: LineDict,
    backends: Mapping[str, BackendConfig],
    target: str,
    where: str,
    name: str,
    own_names: list[tuple[str, str | None, str | None]],
) -> tuple[str, ...]:
    """A rule's list of other backends: `fallback:` (reads the target answers 404 go on to
    them) or `mirror:` (writes are applied to them too).

    An entry is a backend name (it holds the target's backend names) or a mapping
    `{backend, mapped_bucket, mapped_prefix}` for a backend with names of its own (appended to
    `own_names`; without the two keys, the client's names)."""
    value = item.get(name)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    line = reader.line_of(item, name)
    if not isinstance(value, list):
        raise reader.fail(f"{where}.{name}", "must be a list of backend names", line)
    names: list[str] = []
    for index, entry in enumerate(value):
        if isinstance(entry, LineDict):
            spot = f"{where}.{name}[{index}]"
            reader.only_keys(entry, {"backend", "mapped_bucket", "mapped_prefix"}, spot)
            backend = reader.string(entry, "backend", spot)
            if not backend:
                raise reader.fail(spot, "needs `backend:`", entry.line)
            own = (
                backend,
                _bucket_name(reader, entry, "mapped_bucket", spot),
                _prefix(reader, entry, "mapped_prefix", spot),
            )
            if any(o[0] == backend and o != own for o in own_names):
                raise reader.fail(spot, f"{backend!r} is given other names elsewhere", entry.line)
            own_names.append(own)
        elif isinstance(entry, str):
            backend = entry
        else:
            raise reader.fail(f"{where}.{name}", "must be a list of backend names", line)
        _known_backend(reader, backends, backend, f"{where}.{name}", line)
        if backend == target:
            raise reader.fail(f"{where}.{name}", f"{backend!r} is already the target", line)
        names.append(backend)
    if len(set(names)) != len(names):
        raise reader.fail(f"{where}.{name}", "names a backend twice", line)
    return tuple(names)


def _mirror_mode(reader: Reader, item: LineDict, where: str) -> str:
    mode = reader.string(item, "mirror_mode", where, "strict") or "strict"
    if mode not in ("strict", "best_effort"):
        raise reader.fail(
            f"{where}.mirror_mode",
            'must be "strict" or "best_effort"',
            reader.line_of(item, "mirror_mode"),
        )
    if "mirror_mode" in item and "mirror" not in item:
        raise reader.fail(
            f"{where}.mirror_mode", "needs `mirror:` backends", reader.line_of(item, "mirror_mode")
        )
    return mode


def _body_cap(reader: Reader, item: LineDict, where: str) -> int | None:
    """`max_body_size`: the largest request body this rule forwards (EntityTooLarge above)."""
    return reader.size(item, "max_body_size", where, "100MiB")


def parse_routing(
    reader: Reader, doc: LineDict, backends: Mapping[str, BackendConfig]
) -> tuple[tuple[Rule, ...], str | None]:
    """Rules and default target from `routing:` or from `profiles:` + `client_mapping:`."""
    if "profiles" in doc or "client_mapping" in doc:
        routing = reader.mapping(doc, "routing", "routing")
        if routing.get("rules") or routing.get("default_target") is not None:
            raise reader.fail(
                "profiles",
                "give the rules either as `routing:` or as boto-s3-router `profiles:` + "
                "`client_mapping:`, not both",
                reader.line_of(doc, "profiles") or reader.line_of(doc, "client_mapping"),
            )
        _environment(reader, routing)
        return _parse_profiles(reader, doc, backends)
    return _parse_rules(reader, doc, backends)


def _environment(reader: Reader, routing: LineDict) -> None:
    if "environment" in routing:
        value = routing["environment"]
        if not isinstance(value, str) or not value:
            raise reader.fail(
                "routing.environment",
                "must be a name such as production",
                reader.line_of(routing, "environment"),
            )


def _known_backend(
    reader: Reader, backends: Mapping[str, BackendConfig], name: str, where: str, line: int
) -> str:
    if name not in backends:
        known = ", ".join(sorted(backends))
        raise reader.fail(where, f"unknown backend {name!r}; known backends: {known}", line)
    return name


def _parse_rules(
    reader: Reader, doc: LineDict, backends: Mapping[str, BackendConfig]
) -> tuple[tuple[Rule, ...], str | None]:
    routing = reader.mapping(doc, "routing", "routing")
    reader.only_keys(routing, _ROUTING_KEYS, "routing")
    _environment(reader, routing)
    known = ", ".join(sorted(backends))
    default_target = reader.string(routing, "default_target", "routing")
    if default_target is not None:
        _known_backend(
            reader,
            backends,
            default_target,
            "routing.default_target",
            reader.line_of(routing, "default_target"),
        )
    items = routing.get("rules") or []
    if not isinstance(items, list):
        raise reader.fail("routing.rules", "must be a list", reader.line_of(routing, "rules"))
    rules = []
    for index, item in enumerate(items):
        where = f"routing.rules[{index}]"
        if not isinstance(item, LineDict):
            raise reader.fail(where, "must be a mapping", reader.line_of(routing, "rules"))
        reader.only_keys(item, _RULE_KEYS, where)
        pattern = reader.string(item, "pattern", where)
        target = reader.string(item, "target", where)
        if not pattern:
            raise reader.fail(where, 'needs a bucket `pattern:` (e.g. "logs-*")', item.line)
        if not target:
            raise reader.fail(
                where, f"needs a `target:` backend; known backends: {known}", item.line
            )
        _known_backend(reader, backends, target, f"{where}.target", reader.line_of(item, "target"))
        own_names: list[tuple[str, str | None, str | None]] = []
        fallback = _backend_list(reader, item, backends, target, where, "fallback", own_names)
        mirror = _backend_list(reader, item, backends, target, where, "mirror", own_names)
        rules.append(
            compile_rule(
                index,
                RuleMatch(
                    pattern,
                    key_pattern=_pattern(reader, item, "key_pattern", where),
                    operations=_operations(reader, item, where),
                    conditions=_conditions(reader, item, where),
                ),
                target,
                names=MappedNames(
                    bucket=_bucket_name(reader, item, "mapped_bucket", where),
                    prefix=_prefix(reader, item, "mapped_prefix", where),
                ),
                around=AroundTarget(
                    max_body_size=_body_cap(reader, item, where),
                    fallback=fallback,
                    failover_on_error=reader.flag(item, "failover_on_error", where, False),
                    mirror=mirror,
                    mirror_mode=_mirror_mode(reader, item, where),
                    own_names=tuple(dict.fromkeys(own_names)),
                ),
                source=RuleSource(
                    name=where,
                    line=item.line,
                    description=reader.string(item, "description", where) or "",
                ),
            )
        )
    if not rules and default_target is None:
        if len(backends) == 1:
            default_target = next(iter(backends))
        else:
            raise reader.fail(
                "routing",
                "no rules and no default_target: add `routing: {default_target: NAME}` "
                f"with one of: {known}",
                routing.line or doc.line,
            )
    return tuple(rules), default_target


def _pattern(reader: Reader, item: LineDict, key: str, where: str) -> str | None:
    value = reader.string(item, key, where)
    if value is not None and not value:
        raise reader.fail(
            f"{where}.{key}",
            'must not be empty; leave it out to match every key, or e.g. "team2/*"',
            reader.line_of(item, key),
        )
    return value


def _prefix(reader: Reader, item: LineDict, key: str, where: str) -> str | None:
    return reader.string(item, key, where)


def _bucket_name(reader: Reader, item: LineDict, key: str, where: str) -> str | None:
    value = reader.string(item, key, where)
    if value is None:
        return None
    if not value or "/" in value or any(c in value for c in "*?["):
        raise reader.fail(
            f"{where}.{key}",
            f"{value!r} is not a bucket name; give the backend's bucket, e.g. minio-bucket",
            reader.line_of(item, key),
        )
    return value


def _operations(reader: Reader, item: LineDict, where: str) -> Operations | None:
    if "operations" not in item:
        return None
    entries = item["operations"]
    line = reader.line_of(item, "operations")
    if isinstance(entries, str):
        entries = [entries]
    if not isinstance(entries, list) or not entries:
        raise reader.fail(
            f"{where}.operations", "must be a list such as [GET, HEAD] or [read, list]", line
        )
    for entry in entries:
        if not isinstance(entry, str) or parse_operation(entry) is None:
            near = difflib.get_close_matches(str(entry), _OPERATION_WORDS, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise reader.fail(
                f"{where}.operations",
                f"unknown HTTP method, S3 operation or group {entry!r}{hint} "
                f"(methods {sorted(HTTP_METHODS)}, groups {sorted(GROUPS)}, or an S3 "
                "operation name such as GetObject)",
                line,
            )
    return compile_operations(entries)


def _parse_profiles(
    reader: Reader, doc: LineDict, backends: Mapping[str, BackendConfig]
) -> tuple[tuple[Rule, ...], str | None]:
    profiles = reader.mapping(doc, "profiles", "profiles")
    mapping = reader.mapping(doc, "client_mapping", "client_mapping")
    if "client_mapping" not in doc:
        raise reader.fail(
            "client_mapping",
            "is missing: boto-s3-router profiles need `client_mapping:` naming a backend for "
            "each profile and a `default`",
            reader.line_of(doc, "profiles"),
        )
    targets: dict[str, str] = {}
    for name, value in mapping.items():
        where = f"client_mapping.{name}"
        if not isinstance(value, str) or not value:
            raise reader.fail(where, "must be a backend name", reader.line_of(mapping, name))
        targets[str(name)] = _known_backend(
            reader, backends, value, where, reader.line_of(mapping, name)
        )
    if "default" not in targets:
        raise reader.fail(
            "client_mapping",
            "needs a `default:` backend for requests no profile matches (boto-s3-router "
            "requires it too)",
            reader.line_of(doc, "client_mapping"),
        )
    rules = []
    for index, (name, profile) in enumerate(profiles.items()):
        where = f"profiles.{name}"
        line = reader.line_of(profiles, name)
        if not isinstance(profile, LineDict):
            raise reader.fail(where, "must be a mapping", line)
        reader.only_keys(profile, _PROFILE_KEYS, where)
        pattern = reader.string(profile, "source_bucket_pattern", where)
        if not pattern:
            raise reader.fail(
                where, 'needs `source_bucket_pattern:` (e.g. "example-bucket")', profile.line
            )
        if str(name) not in targets:
            raise reader.fail(
                where,
                f"profile {name!r} has no backend: add `{name}: <backend>` to client_mapping",
                line,
            )
        try:
            rule = compile_rule(
                index,
                RuleMatch(
                    pattern, key_pattern=_pattern(reader, profile, "source_key_pattern", where)
                ),
                targets[str(name)],
                names=MappedNames(
                    bucket=_bucket_name(reader, profile, "mapped_bucket_name", where),
                    prefix=_prefix(reader, profile, "mapped_prefix", where),
                ),
                source=RuleSource(name=where, line=line),
            )
        except ValueError as exc:  # pragma: no cover - compile_rule validates nothing else
            raise ConfigError(str(exc)) from None
        rules.append(rule)
    return tuple(rules), targets["default"]
