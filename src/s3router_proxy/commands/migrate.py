"""`lakefs-s3-router migrate`: copy every object of one logical location to another.

Runs in-process from the proxy's config, without a running proxy: both locations are logical
names, so routing, renaming and split buckets apply exactly as they would to a client. The
source is listed where its reads go (GetObject routing), the destination where its writes go
(PutObject routing, with the object's size for size conditions); a bucket split over several
stores lists as one merged, key-ordered view (`listing.merged_list`). Rules' `fallback:` and
`mirror:` backends are not used: migrate reads the target and writes the target.

Both listings stream a page (1000 keys) at a time and are walked side by side in key order, so
memory does not grow with the bucket: keys the destination already holds, provably equal
(`migratereport.decide`), are skipped without a request; the others go through a bounded queue
to `--concurrency` workers. A copy within one store is a server-side CopyObject; across stores
it streams GET into PUT (`multi.copyacross.copy_object_across`). Both carry the listed ETag as an
`if-match` condition, so an object that changes mid-run fails instead of mixing versions.

A second listing of the source runs ahead of the walk to count it, so progress shows totals,
rates and an ETA early (`migrateprogress`); it costs one LIST request per 1000 keys.

SIGINT (or SIGTERM) stops taking keys and lets the copies in flight finish; a second one
cancels them (an interrupted cross-store PUT leaves no partial object). Exit codes: 0 done,
1 some keys failed (or `--verify` found differences), 2 bad usage or config, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Awaitable
from dataclasses import dataclass

from ..backends.backend import Backend
from ..config.load import load_config
from ..config.model import EMBEDDED, Config
from ..config.reader import ConfigError
from ..multi.copyacross import CopyResult
from ..routing.rules import Route
from ..s3.errors import S3Error
from ..serving.embedded import running_stores
from .migrateprogress import ProgressDisplay, Tally, progress_display
from .migratereport import (
    Decision,
    Evidence,
    Location,
    ObjectInfo,
    ReportRow,
    ReportWriter,
    decide,
    default_report_name,
    dest_key,
    load_evidence,
    overlapping,
    parse_location,
)
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
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad arguments or a config migrate cannot use (exit 2)."""


# -- one run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    source: Location
    dest: Location
    concurrency: int = 16
    dry_run: bool = False
    verify: bool = False
    evidence: dict[str, Evidence] | None = None


class Migration:
    """One `migrate` (or `--verify`) run: the walk, the workers and the report."""

    def __init__(self, stores: Stores, options: Options, report: ReportWriter, tally: Tally):
        self.stores = stores
        self.options = options
        self.report = report
        self.tally = tally
        self.stopping = asyncio.Event()
        self.queue: asyncio.Queue[tuple[ObjectInfo, ObjectInfo | None] | None] = asyncio.Queue(
            max(2 * options.concurrency, 8)
        )
        self.progress: ProgressDisplay | None = None

    def record(self, row: ReportRow) -> None:
        self.report.write(row)
        self.tally.add(row.status, row.size or 0)
        if self.progress is not None:
            self.progress.update()

    def row(self, src: ObjectInfo, status: str, **fields: object) -> ReportRow:
        options = self.options
        return ReportRow(
            options.source.bucket,
            src.key,
            status,
            size=src.size,
            etag=src.etag,
            dest_bucket=options.dest.bucket,
            dest_key=dest_key(src.key, options.source, options.dest),
            **fields,  # type: ignore[arg-type]
        )

    async def walk(self) -> None:
        """List both sides, decide what the listings can, queue the rest for the workers."""
        stores, options = self.stores, self.options
        sources = list_objects(stores, options.source, stores.source_parts(options.source))
        dests = list_objects(stores, options.dest, stores.dest_parts(options.dest))
        pairs = paired(sources, dests, options.source, options.dest)
        try:
            async for src, dst in pairs:
                if self.stopping.is_set():
                    break
                if src is None:
                    if options.verify and dst is not None:
                        key = options.source.prefix + dst.key[len(options.dest.prefix) :]
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
        for _ in range(self.options.concurrency):
            await self.queue.put(None)  # workers skip what is left once stopping

    async def census(self) -> None:
        """Count the source (objects and bytes) ahead of the walk, for totals and an ETA."""
        stores, source, tally = self.stores, self.options.source, self.tally
        objects = list_objects(stores, source, stores.source_parts(source))
        try:
            async for item in objects:
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
            src, dst = item
            try:
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


# -- the command ----------------------------------------------------------------------------------


MIGRATE_EXAMPLE = """\
examples:
  lakefs-s3-router migrate --config router.yaml s3://analytics s3://lakefs-demo/main/ --dry-run
  lakefs-s3-router migrate --config router.yaml s3://analytics s3://lakefs-demo/main/
  lakefs-s3-router migrate --config router.yaml s3://analytics s3://lakefs-demo/main/ --verify"""


def build_parser() -> argparse.ArgumentParser:
    from .base import ExamplesHelpFormatter

    parser = argparse.ArgumentParser(
        prog="lakefs-s3-router migrate",
        description=(
            "Copy every object under SOURCE to DEST (logical names: the config's routing and "
            "renaming apply). Keys the destination already holds with the same size and ETag "
            "(or checksum) are skipped, so a rerun resumes."
        ),
        epilog=MIGRATE_EXAMPLE,
        formatter_class=ExamplesHelpFormatter,
    )
    parser.add_argument("--config", required=True, help="the proxy's config file")
    parser.add_argument(
        "--environment", help="config document (default: $S3_ROUTER_ENVIRONMENT, else $ENVIRONMENT)"
    )
    parser.add_argument("source", help="s3://bucket[/prefix]")
    parser.add_argument("dest", help="s3://bucket[/prefix]")
    parser.add_argument("--concurrency", type=int, default=16, help="copies at once (16)")
    parser.add_argument("--dry-run", action="store_true", help="decide and report, copy nothing")
    parser.add_argument(
        "--verify", action="store_true", help="compare both sides and report; copy nothing"
    )
    parser.add_argument("--report", help="CSV report path (migrate-report-<UTC time>.csv)")
    parser.add_argument(
        "--previous-report",
        action="append",
        default=[],
        metavar="FILE",
        help="an earlier run's report: proves copies a size + ETag check cannot (repeatable)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    parser.add_argument(
        "--progress-interval",
        type=float,
        metavar="SECONDS",
        help="seconds between progress updates (a bar on a terminal: 0.25; lines otherwise: 10)",
    )
    return parser


def open_stores(config: Config, source: Location, dest: Location) -> Stores:
    """Backends for the stores both locations route to; UsageError when that cannot work."""
    stores = Stores(config, {}, config.secret or os.urandom(32))
    embedded = [b for b in config.backends.values() if b.endpoint == EMBEDDED]
    running = running_stores(config.source) if embedded else {}
    for name, backend_config in config.backends.items():
        if backend_config.endpoint == EMBEDDED:
            if name not in running:
                continue  # demo stores only exist inside a running proxy
            backend_config = dataclasses.replace(backend_config, endpoint=running[name])
        stores.backends[name] = Backend(backend_config)
    for location, parts in (
        (source, stores.source_parts(source)),
        (dest, stores.dest_parts(dest)),
    ):
        if not parts:
            raise UsageError(f"{location}: no routing rule serves bucket {location.bucket!r}")
        for part in parts:
            if part.backend not in stores.backends:
                raise UsageError(
                    f"{location}: backend {part.backend!r} is an embedded demo store, and no "
                    f"proxy with {config.source} runs to hold it: start `lakefs-s3-router "
                    f"--config {config.source}` first, then migrate with the same file"
                )
    return stores


async def run(args: argparse.Namespace, config: Config, report_path: str) -> int:
    source, dest = parse_location(args.source), parse_location(args.dest)
    evidence = load_evidence(args.previous_report) if args.previous_report else None
    stores = open_stores(config, source, dest)
    if overlapping(source, dest) and {
        (p.backend, p.bucket) for p in stores.source_parts(source)
    } & {(p.backend, p.bucket) for p in stores.dest_parts(dest)}:
        await stores.close()
        raise UsageError(f"{source} and {dest} overlap: a copy would list its own output")
    for backend in stores.backends.values():
        if backend.credentials.refreshable:
            backend.refresher = asyncio.create_task(backend.credentials.refresh_forever())
    options = Options(source, dest, args.concurrency, args.dry_run, args.verify, evidence)
    tally = Tally()
    report = ReportWriter.open(report_path)
    migration = Migration(stores, options, report, tally)
    if not args.no_progress:
        migration.progress = progress_display(sys.stderr, tally, args.progress_interval)
    interrupts = 0
    task = asyncio.current_task()

    def interrupt() -> None:
        nonlocal interrupts
        interrupts += 1
        migration.stopping.set()
        if interrupts == 1:
            print(
                "\nmigrate: interrupted; finishing the copies in flight (again to cancel them)",
                file=sys.stderr,
            )
        elif task is not None:
            task.cancel()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    failure: S3Error | None = None
    ticker = asyncio.create_task(_tick(migration.progress))
    try:
        await migration.run()
    except asyncio.CancelledError:
        pass
    except S3Error as error:  # a listing failed: nothing more can be decided
        failure = error
    finally:
        ticker.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if migration.progress is not None:
            migration.progress.finish()
        report.close()
        await stores.close()
    what = "verify" if args.verify else "dry run" if args.dry_run else "migrate"
    print(f"{what} {source} -> {dest}: {tally.summary()}; report {report_path}")
    if failure is not None:
        print(
            f"lakefs-s3-router migrate: {error_code(failure)}: {failure.message}",
            file=sys.stderr,
        )
        return EXIT_USAGE if failure.code == "NoSuchBucket" else EXIT_FAILED
    if interrupts:
        return EXIT_INTERRUPTED
    bad = sum(tally.count(status) for status in ("failed", "missing", "different"))
    return EXIT_FAILED if bad else EXIT_OK


async def _tick(progress: ProgressDisplay | None) -> None:
    """Refresh the progress line while nothing finishes (a large object in flight)."""
    while progress is not None:
        await asyncio.sleep(progress.interval)
        progress.update()


def migrate_main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.concurrency < 1:
        print("lakefs-s3-router migrate: --concurrency must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if args.progress_interval is not None and not args.progress_interval > 0:
        print("lakefs-s3-router migrate: --progress-interval must be above 0", file=sys.stderr)
        return EXIT_USAGE
    if args.dry_run and args.verify:
        print(
            "lakefs-s3-router migrate: --dry-run and --verify exclude each other", file=sys.stderr
        )
        return EXIT_USAGE
    logging.basicConfig(level=logging.WARNING, format="migrate: %(levelname)s %(message)s")
    try:
        parse_location(args.source), parse_location(args.dest)
        config = load_config(args.config, environment=args.environment)
        return asyncio.run(run(args, config, args.report or default_report_name()))
    except (ConfigError, UsageError, ValueError) as exc:
        print(f"lakefs-s3-router migrate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
