"""One migrate run's bookkeeping: each key's report row (named on both sides), a key that fails
is reported and the run goes on, nothing new starts once stopping, and the walk's count becomes
the total. The copies themselves run against real stores in tests/e2e/test_migrate.py."""

from __future__ import annotations

import asyncio
import csv
import io

from s3router_proxy.commands.migrateprogress import Tally
from s3router_proxy.commands.migratereport import Location, ObjectInfo, ReportWriter
from s3router_proxy.commands.migraterun import Migration, Options
from s3router_proxy.commands.migratestores import Stores
from s3router_proxy.config.load import config_from_document
from s3router_proxy.config.yamlfile import load_documents
from s3router_proxy.s3.errors import S3Error

# No backend: the per-key work below never reaches one.
STORES = Stores(
    config_from_document(load_documents("backends: {a: {endpoint: 'http://h:1'}}\n", {})[0]),
    {},
    b"k" * 32,
)
OPTIONS = Options(Location("logs", "2024/"), Location("archive", "old/logs/"), concurrency=2)


class Scripted(Migration):
    """A run whose per-key work is given by the test: `outcomes` maps a key to what happens."""

    def __init__(self, outcomes: dict[str, BaseException | None]) -> None:
        report = io.StringIO()
        super().__init__(STORES, OPTIONS, ReportWriter(report), Tally())
        self.text = report
        self.outcomes = outcomes
        self.handled: list[str] = []

    async def handle(self, src: ObjectInfo, dst: ObjectInfo | None) -> None:
        self.handled.append(src.key)
        outcome = self.outcomes[src.key]
        if outcome is not None:
            raise outcome
        self.record(self.row(src, "copied"))

    def rows(self) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self.text.getvalue())))


def test_a_row_names_the_key_on_both_sides() -> None:
    run = Scripted({})
    row = run.row(ObjectInfo("2024/a.log", 7, '"e1"'), "would-copy", reason="not there")
    assert (row.bucket, row.key, row.dest_bucket, row.dest_key) == (
        "logs",
        "2024/a.log",
        "archive",
        "old/logs/a.log",
    )
    assert (row.size, row.etag, row.status, row.reason) == (7, '"e1"', "would-copy", "not there")


async def test_a_failing_key_is_reported_and_the_run_goes_on() -> None:
    run = Scripted(
        {
            "2024/a": None,
            "2024/b": S3Error("AccessDenied", "no", status=403),
            "2024/c": ValueError("odd"),
            "2024/d": None,
        }
    )
    for key in ("2024/a", "2024/b", "2024/c", "2024/d"):
        run.queue.put_nowait((ObjectInfo(key, 1, '"e"'), None))
    run.queue.put_nowait(None)
    await run.worker()
    rows = {row["key"]: row for row in run.rows()}
    assert rows["2024/a"]["status"] == rows["2024/d"]["status"] == "copied"
    assert (rows["2024/b"]["status"], rows["2024/b"]["http_status"]) == ("failed", "403")
    assert rows["2024/b"]["error_code"] == "AccessDenied"
    assert rows["2024/c"]["error_code"] == "InternalError"
    assert rows["2024/c"]["reason"] == "ValueError: odd"
    assert (run.tally.count("copied"), run.tally.count("failed")) == (2, 2)


async def test_once_stopping_no_new_key_starts() -> None:
    run = Scripted({"2024/a": None, "2024/b": None})
    run.queue.put_nowait((ObjectInfo("2024/a", 1, '"e"'), None))
    run.stopping.set()
    run.queue.put_nowait((ObjectInfo("2024/b", 1, '"e"'), None))
    run.queue.put_nowait(None)
    await asyncio.wait_for(run.worker(), 5)
    assert run.handled == [] and run.rows() == []


async def test_a_cancelled_copy_is_reported_as_interrupted() -> None:
    run = Scripted({"2024/a": asyncio.CancelledError()})
    run.queue.put_nowait((ObjectInfo("2024/a", 1, '"e"'), None))
    try:
        await run.worker()
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the cancel must reach the run")
    (row,) = run.rows()
    assert (row["status"], row["error_code"], row["reason"]) == (
        "failed",
        "Interrupted",
        "cancelled",
    )


def test_the_walks_count_is_the_total_unless_stopped() -> None:
    run = Scripted({})
    run.tally.listed, run.tally.listed_bytes = 3, 30
    run._walked()
    assert (run.tally.total_objects, run.tally.total_bytes, run.tally.totals_known) == (3, 30, True)
    stopped = Scripted({})
    stopped.tally.listed = 3
    stopped.stopping.set()
    stopped._walked()
    assert not stopped.tally.totals_known and stopped.tally.total_objects == 0
