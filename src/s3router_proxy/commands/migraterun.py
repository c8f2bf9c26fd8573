"""One `migrate` (or `--verify`, or `--dry-run`) run: both listings walked side by side in key
order, what they prove decided at once, the rest copied (or compared) by `--concurrency`
workers, one report row per key.

The walk hands keys to the workers through a bounded queue, so memory does not grow with the
bucket; a second listing of the source (the census) runs ahead to count it for totals and an
ETA. Once `stopping` is set no new key is started; the copies in flight finish.

A run may take one shard of the keys (`migrateshard`) and read them from a key list instead of
a listing (`migratekeylist`): then each key is looked up with a HEAD on both sides, since a
list (an inventory a day old) says nothing sure of either.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field

from ..multi.copyacross import CopyResult
from ..routing.rules import Route
from ..s3.errors import S3Error
from .migratefiles import FileLocation
from .migratekeylist import listed_keys
from .migrateprogress import ProgressDisplay, Tally
from .migratereport import (
    Decision,
    Evidence,
    Location,
    ObjectInfo,
    ReportRow,
    ReportWriter,
    decide,
    dest_key,
)
from .migrateshard import Shard
from .migratestores import (
    Stores,
    copy_key,
    error_code,
    head_object,
    list_objects,
    object_sha256,
    paired,
)

log = logging.getLogger("s3router_proxy.migrate")
UNKNOWN_SIZE = -1  # a listed key before its HEAD
PROBLEMS_SHOWN = 20  # keys named on stderr when some fail, are missing or differ
PROBLEMS = frozenset({"failed", "missing", "different"})


@dataclass(frozen=True)
class Scope:
    """Which source keys a run takes: the keys of one shard, from a listing or a key list."""

    shard: Shard = field(default_factory=Shard)
    keys: FileLocation | None = None


@dataclass(frozen=True)
class Options:
    source: Location
    dest: Location
    concurrency: int = 16
    dry_run: bool = False
    verify: bool = False
    evidence: dict[str, Evidence] | None = None
    scope: Scope = field(default_factory=Scope)


class Migration:
    """One `migrate` (or `--verify`) run: the walk, the workers and the report."""

    def __init__(self, stores: Stores, options: Options, report: ReportWriter, tally: Tally):
        self.stores = stores
        self.options = options
        self.report = report
        self.tally = tally
        self.stopping = asyncio.Event()
        self.queue: asyncio.Queue[tuple[ObjectInfo, ObjectInfo | None] | str | None] = (
            asyncio.Queue(max(2 * options.concurrency, 8))
        )
        self.progress: ProgressDisplay | None = None
        self.problems: list[tuple[str, str]] = []  # the first few (status, key) gone wrong

    def record(self, row: ReportRow) -> None:
        self.report.write(row)
        if row.status in PROBLEMS and len(self.problems) < PROBLEMS_SHOWN:
            self.problems.append((row.status, row.key))
        self.tally.add(row.status, row.size or 0)
        if self.progress is not None:
            self.progress.update()

    def row(self, src: ObjectInfo, status: str, **fields: object) -> ReportRow:
        options = self.options
        return ReportRow(
            options.source.bucket,
            src.key,
            status,
            size=None if src.size == UNKNOWN_SIZE else src.size,
            etag=src.etag,
            dest_bucket=options.dest.bucket,
            dest_key=dest_key(src.key, options.source, options.dest),
            **fields,  # type: ignore[arg-type]
        )

    async def walk(self) -> None:
        """List both sides (or read the key list), decide what the listings can, queue the
        rest for the workers."""
        if self.options.scope.keys is not None:
            await self.walk_list(self.options.scope.keys)
        else:
            await self.walk_listings()
        for _ in range(self.options.concurrency):
            await self.queue.put(None)  # workers skip what is left once stopping

    async def walk_list(self, where: FileLocation) -> None:
        """Queue the key list's keys of this shard under the source prefix, as a listing of
        the source would show them."""
        prefix, shard = self.options.source.prefix, self.options.scope.shard
        keys = listed_keys(self.stores.backends, where)
        try:
            async for key in keys:
                if self.stopping.is_set():
                    break
                if key.startswith(prefix) and shard.holds(key):
                    self.tally.listed += 1
                    await self.queue.put(key)
        finally:
            await keys.aclose()

    async def walk_listings(self) -> None:
        stores, options = self.stores, self.options
        shard = options.scope.shard
        sources = list_objects(stores, options.source, stores.source_parts(options.source))
        dests = list_objects(stores, options.dest, stores.dest_parts(options.dest))
        pairs = paired(sources, dests, options.source, options.dest)
        try:
            async for src, dst in pairs:
                if self.stopping.is_set():
                    break
                if src is None:
                    key = "" if dst is None else dest_key(dst.key, options.dest, options.source)
                    if options.verify and dst is not None and shard.holds(key):
                        self.record(
                            ReportRow(
                                options.source.bucket,
                                key,
                                "extra",
                                reason="only at the destination",
                                dest_bucket=options.dest.bucket,
                                dest_key=dst.key,
                                dest_etag=dst.etag,
                                size=dst.size,
                            )
                        )
                    continue
                if not shard.holds(src.key):
                    continue
                self.tally.listed += 1
                self.tally.listed_bytes += src.size
                decision = decide(src, dst, self._evidence(src))
                if decision.action == "skip":
                    status = "verified" if options.verify else "skipped"
                    self.record(self.row(src, status, reason=decision.reason, dest_etag=dst.etag))  # type: ignore[union-attr]
                elif options.verify and dst is None:
                    self.record(self.row(src, "missing", reason=decision.reason))
                elif options.dry_run and decision.action == "copy":
                    self.record(self.row(src, "would-copy", reason=decision.reason))
                else:
                    await self.queue.put((src, dst))
        finally:
            await pairs.aclose()
            await sources.aclose()
            await dests.aclose()

    async def census(self) -> None:
        """Count the source (objects and bytes) ahead of the walk, for totals and an ETA."""
        stores, source, tally = self.stores, self.options.source, self.tally
        shard = self.options.scope.shard
        if self.options.scope.keys is not None:
            return  # a key list is read once: the walk's count becomes the total
        objects = list_objects(stores, source, stores.source_parts(source))
        try:
            async for item in objects:
                if not shard.holds(item.key):
                    continue
                tally.total_objects += 1
                tally.total_bytes += item.size
        except S3Error as error:  # the walk lists too, and reports what fails
            log.debug("counting %s: %s", source, error)
            return
        finally:
            await objects.aclose()
        tally.totals_known = True

    def _evidence(self, src: ObjectInfo) -> Evidence | None:
        return None if self.options.evidence is None else self.options.evidence.get(src.key)

    async def worker(self) -> None:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            if self.stopping.is_set():
                continue  # not started: the next run takes it
            src, dst = (ObjectInfo(item, UNKNOWN_SIZE, ""), None) if isinstance(item, str) else item
            try:
                if isinstance(item, str):
                    await self.handle_listed(item)
                else:
                    await self.handle(src, dst)
            except asyncio.CancelledError:
                self.record(self.row(src, "failed", error_code="Interrupted", reason="cancelled"))
                raise
            except S3Error as error:
                self.record(
                    self.row(
                        src,
                        "failed",
                        http_status=error.status,
                        error_code=error_code(error),
                        reason=error.message or "",
                    )
                )
            except Exception as exc:  # one odd key must not end the run: report it, go on
                log.exception("copying %r failed", src.key)
                reason = f"{type(exc).__name__}: {exc}"
                self.record(self.row(src, "failed", error_code="InternalError", reason=reason))

    async def handle_listed(self, key: str) -> None:
        """A key of a key list: both sides asked with a HEAD, then decided as a listed one."""
        stores, options = self.stores, self.options
        source_route = stores.source_route(options.source.bucket, key)
        source_backend = stores.backends[source_route.backend]
        src = await stores.retrying(lambda: head_object(source_backend, source_route, key))
        if src is None:
            raise S3Error("NoSuchKey", "The key list names a key the source does not hold.")
        self.tally.listed_bytes += src.size
        target = dest_key(key, options.source, options.dest)
        dest_route = stores.dest_route(options.dest.bucket, target, src.size)
        dest_backend = stores.backends[dest_route.backend]
        dst = await stores.retrying(lambda: head_object(dest_backend, dest_route, target))
        await self.handle(src, dst)

    async def handle(self, src: ObjectInfo, dst: ObjectInfo | None) -> None:
        stores, options = self.stores, self.options
        key = dest_key(src.key, options.source, options.dest)
        source_route = stores.source_route(options.source.bucket, src.key)
        dest_route = stores.dest_route(options.dest.bucket, key, src.size)
        evidence = self._evidence(src)
        decision = decide(src, dst, evidence)
        if decision.action == "check":
            source_backend = stores.backends[source_route.backend]
            dest_backend = stores.backends[dest_route.backend]
            source_key = src.key
            headed, dst = await asyncio.gather(
                stores.retrying(lambda: head_object(source_backend, source_route, source_key)),
                stores.retrying(lambda: head_object(dest_backend, dest_route, key)),
            )
            if headed is None:
                raise S3Error("NoSuchKey", "The source object was deleted during the run.")
            src = headed
            decision = decide(src, dst, evidence)
        if options.verify:
            await self._verify(src, dst, decision, source_route, dest_route)
        elif decision.action == "skip":
            self.record(self.row(src, "skipped", reason=decision.reason, dest_etag=dst.etag))  # type: ignore[union-attr]
        elif options.dry_run:
            self.record(self.row(src, "would-copy", reason=decision.reason))
        else:
            transfer = self.tally.transfer()

            def attempt() -> Awaitable[CopyResult]:
                transfer.restart()
                return copy_key(stores, source_route, dest_route, src.etag, transfer)

            try:
                result = await stores.retrying(attempt)
            finally:
                transfer.restart()  # counted whole below, or not at all
            self.record(
                self.row(
                    src,
                    "copied",
                    reason=decision.reason,
                    dest_etag=result.etag,
                    dest_version_id=result.version_id or "",
                )
            )

    async def _verify(
        self,
        src: ObjectInfo,
        dst: ObjectInfo | None,
        decision: Decision,
        source_route: Route,
        dest_route: Route,
    ) -> None:
        if dst is None:
            self.record(self.row(src, "missing", reason="not at the destination"))
            return
        if decision.action == "skip":
            self.record(self.row(src, "verified", reason=decision.reason, dest_etag=dst.etag))
            return
        if dst.size == src.size and decision.reason.startswith("multipart ETag"):
            backends = self.stores.backends
            mine, theirs = await asyncio.gather(
                object_sha256(backends[source_route.backend], source_route),
                object_sha256(backends[dest_route.backend], dest_route),
            )
            if mine == theirs:
                self.record(self.row(src, "verified", reason="same SHA-256", dest_etag=dst.etag))
                return
            decision = Decision("copy", "SHA-256 differs")
        self.record(self.row(src, "different", reason=decision.reason, dest_etag=dst.etag))

    async def run(self) -> None:
        """Walk and copy until done; a failed listing or a cancel stops every worker."""
        workers = [asyncio.create_task(self.worker()) for _ in range(self.options.concurrency)]
        census = asyncio.create_task(self.census())
        walker = asyncio.create_task(self.walk())
        try:
            await walker
            self._walked()
            census.cancel()
            await asyncio.gather(*workers)
        except BaseException:
            self.stopping.set()
            for task in (census, walker, *workers):
                task.cancel()
            await asyncio.gather(census, walker, *workers, return_exceptions=True)
            raise

    def _walked(self) -> None:
        """The walk saw the whole source: its count is the total (the census is only ahead)."""
        tally = self.tally
        if not self.stopping.is_set():
            tally.total_objects, tally.total_bytes = tally.listed, tally.listed_bytes
            tally.totals_known = True
