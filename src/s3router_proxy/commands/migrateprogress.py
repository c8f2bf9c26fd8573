"""What `lakefs-s3-router migrate` shows while it runs: totals, bytes, rates and an ETA.

Totals come from a listing of the source of their own (the walk that feeds the copies waits
for them, so it cannot say early how much there is). Bytes count as they stream, so a large
object moves the numbers while it copies, not only when it is done; a copy that is tried again
starts its count over. The estimate is the slower of two: the bytes left at the bytes' rate
and the objects left at the objects' rate, so neither many small objects nor a few large ones
fool it.

On a terminal the line is a `tqdm` bar; otherwise (logs, CI) a plain line every `interval`
seconds, which a log keeps whole.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from tqdm import tqdm

MIB = 2**20
TTY_INTERVAL = 0.25
PLAIN_INTERVAL = 10.0
FALLBACK_WIDTH = 120
_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def size_text(size: float) -> str:
    """`size` bytes for a person: `512 B`, `1.5 MiB`, `12.3 GiB`."""
    if size < 1024:
        return f"{size:.0f} B"
    for unit in _UNITS:
        size /= 1024
        if size < 1024 or unit == _UNITS[-1]:
            break
    return f"{size:.1f} {unit}"


def duration_text(seconds: float) -> str:
    """`42 s`, `3 min 05 s`, `2 h 07 min`."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


@dataclass(slots=True)
class Tally:
    """A run's numbers: keys done by status (with their bytes), totals, bytes in flight."""

    started: float = field(default_factory=time.monotonic)
    counts: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    listed: int = 0  # source keys the walk has reached
    listed_bytes: int = 0
    total_objects: int = 0  # the source as counted so far
    total_bytes: int = 0
    totals_known: bool = False  # the count has seen the whole source
    in_flight: int = 0  # bytes streamed by copies not finished yet

    def add(self, status: str, size: int = 0) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1
        self.sizes[status] = self.sizes.get(status, 0) + size

    def count(self, status: str) -> int:
        return self.counts.get(status, 0)

    @property
    def bytes_copied(self) -> int:
        return self.sizes.get("copied", 0)

    @property
    def done_objects(self) -> int:
        """Source keys settled, whatever the outcome (`extra` keys are not the source's)."""
        return sum(n for status, n in self.counts.items() if status != "extra")

    @property
    def done_bytes(self) -> int:
        settled = sum(n for status, n in self.sizes.items() if status != "extra")
        return settled + self.in_flight

    def totals(self) -> tuple[int, int]:
        """(objects, bytes) of the source, as counted so far (the walk may be ahead)."""
        return max(self.total_objects, self.listed), max(self.total_bytes, self.listed_bytes)

    def transfer(self) -> Transfer:
        return Transfer(self)

    def eta(self, now: float) -> float | None:
        """Seconds left, or None while that cannot be told (the source not counted yet)."""
        if not self.totals_known:
            return None
        elapsed = max(now - self.started, 1e-6)
        estimates: list[float | None] = []
        objects, size = self.totals()
        for done, total in ((self.done_bytes, size), (self.done_objects, objects)):
            left = total - done
            if left > 0 and done > 0:
                estimates.append(left / (done / elapsed))
            elif left > 0:
                estimates.append(None)  # nothing done by this measure yet: no pace to go by
        known = [e for e in estimates if e is not None]
        if not known and estimates:
            return None
        return max(known, default=0.0)

    def line(self, now: float | None = None) -> str:
        """The progress: how far, how fast, how long still."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self.started, 1e-6)
        more = "" if self.totals_known else "+"
        objects, size = self.totals()
        parts = [
            f"{size_text(self.done_bytes)} of {size_text(size)}{more}"
            + (f" ({self.percent():.0f}%)" if self.totals_known else "")
            + f", {self.done_objects} of {objects}{more} objects",
            self._outcomes(with_sizes=False) or "nothing done yet",
            self._rates(elapsed),
        ]
        eta = self.eta(now)
        if not self.totals_known:
            parts.append(f"{duration_text(elapsed)} elapsed, still listing")
        elif eta is None:
            parts.append(f"{duration_text(elapsed)} elapsed")
        else:
            parts.append(f"{duration_text(elapsed)} elapsed, ETA {duration_text(eta)}")
        return "; ".join(parts)

    def summary(self, now: float | None = None) -> str:
        """The closing line: what was listed and what became of it, with the bytes of each."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self.started, 1e-6)
        return "; ".join(
            [
                f"{self.listed} listed ({size_text(self.listed_bytes)})",
                self._outcomes(with_sizes=True) or "nothing done",
                self._rates(elapsed),
                duration_text(elapsed),
            ]
        )

    def percent(self) -> float:
        objects, size = self.totals()
        if size:
            return min(100.0, 100.0 * self.done_bytes / size)
        if objects:
            return min(100.0, 100.0 * self.done_objects / objects)
        return 100.0

    def _outcomes(self, *, with_sizes: bool) -> str:
        return ", ".join(
            f"{n} {status}" + (f" ({size_text(self.sizes.get(status, 0))})" if with_sizes else "")
            for status, n in sorted(self.counts.items())
        )

    def _rates(self, elapsed: float) -> str:
        moved = self.bytes_copied + self.in_flight
        return f"{moved / elapsed / MIB:.1f} MiB/s, {self.done_objects / elapsed:.1f} objects/s"


class Transfer:
    """The bytes one copy has streamed so far, added to the tally as they go."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.sent = 0

    def __call__(self, size: int) -> None:
        self.sent += size
        self.tally.in_flight += size

    def restart(self) -> None:
        """Forget what was streamed: the copy is tried again, or it ended (and is counted)."""
        self.tally.in_flight -= self.sent
        self.sent = 0


class ProgressDisplay(Protocol):
    interval: float

    def update(self, *, force: bool = False) -> None: ...

    def finish(self) -> None: ...


class PlainProgress:
    """A whole line every `interval` seconds: for logs, CI and anything that is not a terminal."""

    def __init__(self, stream: TextIO, tally: Tally, interval: float = PLAIN_INTERVAL) -> None:
        self.stream = stream
        self.tally = tally
        self.interval = interval
        self._last = time.monotonic()  # the first line comes one interval in

    def update(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        self.stream.write(f"migrate: {self.tally.line(now)}\n")
        self.stream.flush()

    def finish(self) -> None:
        self.update(force=True)


class BarProgress:
    """A terminal bar (tqdm) over the source's bytes, with the same numbers as the plain line."""

    def __init__(self, stream: TextIO, tally: Tally, interval: float = TTY_INTERVAL) -> None:
        self.tally = tally
        self.interval = interval
        self._last = 0.0
        sized = _terminal_width(stream) >= 20  # a terminal of no size (some ptys) shows nothing
        self.bar = tqdm(
            total=1,
            file=stream,
            bar_format="migrate |{bar:24}| {desc}",
            dynamic_ncols=sized,
            ncols=None if sized else FALLBACK_WIDTH,
            mininterval=0,
            leave=True,
        )

    def update(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        tally = self.tally
        objects, size = tally.totals()
        if size:
            total, done = size, tally.done_bytes
        else:
            total, done = max(objects, 1), tally.done_objects
        self.bar.total = total
        self.bar.n = min(done, total)
        self.bar.set_description_str(tally.line(now), refresh=False)
        self.bar.refresh()

    def finish(self) -> None:
        self.update(force=True)
        self.bar.close()


def _terminal_width(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return 0


def progress_display(
    stream: TextIO, tally: Tally, interval: float | None = None
) -> ProgressDisplay:
    """A bar on a terminal, plain lines otherwise; `interval` seconds between updates."""
    if stream.isatty():
        return BarProgress(stream, tally, TTY_INTERVAL if interval is None else interval)
    return PlainProgress(stream, tally, PLAIN_INTERVAL if interval is None else interval)
