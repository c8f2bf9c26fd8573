"""Checking a whole config's routing for what is likely a mistake or a surprise.

`check` finds rules that can never match (an earlier rule without operations or conditions
covers every request they would get), unknown targets, buckets split by overlapping key
patterns, conditions reads never satisfy, and boto-s3-router profiles whose keys land elsewhere
than boto-s3-router put them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from .globs import glob_covers, literal_prefix
from .rules import RoutingConfig, Rule


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
