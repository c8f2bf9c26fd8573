"""`lakefs-s3-router repair`: make mirrors equal to their target again, from the journal.

Best-effort mirroring records every write a mirror missed in `router.mirror_journal`. Repair
reads it and, for each (target, mirror, bucket, key) once: when the target has the object and
the mirror does not have the same one (size and ETag), it is copied target → mirror (streamed);
when the target does not have it, the mirror's copy is deleted. Entries that cannot be repaired
now are written back to the journal; entries the proxy appends meanwhile are kept.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass

from ..backends.backend import Backend
from ..backends.call import backend_exchange
from ..backends.transfer import StoredObject
from ..multi.copyacross import copy_object_across
from ..multi.journal import Divergence, read_journal, record_divergence
from ..s3.errors import S3Error
from .base import command_config, command_parser, parse_command_args


@dataclass(frozen=True)
class Outcome:
    entry: Divergence
    action: str  # copied, deleted, in-sync, failed, would-copy, would-delete
    reason: str = ""


async def _head(backend: Backend, bucket: str, key: str) -> tuple[int, str, str]:
    """(status, Content-Length, ETag) of an object."""
    status, headers, _ = await backend_exchange(backend, "HEAD", bucket, key, [])
    return status, headers.get("Content-Length", ""), headers.get("ETag", "")


async def repair_one(entry: Divergence, backends: dict[str, Backend], dry_run: bool) -> Outcome:
    primary, mirror = backends.get(entry.primary), backends.get(entry.mirror)
    if primary is None or mirror is None:
        return Outcome(entry, "failed", "backend no longer configured")
    mirror_bucket, mirror_key = entry.on_mirror
    try:
        status, size, etag = await _head(primary, entry.bucket, entry.key)
        if status == 404:
            if dry_run:
                return Outcome(entry, "would-delete")
            gone, _, _ = await backend_exchange(mirror, "DELETE", mirror_bucket, mirror_key, [])
            if gone >= 300 and gone != 404:
                return Outcome(entry, "failed", f"deleting on the mirror: status {gone}")
            return Outcome(entry, "deleted")
        if status != 200:
            return Outcome(entry, "failed", f"reading the target: status {status}")
        theirs = await _head(mirror, mirror_bucket, mirror_key)
        if theirs == (200, size, etag):
            return Outcome(entry, "in-sync")
        if dry_run:
            return Outcome(entry, "would-copy")
        await copy_object_across(
            StoredObject(primary, entry.bucket, entry.key),
            StoredObject(mirror, mirror_bucket, mirror_key),
            {},
        )
        return Outcome(entry, "copied")
    except S3Error as error:
        return Outcome(entry, "failed", f"{error.code}: {error.message}")
    except (OSError, TimeoutError) as exc:
        return Outcome(entry, "failed", type(exc).__name__)


async def repair(
    journal: str, backends: dict[str, Backend], *, dry_run: bool, concurrency: int = 8
) -> list[Outcome]:
    """Repair every journaled divergence once; what is left is written back to the journal."""
    working = journal if dry_run else journal + ".repairing"
    if not dry_run:
        if os.path.exists(working):
            # An interrupted repair: its entries go first, then whatever was appended since.
            if os.path.exists(journal):
                with open(journal, "rb") as newer, open(working, "ab") as older:
                    older.write(newer.read())
                os.unlink(journal)
        elif os.path.exists(journal):
            os.replace(journal, working)  # the proxy appends to a fresh file meanwhile
    if not os.path.exists(working):
        return []
    latest: dict[tuple[str, ...], Divergence] = {}
    for entry in read_journal(working):
        latest[(entry.primary, entry.mirror, entry.bucket, entry.key, *entry.on_mirror)] = entry
    gate = asyncio.Semaphore(concurrency)

    async def one(entry: Divergence) -> Outcome:
        async with gate:
            return await repair_one(entry, backends, dry_run)

    outcomes = await asyncio.gather(*(one(e) for e in latest.values()))
    if not dry_run:
        for outcome in outcomes:
            if outcome.action == "failed":
                record_divergence(
                    journal,
                    Divergence(
                        primary=outcome.entry.primary,
                        mirror=outcome.entry.mirror,
                        bucket=outcome.entry.bucket,
                        key=outcome.entry.key,
                        operation=outcome.entry.operation,
                        reason=f"repair failed: {outcome.reason}",
                        mirror_bucket=outcome.entry.mirror_bucket,
                        mirror_key=outcome.entry.mirror_key,
                    ),
                )
        os.unlink(working)
    return list(outcomes)


REPAIR_EXAMPLE = """\
examples:
  lakefs-s3-router repair --config router.yaml --dry-run    # what would be copied or deleted
  lakefs-s3-router repair --config router.yaml
  lakefs-s3-router repair --config router.yaml --journal /var/lib/s3-router/mirror.jsonl

Exit status: 0 when every entry was repaired (or nothing was journaled yet), 1 when some
failed (they stay in the journal), 2 for a bad config or a --journal that does not exist."""


def _missing_journal(journal: str, explicit: bool) -> str | None:
    """Why an absent `journal` is a mistake, or None when it only means nothing was journaled.

    The proxy creates its journal at the first write a mirror misses, so the config's own
    journal may rightly be absent; a --journal the operator named, or a journal in a directory
    that does not exist, is a mistake (a typo, or not the host the proxy writes on)."""
    if explicit:
        return f"no journal at {journal}: --journal names a file that does not exist"
    directory = os.path.dirname(os.path.abspath(journal))
    if not os.path.isdir(directory):
        return (
            f"no journal at {journal}: its directory {directory} does not exist "
            "(is this the host or volume the proxy writes router.mirror_journal on?)"
        )
    return None


def repair_main(argv: list[str]) -> int:
    parser = command_parser(
        "repair",
        "Copy to mirrors (or delete from them) what best-effort mirroring missed.",
        REPAIR_EXAMPLE,
    )
    parser.add_argument(
        "--journal", metavar="FILE", help="the journal file (default: router.mirror_journal)"
    )
    parser.add_argument("--dry-run", action="store_true", help="say what would be done")
    args = parse_command_args(parser, argv)
    config = command_config(args, "lakefs-s3-router repair")
    if config is None:
        return 2
    journal = args.journal or config.mirror_journal
    if not journal:
        print(
            "lakefs-s3-router repair: no journal: set router.mirror_journal or pass --journal",
            file=sys.stderr,
        )
        return 2
    if not os.path.exists(journal) and not os.path.exists(journal + ".repairing"):
        problem = _missing_journal(journal, explicit=bool(args.journal))
        if problem is not None:
            print(f"lakefs-s3-router repair: {problem}", file=sys.stderr)
            return 2
        print(
            f"lakefs-s3-router repair: 0 entries, nothing to repair: {journal} does not exist "
            "yet (the proxy creates it at the first write a mirror misses)",
            file=sys.stderr,
        )
        return 0

    async def run() -> list[Outcome]:
        backends = {name: Backend(c) for name, c in config.backends.items()}
        try:
            return await repair(journal, backends, dry_run=args.dry_run)
        finally:
            await asyncio.gather(*(b.close() for b in backends.values()))

    outcomes = asyncio.run(run())
    for outcome in outcomes:
        entry = outcome.entry
        bucket, key = entry.on_mirror
        line = f"{outcome.action:12} {entry.mirror} {bucket}/{key}"
        print(line + (f"  ({outcome.reason})" if outcome.reason else ""))
    failed = sum(1 for o in outcomes if o.action == "failed")
    print(f"{len(outcomes)} entries, {failed} failed", file=sys.stderr)
    return 1 if failed else 0
