"""`s3://BACKEND/BUCKET/REST`: a place on one of the configured backends, as settings and
command arguments name it (the mirror journal, migrate's key lists and reports)."""

from __future__ import annotations

from dataclasses import dataclass

STORE_SCHEME = "s3://"


@dataclass(frozen=True, slots=True)
class StoreUrl:
    """`backend` (a name of `backends:`), `bucket`, and the rest of the path as written (a key
    or a prefix, possibly empty)."""

    backend: str
    bucket: str
    rest: str


def parse_store_url(text: str) -> StoreUrl | None:
    """The parts of an `s3://` place; None for anything else (a local path). The backend and
    bucket may be empty: what each setting requires is for its caller to say."""
    if not text.startswith(STORE_SCHEME):
        return None
    backend, _, rest = text[len(STORE_SCHEME) :].partition("/")
    bucket, _, rest = rest.partition("/")
    return StoreUrl(backend, bucket, rest)
