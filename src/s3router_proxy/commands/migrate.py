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

`--shard I/N` takes one shard of the keys (`migrateshard`), so N processes (a Kubernetes
Indexed Job) copy a bucket together, each key once; `--keys FILE` reads the keys from an S3
Inventory manifest or a Batch Operations CSV instead of listing the source (`migratekeylist`).
A report may live on a store (`--report s3://<backend>/<bucket>/<key>`): written locally,
uploaded every `--report-upload-interval` seconds and at the end (`migratefiles`).

SIGINT (or SIGTERM) stops taking keys and lets the copies in flight finish; a second one
cancels them (an interrupted cross-store PUT leaves no partial object). Exit codes: 0 done,
1 some keys failed (or `--verify` found differences), 2 bad usage or config, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path

from ..backends.backend import Backend
from ..config.load import load_config
from ..config.model import EMBEDDED, Config
from ..config.reader import ConfigError
from ..s3.errors import S3Error
from ..serving.embedded import running_stores
from .migratefiles import FileLocation, ReportUpload, StoreFile, parse_file_location
from .migrateprogress import ProgressDisplay, Tally, progress_display
from .migratereport import (
    Location,
    ReportWriter,
    default_report_name,
    load_evidence,
    overlapping,
    parse_location,
)
from .migraterun import Migration, Options, Scope
from .migrateshard import Shard, parse_shard
from .migratestores import Stores, error_code

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
REPORT_UPLOAD_INTERVAL = 300.0


class UsageError(Exception):
    """Bad arguments or a config migrate cannot use (exit 2)."""


MIGRATE_EXAMPLE = """\
examples:
  lakefs-s3-router migrate --config router.yaml s3://analytics s3://lakefs-demo/main/ --dry-run
  lakefs-s3-router migrate --config router.yaml s3://analytics s3://lakefs-demo/main/
  lakefs-s3-router migrate --config router.yaml s3://analytics s3://lakefs-demo/main/ --verify
  lakefs-s3-router migrate --config router.yaml s3://analytics s3://lakefs-demo/main/ \\
      --shard 2/8 --report s3://minio/migrate-reports/run-1/
  lakefs-s3-router migrate --config router.yaml s3://analytics s3://lakefs-demo/main/ \\
      --keys s3://s3/inventory/analytics/daily/2026-12-01T01-00Z/manifest.json"""


def build_parser() -> argparse.ArgumentParser:
    from .base import ExamplesHelpFormatter, argument_type

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
    parser.add_argument(
        "--report",
        help=(
            "CSV report: a path or s3://<backend>/<bucket>/<key> (default: "
            "migrate-report-<UTC time>[-shard-I-of-N].csv; a value ending in / is a folder)"
        ),
    )
    parser.add_argument(
        "--report-upload-interval",
        type=float,
        default=REPORT_UPLOAD_INTERVAL,
        metavar="SECONDS",
        help="seconds between uploads of an s3:// report while the run goes on (300)",
    )
    parser.add_argument(
        "--shard",
        type=argument_type(parse_shard),
        default=Shard(),
        metavar="I/N",
        help="take only shard I of N (0 <= I < N): N runs with 0/N ... N-1/N copy every key once",
    )
    parser.add_argument(
        "--keys",
        metavar="FILE",
        help=(
            "read the source keys from an S3 Inventory manifest.json (CSV) or a Batch "
            "Operations CSV (bucket,key[,versionId]) instead of listing: a path or "
            "s3://<backend>/<bucket>/<key>"
        ),
    )
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
            backend_config = backend_config.running_at(running[name])
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


def report_name(shard: Shard) -> str:
    """The default report name; a shard's says which, so N shards write N reports."""
    suffix = "" if shard.whole else f"-shard-{shard.index}-of-{shard.count}"
    return default_report_name(suffix=suffix)


def report_target(args: argparse.Namespace, stores: Stores) -> tuple[Path, StoreFile | None]:
    """Where the report is written, and the store it is uploaded to (if any)."""
    wanted = args.report or ""
    if not wanted or wanted.endswith("/"):
        wanted += report_name(args.shard)
    target = parse_file_location(wanted, stores.backends)
    if isinstance(target, Path):
        return target, None
    handle, local = tempfile.mkstemp(prefix="migrate-report-", suffix=".csv")
    os.close(handle)
    return Path(local), target


async def run(args: argparse.Namespace, config: Config) -> int:
    source, dest = parse_location(args.source), parse_location(args.dest)
    evidence = load_evidence(args.previous_report) if args.previous_report else None
    stores = open_stores(config, source, dest)
    try:
        keys: FileLocation | None = None
        if args.keys is not None:
            keys = parse_file_location(args.keys, stores.backends)
            if isinstance(keys, Path) and not keys.is_file():
                raise UsageError(f"--keys {args.keys}: no such file")
        report_path, uploaded_to = report_target(args, stores)
    except BaseException:
        await stores.close()
        raise
    if overlapping(source, dest) and {
        (p.backend, p.bucket) for p in stores.source_parts(source)
    } & {(p.backend, p.bucket) for p in stores.dest_parts(dest)}:
        await stores.close()
        raise UsageError(f"{source} and {dest} overlap: a copy would list its own output")
    for backend in stores.backends.values():
        if backend.credentials.refreshable:
            backend.refresher = asyncio.create_task(backend.credentials.refresh_forever())
    scope = Scope(args.shard, keys)
    options = Options(source, dest, args.concurrency, args.dry_run, args.verify, evidence, scope)
    tally = Tally()
    report = ReportWriter.open(report_path)
    upload = None
    if uploaded_to is not None:
        upload = ReportUpload(
            stores.backends, report_path, uploaded_to, args.report_upload_interval
        )
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
    uploads = asyncio.create_task(upload.every_interval()) if upload is not None else None
    try:
        await migration.run()
    except asyncio.CancelledError:
        pass
    except S3Error as error:  # a listing failed: nothing more can be decided
        failure = error
    finally:
        ticker.cancel()
        if uploads is not None:
            uploads.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if migration.progress is not None:
            migration.progress.finish()
        report.close()
        if upload is not None:
            failure = await _last_upload(upload) or failure
        await stores.close()
    what = "verify" if args.verify else "dry run" if args.dry_run else "migrate"
    shard = "" if args.shard.whole else f" (shard {args.shard})"
    where = report_path if uploaded_to is None else uploaded_to
    print(f"{what} {source} -> {dest}{shard}: {tally.summary()}; report {where}")
    _name_problems(migration, tally)
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


async def _last_upload(upload: ReportUpload) -> S3Error | None:
    try:
        await upload.last()
    except (S3Error, OSError) as exc:
        error = exc if isinstance(exc, S3Error) else S3Error("InternalError", str(exc))
        error.message = f"the report stays at {upload.path}: {error.message}"
        return error
    return None


def _name_problems(migration: Migration, tally: Tally) -> None:
    """The first keys that failed, are missing or differ, on stderr; the report has them all."""
    for status, key in migration.problems:
        print(f"migrate: {status}: {key}", file=sys.stderr)
    more = sum(tally.count(status) for status in ("failed", "missing", "different"))
    if more > len(migration.problems):
        print(f"migrate: ... and {more - len(migration.problems)} more", file=sys.stderr)


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
    if not args.report_upload_interval > 0:
        print("lakefs-s3-router migrate: --report-upload-interval must be above 0", file=sys.stderr)
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
        return asyncio.run(run(args, config))
    except (ConfigError, UsageError, ValueError) as exc:
        print(f"lakefs-s3-router migrate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
