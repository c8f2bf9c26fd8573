"""`repair` of an s3:// journal, safe to run from several places at once (a CronJob, an operator
at a terminal, another cluster).

Each entry is claimed before it is replayed (`multi/journalstore.take_claim`), so an entry is
replayed by one repair at a time; one another repair holds is left to it. A repaired entry is
deleted, then its claim; a failed one is rewritten with the reason and its claim released, for
the next run. Entries of the same object are replayed once per run: every replay starts after
the listing, so it sees every write those entries stand for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import secrets
import time
from dataclasses import dataclass, field

from ..backends.backend import Backend
from ..config.journal import JournalPlace
from ..multi.journal import Divergence, divergence_of
from ..multi.journalstore import (
    JournalError,
    claim_key,
    claim_of,
    deleted,
    entry_body,
    entry_fields,
    fetched,
    listed,
    put_entry,
    take_claim,
)
from ..s3.errors import S3Error
from .repairentry import REPAIRED, Outcome, repair_one

log = logging.getLogger("s3router_proxy.repair")

_TROUBLE = (JournalError, S3Error, OSError, TimeoutError)


@dataclass
class SharedRun:
    """One repair's pass over an s3:// journal."""

    place: JournalPlace
    backends: dict[str, Backend]
    dry_run: bool
    holder: str = field(default_factory=lambda: secrets.token_hex(8))
    problems: list[str] = field(default_factory=list)  # entries that could not be handled
    _replays: dict[tuple[str, ...], asyncio.Future[Outcome]] = field(default_factory=dict)

    @property
    def store(self) -> Backend:
        return self.backends[self.place.backend]

    async def entry(self, key: str) -> Divergence | None:
        """The entry stored at `key`; None when it is gone or is not one (logged)."""
        got = await fetched(self.store, self.place, key)
        if got is None:
            return None
        try:
            return divergence_of(entry_fields(got[0]))
        except (JournalError, TypeError):
            log.warning("%s%s: not a journal entry; left as it is", self.place, key)
            return None

    async def replayed(self, entry: Divergence) -> Outcome:
        """`entry` replayed, or the outcome of its object's replay earlier in this run."""
        ident = (entry.primary, entry.mirror, entry.bucket, entry.key, *entry.on_mirror)
        if ident not in self._replays:
            self._replays[ident] = asyncio.ensure_future(
                repair_one(entry, self.backends, self.dry_run)
            )
        return dataclasses.replace(await self._replays[ident], entry=entry)

    async def one(self, key: str) -> Outcome | None:
        try:
            if self.dry_run:
                entry = await self.entry(key)
                return None if entry is None else await self.replayed(entry)
            if not await take_claim(self.store, self.place, key, self.holder, time.time()):
                entry = await self.entry(key)
                return None if entry is None else Outcome(entry, "claimed", "by another repair")
            entry = await self.entry(key)
            if entry is None:  # repaired by another run since the listing
                await deleted(self.store, self.place, claim_key(key))
                return None
            outcome = await self.replayed(entry)
            if outcome.action in REPAIRED:
                await deleted(self.store, self.place, key)
            else:
                fields = dataclasses.asdict(entry)
                fields["reason"] = f"repair failed: {outcome.reason}"
                await put_entry(self.store, self.place, key, entry_body(fields))
            await deleted(self.store, self.place, claim_key(key))
            return outcome
        except _TROUBLE as exc:
            self.problems.append(f"{self.place}{key[len(self.place.prefix) :]}: {_why(exc)}")
            return None

    async def sweep(self, entries: list[str], claims: set[str]) -> None:
        """Expired claims whose entry is gone (a repair stopped between the two deletes)."""
        for key in sorted(claims - {claim_key(e) for e in entries}):
            # (what ends in .claim only: an entry's own key never does)
            got = await fetched(self.store, self.place, key)
            claim = None if got is None else claim_of(got[0])
            if got is not None and (claim is None or not claim.live(time.time())):
                await deleted(self.store, self.place, key)


async def repair_shared(
    place: JournalPlace, backends: dict[str, Backend], *, dry_run: bool, concurrency: int = 8
) -> tuple[list[Outcome], list[str]]:
    """Every entry of the journal at `place` replayed once: (outcomes, problems). Raises
    JournalError (or S3Error) when the journal cannot be listed."""
    if place.backend not in backends:
        raise JournalError(f"backend {place.backend!r} is not configured")
    run = SharedRun(place, backends, dry_run)
    entries, claims = await listed(run.store, place)
    order = list(entries)
    random.shuffle(order)  # two repairs started together then rarely reach for the same entry
    gate = asyncio.Semaphore(concurrency)

    async def one(key: str) -> Outcome | None:
        async with gate:
            return await run.one(key)

    outcomes = await asyncio.gather(*(one(k) for k in order))
    if not dry_run:
        try:
            await run.sweep(entries, claims)
        except _TROUBLE as exc:
            log.warning("sweeping stale claims in %s: %s", place, _why(exc))
    return [o for o in outcomes if o is not None], run.problems


def _why(exc: BaseException) -> str:
    if isinstance(exc, S3Error):
        return f"{exc.code}: {exc.message}"
    if isinstance(exc, JournalError):
        return str(exc)
    return type(exc).__name__
