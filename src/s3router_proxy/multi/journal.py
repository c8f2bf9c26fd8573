"""The divergence journal: what a mirror did not get, so `lakefs-s3-router repair` can fix it.

A local file holds one JSON object a line, appended with O_APPEND (a line is one write, so
workers sharing the file do not interleave). An s3:// journal holds one object per entry on a
backend (`journalstore`), written before the client is answered, so it outlives the replica
that wrote it. An entry names backends and backend bucket/key, never credentials.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass

from ..backends.backend import Backend, as_proxy
from ..config.journal import JournalPlace, journal_place
from ..s3.errors import S3Error
from ..telemetry import metrics
from .journalstore import JournalError, entry_body, new_entry_key, put_entry

log = logging.getLogger("s3router_proxy.mirror")


@dataclass(frozen=True)
class Divergence:
    """`mirror` may differ from `primary`: the object `bucket`/`key` on the primary, which the
    mirror holds as `mirror_bucket`/`mirror_key` (backend names; empty: the same names)."""

    primary: str
    mirror: str
    bucket: str
    key: str
    operation: str
    reason: str
    time: str = ""
    mirror_bucket: str = ""
    mirror_key: str = ""

    @property
    def on_mirror(self) -> tuple[str, str]:
        return self.mirror_bucket or self.bucket, self.mirror_key or self.key


async def record_divergence(
    journal: str | None, entry: Divergence, backends: Mapping[str, Backend]
) -> None:
    """Log, count and (with a journal configured) record one divergence. Never raises: a journal
    that cannot be written is logged at error level and counted, and the request goes on."""
    metrics.child(metrics.MIRROR_FAILURES, entry.mirror, entry.operation).inc()
    log.warning(
        "mirror %s diverged from %s on %s %s/%s: %s",
        entry.mirror,
        entry.primary,
        entry.operation,
        *entry.on_mirror,
        entry.reason,
    )
    if journal is None:
        return
    stamped = asdict(entry)
    stamped["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    place = journal_place(journal)
    if place is None:
        _append(journal, stamped)
        return
    # Shielded: a client that hangs up must not cancel the record of what its write missed.
    await asyncio.shield(_journaled(entry, place, backends, entry_body(stamped)))


async def _journaled(
    entry: Divergence, place: JournalPlace, backends: Mapping[str, Backend], body: bytes
) -> None:
    try:
        with as_proxy():  # the journal is the proxy's: the client may not even reach its bucket
            await put_entry(backends[place.backend], place, new_entry_key(place.prefix), body)
    except Exception as exc:  # whatever it is, the client's write has already succeeded
        metrics.child(metrics.MIRROR_JOURNAL_FAILURES, str(place)).inc()
        log.error(
            "cannot journal that mirror %s missed %s/%s (%s) in %s: %s",
            entry.mirror,
            *entry.on_mirror,
            entry.operation,
            place,
            _why(exc),
        )


def divergence_of(fields: Mapping[str, object]) -> Divergence:
    """A journal entry's fields as a Divergence; raises TypeError for unknown or missing ones."""
    if not isinstance(fields, Mapping):
        raise TypeError("not a mapping")
    return Divergence(**{k: str(v) for k, v in fields.items()})


def _why(exc: BaseException) -> str:
    if isinstance(exc, S3Error):
        return f"{exc.code}: {exc.message}"
    if isinstance(exc, JournalError):
        return str(exc)
    if isinstance(exc, KeyError):
        return "its backend is not configured"
    return type(exc).__name__


def _append(path: str, stamped: Mapping[str, str]) -> None:
    line = (json.dumps(stamped, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as exc:
        metrics.child(metrics.MIRROR_JOURNAL_FAILURES, "file").inc()
        log.error("cannot write the mirror journal %s: %s", path, exc.strerror)


def read_journal(path: str) -> Iterator[Divergence]:
    """The entries of a journal file, oldest first; malformed lines are skipped with a log."""
    with open(path, encoding="utf-8", errors="surrogatepass") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield divergence_of(json.loads(line))
            except (ValueError, TypeError):
                log.warning("%s:%d: not a journal entry; skipped", path, number)
