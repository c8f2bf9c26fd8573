"""`lakefs-s3-router repair`: make mirrors equal to their target again, from the journal.

Best-effort mirroring records every write a mirror missed in `router.mirror_journal`. Repair
reads it and, for each (target, mirror, bucket, key) once: when the target has the object and
the mirror does not have the same one (size and ETag), it is copied target → mirror (streamed);
when the target does not have it, the mirror's copy is deleted. Replaying an entry twice changes
nothing, since each replay compares the stores as they are now.

A local journal file is taken whole by one repair; entries that cannot be repaired now are
written back to it, and entries the proxy appends meanwhile are kept. An s3:// journal may be
repaired from several places at once (`repairshared`): each entry is claimed before it is
replayed, deleted once repaired, and kept with its reason updated when it failed.
"""

from __future__ import annotations

import asyncio
import os
import sys

from ..backends.backend import Backend
from ..config.journal import journal_place
from ..multi.journal import Divergence, read_journal, record_divergence
from ..multi.journalstore import JournalError
from ..s3.errors import S3Error
from .base import command_config, command_parser, parse_command_args
from .repairentry import Outcome, repair_one
from .repairshared import repair_shared


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
                await record_divergence(
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
                    backends,
                )
        os.unlink(working)
    return list(outcomes)


REPAIR_EXAMPLE = """\
examples:
  lakefs-s3-router repair --config router.yaml --dry-run    # what would be copied or deleted
  lakefs-s3-router repair --config router.yaml
  lakefs-s3-router repair --config router.yaml --journal /var/lib/s3-router/mirror.jsonl
  lakefs-s3-router repair --config router.yaml --journal s3://minio/s3-router-journal/mirror/

An s3:// journal (one object per entry on a configured backend) may be repaired from several
places at once: each entry is claimed first, and one another repair holds is left to it.

Exit status: 0 when every entry was repaired (or nothing was journaled yet), 1 when some
failed (they stay in the journal) or the journal could not be read, 2 for a bad config or a
--journal that does not exist."""


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
        "--journal",
        metavar="FILE|s3://BACKEND/BUCKET/PREFIX",
        help="the journal (default: router.mirror_journal)",
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
    try:
        place = journal_place(journal)
    except ValueError as exc:
        print(f"lakefs-s3-router repair: --journal: {exc}", file=sys.stderr)
        return 2
    if place is not None and place.backend not in config.backends:
        print(
            f"lakefs-s3-router repair: --journal: backend {place.backend!r} is not in the "
            f"config's backends ({', '.join(sorted(config.backends))})",
            file=sys.stderr,
        )
        return 2
    if place is None and not os.path.exists(journal) and not os.path.exists(journal + ".repairing"):
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

    async def run() -> tuple[list[Outcome], list[str]]:
        backends = {name: Backend(c) for name, c in config.backends.items()}
        try:
            if place is None:
                return await repair(journal, backends, dry_run=args.dry_run), []
            return await repair_shared(place, backends, dry_run=args.dry_run)
        finally:
            await asyncio.gather(*(b.close() for b in backends.values()))

    try:
        outcomes, problems = asyncio.run(run())
    except (JournalError, S3Error) as exc:
        why = f"{exc.code}: {exc.message}" if isinstance(exc, S3Error) else str(exc)
        print(f"lakefs-s3-router repair: cannot read the journal {journal}: {why}", file=sys.stderr)
        return 1
    for outcome in outcomes:
        entry = outcome.entry
        bucket, key = entry.on_mirror
        line = f"{outcome.action:12} {entry.mirror} {bucket}/{key}"
        print(line + (f"  ({outcome.reason})" if outcome.reason else ""))
    for problem in problems:
        print(f"lakefs-s3-router repair: {problem}", file=sys.stderr)
    failed = sum(1 for o in outcomes if o.action == "failed") + len(problems)
    print(f"{len(outcomes)} entries, {failed} failed", file=sys.stderr)
    return 1 if failed else 0
