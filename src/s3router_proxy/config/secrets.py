"""`router.secret` and `router.previous_secrets`: the key that seals upload ids and listing
tokens, and the keys it replaced, still accepted for a while so that a rotation does not fail
the uploads and listings in flight on any replica."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .model import PreviousSecret
from .reader import Reader
from .yamlfile import LineDict

MIN_LENGTH = 16


def parse_secrets(reader: Reader, router: LineDict) -> dict[str, Any]:
    """`secret` (bytes, when set) and `previous_secrets` as `Config` fields."""
    extras: dict[str, Any] = {}
    secret = reader.string(router, "secret", "router")
    if secret is not None and len(secret) < MIN_LENGTH:
        raise reader.fail(
            "router.secret",
            f"must be at least {MIN_LENGTH} characters (it seals upload ids and listing tokens)",
            reader.line_of(router, "secret"),
        )
    if secret:
        extras["secret"] = secret.encode()
    previous = router.get("previous_secrets")
    if previous is None:
        return extras
    where, line = "router.previous_secrets", reader.line_of(router, "previous_secrets")
    if not isinstance(previous, list):
        raise reader.fail(where, "must be a list of secrets (or {secret, until} entries)", line)
    if previous and not secret:
        raise reader.fail(
            where,
            "needs router.secret: the key that replaced them (without it the key is derived "
            "from the credentials, and a rotation cannot be planned)",
            line,
        )
    extras["previous_secrets"] = tuple(
        _previous(reader, entry, f"{where}[{index}]", line) for index, entry in enumerate(previous)
    )
    return extras


def _previous(reader: Reader, entry: Any, where: str, line: int) -> PreviousSecret:
    until: float | None = None
    if isinstance(entry, LineDict):
        reader.only_keys(entry, {"secret", "until"}, where)
        line = entry.line or line
        value = reader.string(entry, "secret", where)
        stamp = reader.string(entry, "until", where)
        if stamp is not None:
            until = _instant(reader, stamp, f"{where}.until", line)
    elif isinstance(entry, str):
        value = entry
    else:
        raise reader.fail(where, "must be a secret or a {secret, until} mapping", line)
    if not value or len(value) < MIN_LENGTH:
        raise reader.fail(where, f"a secret must be at least {MIN_LENGTH} characters", line)
    return PreviousSecret(value.encode(), until)


def _instant(reader: Reader, text: str, where: str, line: int) -> float:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise reader.fail(
            where, f"{text!r} is not a time like 2027-01-31T00:00:00Z (ISO 8601)", line
        ) from None
    if moment.tzinfo is None:
        raise reader.fail(where, f"{text!r} needs a time zone, e.g. a trailing Z for UTC", line)
    return moment.timestamp()
