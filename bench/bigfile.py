"""Large-object streams: one PUT and one GET of SIZE bytes per path, with curl and a presigned URL.

curl streams the upload from a file on tmpfs (`-T`, Content-Length known, `Expect:
100-continue` as curl sends it for large bodies) and discards the download (`-o /dev/null`),
so neither side ever holds the object in memory. MB/s is 10^6 bytes per second of curl's own
total time.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.procs import CLIENT_CPU, LOOPBACK, Processes, pinned

MIB = 1024 * 1024


def make_object(path: Path, size: int) -> None:
    """A file of `size` pseudo-random bytes (incompressible, cheap to make)."""
    import random

    block = random.Random(42).randbytes(4 * MIB)
    with open(path, "wb") as out:
        left = size
        while left > 0:
            out.write(block[: min(left, len(block))])
            left -= len(block)


@dataclass(frozen=True)
class Transfer:
    bytes: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds > 0 else 0.0


def curl(
    procs: Processes,
    method: str,
    port: int,
    path_and_query: str,
    *,
    upload: Path | None,
    expected: int,
    pin: bool,
    timeout: float = 300.0,
    headers: dict[str, str] | None = None,
) -> Transfer:
    """One curl transfer; raises unless it answered 2xx and moved `expected` bytes."""
    url = f"http://{LOOPBACK}:{port}{path_and_query}"
    argv = ["curl", "-sS", "--max-time", str(int(timeout)), "-o", "/dev/null"]
    argv += ["-w", "%{http_code} %{size_upload} %{size_download} %{time_total}"]
    if method == "PUT":
        assert upload is not None
        argv += ["-T", str(upload)]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    proc = procs.start(pinned(CLIENT_CPU, argv, enabled=pin), stdout=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout + 10)
    finally:
        procs.stop(proc)
    fields = out.decode().split()
    if proc.returncode != 0 or len(fields) != 4 or not fields[0].startswith("2"):
        raise RuntimeError(f"curl {method} {url[:80]}... failed: {out!r} {err!r}")
    moved = int(float(fields[1] if method == "PUT" else fields[2]))
    if moved != expected:
        raise RuntimeError(f"curl {method}: moved {moved} bytes, expected {expected}")
    return Transfer(moved, float(fields[3]))
