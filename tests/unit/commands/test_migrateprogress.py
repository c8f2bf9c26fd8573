"""What `migrate` shows while it runs: totals, bytes in flight, rates, the ETA, bar or lines."""

from __future__ import annotations

import io

import pytest

from s3router_proxy.commands.migrateprogress import (
    BarProgress,
    PlainProgress,
    Tally,
    duration_text,
    progress_display,
    size_text,
)

MIB = 2**20


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (64 * MIB, "64.0 MiB"),
        (5 * 2**40, "5.0 TiB"),
    ],
)
def test_size_text(size: int, text: str) -> None:
    assert size_text(size) == text


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4, "0 s"), (59, "59 s"), (65, "1 min 05 s"), (7260, "2 h 01 min")]
)
def test_duration_text(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_bytes_in_flight_move_the_numbers_before_the_object_is_done() -> None:
    tally = Tally(started=0.0, total_objects=2, total_bytes=64 * MIB, totals_known=True)
    tally.listed, tally.listed_bytes = 1, 48 * MIB
    transfer = tally.transfer()
    transfer(8 * MIB)
    transfer(8 * MIB)
    line = tally.line(now=2.0)
    assert line.startswith("16.0 MiB of 64.0 MiB (25%), 0 of 2 objects; nothing done yet; ")
    assert "8.0 MiB/s, 0.0 objects/s" in line
    # 48 MiB left at 8 MiB/s; no object finished, so the objects cannot estimate yet.
    assert tally.eta(2.0) == pytest.approx(6.0)
    assert line.endswith("2 s elapsed, ETA 6 s")
    transfer.restart()  # tried again: what was streamed no longer counts
    assert tally.done_bytes == 0
    transfer(4 * MIB)
    transfer.restart()
    tally.add("copied", 48 * MIB)
    assert tally.done_bytes == 48 * MIB and tally.in_flight == 0
    assert tally.bytes_copied == 48 * MIB


def test_eta_is_the_slower_of_bytes_and_objects() -> None:
    tally = Tally(started=0.0, total_objects=100, total_bytes=100 * MIB, totals_known=True)
    tally.add("copied", 50 * MIB)  # one large object: half the bytes, 1% of the objects
    assert tally.eta(10.0) == pytest.approx(990.0)  # 99 objects left at 0.1 objects/s
    assert Tally(started=0.0).eta(1.0) is None  # not counted yet: no guess


def test_totals_are_marked_while_the_source_is_still_being_counted() -> None:
    tally = Tally(started=0.0, total_objects=1000, total_bytes=3 * MIB)
    tally.listed, tally.listed_bytes = 1500, 4 * MIB  # the walk got ahead of the count
    tally.add("skipped", 1024)
    line = tally.line(now=1.0)
    assert line.startswith("1.0 KiB of 4.0 MiB+, 1 of 1500+ objects; 1 skipped; ")
    assert line.endswith("1 s elapsed, still listing")


def test_summary_gives_the_bytes_of_each_outcome() -> None:
    tally = Tally(started=0.0)
    tally.listed, tally.listed_bytes = 3, 5 * MIB
    tally.add("would-copy", 3 * MIB)
    tally.add("would-copy", 2 * MIB - 10)
    tally.add("skipped", 10)
    assert tally.summary(now=2.0) == (
        "3 listed (5.0 MiB); 1 skipped (10 B), 2 would-copy (5.0 MiB); "
        "0.0 MiB/s, 1.5 objects/s; 2 s"
    )


def test_plain_lines_come_an_interval_apart_and_at_the_end() -> None:
    stream = io.StringIO()
    tally = Tally(total_objects=1, total_bytes=10, totals_known=True)
    progress = PlainProgress(stream, tally, interval=3600)
    progress.update()  # within the interval: nothing
    assert stream.getvalue() == ""
    progress.update(force=True)
    progress.finish()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert all(line.startswith("migrate: 0 B of 10 B (0%), 0 of 1 objects;") for line in lines)


def test_a_terminal_gets_a_bar_and_anything_else_lines() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    tally = Tally(total_objects=4, total_bytes=4 * MIB, totals_known=True)
    bar = progress_display(terminal, tally)
    assert isinstance(bar, BarProgress)
    tally.add("copied", MIB)
    bar.finish()
    shown = terminal.getvalue()
    assert "\rmigrate |######  " in shown and "| 1.0 MiB of 4.0 MiB (25%), 1 of 4 objects" in shown
    assert shown.endswith("\n")
    assert isinstance(progress_display(io.StringIO(), tally), PlainProgress)
    assert progress_display(io.StringIO(), tally, 0.5).interval == 0.5
