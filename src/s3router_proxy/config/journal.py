"""Where `router.mirror_journal` points: a local file, or `s3://BACKEND/BUCKET/PREFIX` on one of
the configured backends, shared by every replica and surviving any pod."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .reader import Reader
from .storeurl import STORE_SCHEME, parse_store_url
from .yamlfile import LineDict

JOURNAL_SCHEME = STORE_SCHEME


@dataclass(frozen=True)
class JournalPlace:
    """A journal kept as objects: `backend` (a name of `backends:`), `bucket`, and the `prefix`
    every entry's key starts with (empty, or ending in "/")."""

    backend: str
    bucket: str
    prefix: str

    def __str__(self) -> str:
        return f"{JOURNAL_SCHEME}{self.backend}/{self.bucket}/{self.prefix}"


def journal_place(journal: str) -> JournalPlace | None:
    """The backend, bucket and prefix of an s3:// journal; None for a local file. Raises
    ValueError for an s3:// form without a backend or a bucket."""
    place = parse_store_url(journal)
    if place is None:
        return None
    backend, bucket, prefix = place.backend, place.bucket, place.rest
    if not backend or not bucket:
        raise ValueError(
            f"{journal!r} is not s3://BACKEND/BUCKET/PREFIX "
            '(e.g. "s3://minio/s3-router-journal/mirror/")'
        )
    if prefix and not prefix.endswith("/"):
        prefix += "/"  # entries sit under the prefix as a folder, never glued to its last word
    return JournalPlace(backend, bucket, prefix)


def s3_mirror_journal(reader: Reader, doc: LineDict, backends: Mapping[str, object]) -> str | None:
    """An s3:// `router.mirror_journal` as written, once it is well formed and names a configured
    backend; None when the journal is a file (or none), which `router.py` resolves as a path."""
    router = doc.get("router")
    journal = router.get("mirror_journal") if isinstance(router, LineDict) else None
    if not isinstance(journal, str) or not journal.startswith(JOURNAL_SCHEME):
        return None
    line = reader.line_of(router, "mirror_journal")
    try:
        place = journal_place(journal)
    except ValueError as exc:
        raise reader.fail("router.mirror_journal", str(exc), line) from None
    if place is not None and place.backend not in backends:
        raise reader.fail(
            "router.mirror_journal",
            f"backend {place.backend!r} is not in backends: (one of {sorted(backends)})",
            line,
        )
    return journal
