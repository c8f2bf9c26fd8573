"""The `routing:` section of the config: rules and the default target, validated and compiled."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .configread import Reader
from .routing import Rule, compile_rule
from .yamlload import LineDict

if TYPE_CHECKING:
    from .config import BackendConfig

HTTP_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE"})
# Top-level config sections this module reads besides `routing:` (config.py accepts them).
ROUTING_TOP_KEYS: frozenset[str] = frozenset({"routing"})


def parse_routing(
    reader: Reader, doc: LineDict, backends: Mapping[str, BackendConfig]
) -> tuple[tuple[Rule, ...], str | None]:
    routing = reader.mapping(doc, "routing", "routing")
    reader.only_keys(routing, {"rules", "default_target"}, "routing")
    known = ", ".join(sorted(backends))
    default_target = reader.string(routing, "default_target", "routing")
    if default_target is not None and default_target not in backends:
        raise reader.fail(
            "routing.default_target",
            f"unknown backend {default_target!r}; known backends: {known}",
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
        reader.only_keys(item, {"pattern", "target", "operations", "description"}, where)
        pattern = reader.string(item, "pattern", where)
        target = reader.string(item, "target", where)
        if not pattern:
            raise reader.fail(where, 'needs a bucket `pattern:` (e.g. "logs-*")', item.line)
        if not target:
            raise reader.fail(
                where, f"needs a `target:` backend; known backends: {known}", item.line
            )
        if target not in backends:
            raise reader.fail(
                f"{where}.target",
                f"unknown backend {target!r}; known backends: {known}",
                reader.line_of(item, "target"),
            )
        methods = item.get("operations")
        if methods is not None:
            if isinstance(methods, str):
                methods = [methods]
            if not isinstance(methods, list) or not methods:
                raise reader.fail(
                    f"{where}.operations",
                    "must be a list such as [GET, HEAD]",
                    reader.line_of(item, "operations"),
                )
            unknown = [m for m in methods if str(m).upper() not in HTTP_METHODS]
            if unknown:
                raise reader.fail(
                    f"{where}.operations",
                    f"unknown HTTP method {unknown[0]!r}; use {sorted(HTTP_METHODS)}",
                    reader.line_of(item, "operations"),
                )
            methods = frozenset(str(m).upper() for m in methods)
        rules.append(
            compile_rule(
                index=index,
                pattern=pattern,
                target=target,
                methods=methods,
                description=reader.string(item, "description", where) or "",
                line=item.line,
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
