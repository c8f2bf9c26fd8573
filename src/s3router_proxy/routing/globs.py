"""Globs over bucket and key names: one semantics everywhere (rules, key filters, grants).

Case-sensitive and over the *whole* name: `*` is any run of characters *including `/`* (as in
fnmatch and boto-s3-router: `team2/*` matches `team2/a/b`), `?` one character, `[abc]` /
`[!abc]` a class.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Literal

GLOB_SPECIAL = "*?["
Region = Literal["all", "none", "some"]


def compile_glob(pattern: str) -> re.Pattern[str]:
    """A whole-name, case-sensitive matcher; `*` crosses `/`."""
    return re.compile(fnmatch.translate(pattern), re.DOTALL)


def literal_prefix(pattern: str | None) -> str:
    """The pattern up to its first wildcard: every name it matches starts with this."""
    if pattern is None:
        return ""
    for index, char in enumerate(pattern):
        if char in GLOB_SPECIAL:
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
