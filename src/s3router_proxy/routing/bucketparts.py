"""One bucket, every place its keys live: the parts a listing or bucket-level request sees.

A bucket split by key patterns (or renamed) is answered part by part: `routes_for_bucket` lists
the parts a request reaches, in rule order, and each part owns exactly the keys an object
request would route to it. `visible_buckets` is ListBuckets' view of the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .facts import RequestFacts
from .globs import GLOB_SPECIAL, Region, glob_region
from .names import NameMapping
from .rules import ADMIN_API_ROOTS, Rule, literal_rules


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
    rules: Sequence[Rule], default_target: str | None, facts: RequestFacts, prefix: str = ""
) -> list[Part]:
    """Every part of `facts.bucket` that can hold keys starting with `prefix`, in rule order.

    `facts` is the bucket-level request (its key is not looked at): rules are filtered by
    bucket, operations and conditions as that request would be; key patterns split the
    bucket. The list ends at the first rule without a key pattern (it owns everything left)
    or with the default target. An empty
    list means the bucket routes nowhere (`NoSuchBucket`). One `plain` part means the request
    can be forwarded as it is; anything else needs `listing.merged_list` (listings) or an
    answer per part (bucket-level operations).
    """
    bucket = facts.bucket
    parts: list[Part] = []
    excluded: list[Rule] = []
    if bucket in ADMIN_API_ROOTS:
        rules, default_target = literal_rules(rules, bucket), None
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
    candidates.update(r.pattern for r in rules if not any(c in r.pattern for c in GLOB_SPECIAL))
    shown = []
    for bucket in sorted(candidates):
        facts = RequestFacts("GET", bucket, "", operation="ListObjects", headers=headers, now=now)
        parts = routes_for_bucket(rules, default_target, facts)
        if any((part.backend, part.bucket) in existing for part in parts):
            shown.append(bucket)
    return shown
