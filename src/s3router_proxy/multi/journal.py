"""The divergence journal: what a mirror did not get, so `lakefs-s3-router repair` can fix it.

One JSON object a line, appended with O_APPEND (a line is one write, so workers sharing the
file do not interleave). A line names backends and backend bucket/key, never credentials.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from ..telemetry import metrics

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


def record_divergence(path: str | None, entry: Divergence) -> None:
    """Log, count and (with a journal configured) append one divergence."""
    metrics.child(metrics.MIRROR_FAILURES, entry.mirror, entry.operation).inc()
    log.warning(
        "mirror %s diverged from %s on %s %s/%s: %s",
        entry.mirror,
        entry.primary,
        entry.operation,
        *entry.on_mirror,
        entry.reason,
    )
    if path is None:
        return
    stamped = asdict(entry)
    stamped["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    line = (json.dumps(stamped, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as exc:
        log.error("cannot write the mirror journal %s: %s", path, exc.strerror)


def read_journal(path: str) -> Iterator[Divergence]:
    """The entries of a journal file, oldest first; malformed lines are skipped with a log."""
    with open(path, encoding="utf-8", errors="surrogatepass") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                fields = json.loads(line)
                yield Divergence(**{k: str(v) for k, v in fields.items()})
            except (ValueError, TypeError):
                log.warning("%s:%d: not a journal entry; skipped", path, number)
