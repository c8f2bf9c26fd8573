"""The benchmark plan: three paths, interleaved in rounds, in one run.

Per round, every workload runs on direct, nginx hop and proxy back to back, in an order rotated
each round, so slow drift on a shared machine hits all three alike:

1. wrk, 4 KiB PUT / GET, HEAD (0-byte objects) and ListObjectsV2, each at c=1 (p50/p99) and
   c=64 (ops/s); CPU per request of the front server from /proc/PID/stat around each run;
2. PUT and GET of a large object (1 GiB; 64 MiB with --quick) with curl, the faster of
   --stream-repeats transfers kept; the proxy's peak RSS (VmHWM, reset before each stream);
3. serial boto3 put_object / get_object loops (one client process for all paths).

Before the rounds: a sanity request of every kind on every path (a broken path fails the run
instead of benchmarking error pages), a warm-up, and the SigV4 microbenchmark.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from types import FrameType

from bench import bigfile, load, redisrows, report, signedput
from bench.procs import (
    CLIENT_CPU,
    SERVER_CPU,
    Processes,
    can_pin,
    cpu_seconds,
    pinned,
    reset_peak_rss,
    status_kib,
)
from bench.stack import (
    BUCKET,
    CLIENT_KEY_ID,
    CLIENT_SECRET,
    REGION,
    Stack,
    StoreUrls,
    start_stack,
)

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
MIB = 1 << 20
PARTS = ("small", "streams", "boto3", "sigv4")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.sh",
        description="Benchmark lakefs-s3-router against direct nginx and an nginx hop.",
    )
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (3; quick: 1)")
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds per wrk run and boto3 loop (5; quick: 0.2)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="~10 s smoke run: 1 round, tiny durations, 64 MiB streams; numbers are not meaningful",
    )
    parser.add_argument(
        "--stream-mib", type=int, default=None, help="large-object size in MiB (1024; quick: 64)"
    )
    parser.add_argument(
        "--stream-repeats",
        type=int,
        default=None,
        help="large transfers per path per round, the fastest kept (4; quick: 1)",
    )
    parser.add_argument(
        "--write-docs", action="store_true", help="prepend the report to docs/benchmarks.md"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the rounds, record the proxy with py-spy under c=64 4 KiB GET load",
    )
    parser.add_argument(
        "--profile-seconds", type=float, default=20.0, help="py-spy recording length (20)"
    )
    parser.add_argument(
        "--profile-out",
        default=str(REPO / "bench" / "profile-get"),
        help="py-spy output path without extension (bench/profile-get)",
    )
    parser.add_argument(
        "--proxy-log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="the proxy's --log-level (warning: no per-request access log line)",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run the proxy as of git revision REV, as a fourth path in the same rounds",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
        help="measure only these parts (repeatable): small (wrk rows), streams (the large PUT "
        "and GET), boto3, sigv4; default all",
    )
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp directory")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.duration is None:
        args.duration = 0.2 if args.quick else 5.0
    if args.stream_mib is None:
        args.stream_mib = 64 if args.quick else 1024
    if args.stream_repeats is None:
        args.stream_repeats = 1 if args.quick else 4
    if args.rounds < 0 or args.duration <= 0 or args.stream_mib < 1 or args.stream_repeats < 1:
        parser.error("--rounds >= 0, --duration > 0, --stream-mib and --stream-repeats >= 1")
    return args


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _tool_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else "?"


def machine_info(python: str, pin: bool) -> list[str]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    py = _tool_version([python, "-c", "import sys; print(sys.version.split()[0])"])
    load1, load5, _ = os.getloadavg()
    return [
        f"nproc {os.cpu_count()}, CPU {model}, kernel {platform.release()}",
        f"Python {py}, aiohttp {_version('aiohttp')}, uvloop {_version('uvloop')}, "
        f"botocore {_version('botocore')}, boto3 {_version('boto3')}",
        f"{_tool_version(['nginx', '-v'])}, {_tool_version(['wrk', '-v']).split(' [')[0]}, "
        f"{_tool_version(['curl', '--version']).split(' (')[0]}",
        (
            f"client side (wrk, curl, boto3) on CPU {CLIENT_CPU}, servers (nginx, proxy) on "
            f"CPU {SERVER_CPU}"
            if pin
            else "NOT pinned (fewer than 2 CPUs or no taskset): numbers are not comparable"
        ),
        f"load average at start {load1:.2f} (1 min) / {load5:.2f} (5 min)",
    ]


def _temp_root() -> Path:
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="s3router-bench-", dir=base))


def _fill_objects(stack: Stack, stream_bytes: int) -> Path:
    rng = os.urandom
    bucket = stack.data / BUCKET
    for i in range(load.POOL):
        (bucket / f"obj-{i:04d}").write_bytes(rng(load.SMALL_SIZE))
        (bucket / f"head-{i:04d}").write_bytes(b"")
    big = bucket / "stream-src"
    bigfile.make_object(big, stream_bytes)
    return big


def _sanity(stack: Stack, workloads: dict[str, dict[str, load.Workload]]) -> None:
    """One request of every kind on every path must succeed before anything is measured."""
    for path, kinds in workloads.items():
        for name, workload in kinds.items():
            method, target = workload.request_file.read_text().splitlines()[0].split(" ", 1)
            body = b"x" * workload.body_size if method == "PUT" else None
            request = urllib.request.Request(stack.url(path) + target, data=body, method=method)
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    answer.read()
                    status = answer.status
            except urllib.error.HTTPError as exc:
                raise RuntimeError(
                    f"sanity check: {name} via {path} answered {exc.code}: {exc.read()[:500]!r}"
                ) from None
            if not 200 <= status < 300:
                raise RuntimeError(f"sanity check: {name} via {path} answered {status}")


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


def _front_pids(stack: Stack, path: str) -> list[int]:
    return stack.server(path).work_pids()


def _rotate(round_index: int, paths: Sequence[str]) -> list[str]:
    paths = list(paths)
    shift = round_index % len(paths)
    return paths[shift:] + paths[:shift]


class Bench:
    def __init__(
        self, args: argparse.Namespace, procs: Processes, root: Path, python: str, *, pin: bool
    ) -> None:
        self.args = args
        self.procs = procs
        self.root = root
        self.python = python
        self.pin = pin
        self.results = report.Results(rounds=args.rounds, stream_bytes=args.stream_mib * MIB)
        self.stack: Stack
        self.paths = report.PATHS + (("before",) if args.baseline else ())
        self.workloads: dict[str, load.Workload] = {}  # signed for the proxy's Host
        self.signed: dict[str, dict[str, load.Workload]] = {}  # each path's, by workload
        self.stream_src: Path
        self.stream_presigned: dict[str, dict[str, str]] = {}  # path -> op -> target
        self.machine = machine_info(python, self.pin)
        self.stores = StoreUrls()  # the Redis rows' stores (bench/redisrows.py)

    def log(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    # -- setup --------------------------------------------------------------------------------

    def setup(self) -> None:
        self.log(f"temp dir {self.root}; starting nginx (direct), nginx (hop) and the proxy")
        baseline_src = None
        if self.args.baseline:
            baseline_src = export_revision(self.args.baseline, self.root / "baseline") / "src"
            self.log(f"and the proxy as of {self.args.baseline} (path 'before')")
        self.stores, store_paths = redisrows.start_stores(
            self.procs, self.root, self.python, pin=self.pin
        )
        self.stack = start_stack(
            self.procs,
            self.root,
            python=self.python,
            pin=self.pin,
            log_level=self.args.proxy_log_level,
            baseline_src=baseline_src,
            stores=self.stores,
        )
        self.stack.extra.update(store_paths)
        self.results.rss_start_kib = status_kib(self.stack.proxy.pid, "VmRSS")
        self.stream_src = _fill_objects(self.stack, self.results.stream_bytes)
        # Presigned requests carry the Host they were signed for: each proxy gets its own;
        # nginx ignores the query string and takes the proxy's.
        for signer in ("proxy", "before") if self.args.baseline else ("proxy",):
            port = self.stack.port(signer)
            tag = "" if signer == "proxy" else f"-{signer}"
            workloads = load.write_workloads(self.root, port, tag)
            client = load.presigner(port)
            presigned = {
                "GET": load.path_of(load.presign(client, "GET", "stream-src")),
                "PUT": load.path_of(load.presign(client, "PUT", "stream-dst")),
            }
            for path in self.paths:
                if path == signer or (signer == "proxy" and path != "before"):
                    self.signed[path], self.stream_presigned[path] = workloads, presigned
        self.workloads = self.signed["proxy"]
        if self.stack.stores_proxy is not None:
            stores_port = self.stack.stores_proxy.port
            self.signed.update(redisrows.workloads(self.root, stores_port, self.stores))
        _sanity(self.stack, self.signed)
        for path in self.paths:  # warm-up: connections, caches, the proxy's backend pool
            load.run_wrk(
                self.procs, self.root, self.stack.port(path), self.signed[path]["GET"],
                connections=8, duration=0.3, pin=self.pin,
            )  # fmt: skip

    def sigv4_micro(self) -> None:
        self.log("SigV4 microbenchmark")
        argv = [self.python, "-m", "bench.sigv4_micro"] + (["--quick"] if self.args.quick else [])
        done = subprocess.run(
            pinned(SERVER_CPU, argv, enabled=self.pin),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        if done.returncode != 0:
            self.results.sigv4 = {"ours_header_get": f"error: {done.stderr.strip()[-300:]}"}
            return
        self.results.sigv4 = json.loads(done.stdout.strip().splitlines()[-1])

    # -- measurements -------------------------------------------------------------------------

    def small(self, round_index: int) -> None:
        for name in load.ROUND_ORDER:
            for connections in (1, 64):
                row = f"{name} c={connections}"
                paths = self.paths
                if name in redisrows.OPS:
                    paths += tuple(p for p in redisrows.PATHS if p in self.signed)
                for path in _rotate(round_index, paths):
                    pids = _front_pids(self.stack, path)
                    before = _cpu(pids)
                    result = load.run_wrk(
                        self.procs, self.root, self.stack.port(path), self.signed[path][name],
                        connections=connections, duration=self.args.duration, pin=self.pin,
                    )  # fmt: skip
                    used = _cpu(pids) - before
                    cpu_us = used / result.requests * 1e6 if result.requests else None
                    self.results.add(
                        row,
                        path,
                        report.Measure(
                            value=result.ops,
                            p50_ms=result.p50_ms if connections == 1 else None,
                            p99_ms=result.p99_ms if connections == 1 else None,
                            cpu=cpu_us if path != "direct" else None,
                            errors=result.errors,
                        ),
                    )
                    self.log(
                        f"round {round_index + 1} {row:<9} {path:<6} {result.ops:>9,.0f} ops/s "
                        f"p50 {result.p50_ms:.3f} ms p99 {result.p99_ms:.3f} ms "
                        f"cpu {cpu_us or 0:.0f} us/req errors {result.errors}"
                    )

    def streams(self, round_index: int) -> None:
        """Large PUT and GET on every path; the fastest of --stream-repeats transfers is kept.

        On a VM, writing a fresh GiB to tmpfs can hit host page-fault storms that have nothing
        to do with the path under test (seen: 120 to 700 MB/s, and 283 to 1,838 MB/s, for the
        same direct PUT in one run); the best of four is stable where the best of two was not
        (2026-12-04: proxy/hop PUT ratios 0.51, 2.47, 0.36 over three rounds with two, 1.00,
        0.97, 1.11 with four).
        """
        size = self.results.stream_bytes
        proxy_pid = self.stack.proxy.pid
        # The presigned PUT is unsigned, so the proxy splices it; a signed payload it must hash
        # as it flows (bench/signedput.py).
        digest = signedput.file_sha256(self.stream_src)
        for op in report.STREAMS:
            for path in _rotate(round_index, self.paths):
                pids = _front_pids(self.stack, path)
                best: tuple[float, float] | None = None  # (MB/s, CPU seconds)
                for _ in range(self.args.stream_repeats):
                    if path == "proxy":
                        self._note_peak()
                        reset_peak_rss(proxy_pid)
                    before = _cpu(pids)
                    method = "GET" if op == "GET" else "PUT"
                    target, headers = self.stream_presigned[path][method], None
                    if op == report.SIGNED_PUT:
                        target = f"/{BUCKET}/stream-dst"
                        headers = signedput.signed_put_headers(
                            self.stack.port(path), target, digest,
                            key=CLIENT_KEY_ID, secret=CLIENT_SECRET, region=REGION,
                        )  # fmt: skip
                    transfer = bigfile.curl(
                        self.procs, method, self.stack.port(path), target,
                        upload=self.stream_src if method == "PUT" else None, expected=size,
                        pin=self.pin, headers=headers,
                    )  # fmt: skip
                    used = _cpu(pids) - before
                    if path == "proxy":
                        peak = status_kib(proxy_pid, "VmHWM")
                        self.results.rss_stream_peak_kib = max(
                            self.results.rss_stream_peak_kib, peak
                        )
                        self.results.rss_peak_kib = max(self.results.rss_peak_kib, peak)
                    self.log(
                        f"round {round_index + 1} {op} {size // MIB} MiB {path:<6} "
                        f"{transfer.mb_per_s:,.0f} MB/s cpu {used:.2f} s"
                    )
                    if best is None or transfer.mb_per_s > best[0]:
                        best = (transfer.mb_per_s, used)
                assert best is not None
                self.results.add(
                    f"{op} stream",
                    path,
                    report.Measure(
                        value=best[0],
                        cpu=best[1] / (size / (1 << 30)) if path != "direct" else None,
                    ),
                )
        (self.stack.data / BUCKET / "stream-dst").unlink(missing_ok=True)

    def boto3_loops(self, round_index: int) -> None:
        seconds = min(self.args.duration, 5.0) if not self.args.quick else 0.3
        spec = {
            "targets": {p: self.stack.url(p) for p in self.paths},
            "order": _rotate(round_index, self.paths),
            "bucket": BUCKET,
            "key_id": CLIENT_KEY_ID,
            "secret": CLIENT_SECRET,
            "region": REGION,
            "size": load.SMALL_SIZE,
            "seconds": seconds,
        }
        argv = [self.python, "-m", "bench.boto_loop", json.dumps(spec)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["PYTHONPATH"] = str(REPO)
        env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        proc = self.procs.start(
            pinned(CLIENT_CPU, argv, enabled=self.pin), stdout=subprocess.PIPE, env=env, cwd=REPO
        )
        try:
            out, err = proc.communicate(timeout=120 + 10 * seconds)
        finally:
            self.procs.stop(proc)
        if proc.returncode != 0:
            raise RuntimeError(f"boto3 loop failed: {err.decode(errors='replace')[-2000:]}")
        data = json.loads(out.decode().strip().splitlines()[-1])
        for path in self.paths:
            for op, name in (("put", "put_object"), ("get", "get_object")):
                self.results.add(f"boto3 {name}", path, report.Measure(value=data[path][op]))
        self.log(f"round {round_index + 1} boto3 {data}")

    def _note_peak(self) -> None:
        with contextlib.suppress(OSError):
            peak = status_kib(self.stack.proxy.pid, "VmHWM")
            self.results.rss_peak_kib = max(self.results.rss_peak_kib, peak)

    def run(self) -> None:
        self.setup()
        parts = set(self.args.only or PARTS)
        if "sigv4" in parts:
            self.sigv4_micro()
        for round_index in range(self.args.rounds):
            self.log(f"round {round_index + 1} of {self.args.rounds}")
            if "small" in parts:
                self.small(round_index)
            if "streams" in parts:
                self.streams(round_index)
            if "boto3" in parts:
                self.boto3_loops(round_index)
        self._note_peak()


def export_revision(revision: str, into: Path) -> Path:
    """The repository's tree at `revision`, written out under `into` (git archive, no checkout)."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", revision],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise RuntimeError(f"git archive {revision}: {archive.stderr.decode(errors='replace')}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _install_signal_handlers() -> None:
    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)


@contextlib.contextmanager
def _workspace(keep: bool) -> Iterator[tuple[Processes, Path]]:
    procs = Processes()
    root = _temp_root()
    try:
        yield procs, root
    finally:
        # Stopping must not be cut short by a second Ctrl-C.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            procs.stop_all()
            if not keep:
                shutil.rmtree(root, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, previous)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _install_signal_handlers()
    python = os.environ.get("BENCH_PYTHON", sys.executable)
    pin = can_pin()  # before this process narrows its own affinity to the client CPU
    if pin:
        os.sched_setaffinity(0, {CLIENT_CPU})
    command = "bench/run.sh " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        with _workspace(args.keep_temp) as (procs, root):
            bench = Bench(args, procs, root, python, pin=pin)
            if args.rounds:
                bench.run()
            else:
                bench.setup()
            if args.rounds:
                section = _report(bench, command.strip())
                print(section, flush=True)
                if args.write_docs:
                    report.write_docs(DOCS, section)
                    bench.log(f"wrote {DOCS}")
            if args.profile:
                from bench import pyspy

                summary = pyspy.profile(bench, Path(args.profile_out), args.profile_seconds)
                print(summary, flush=True)
                if args.write_docs:
                    pyspy.append_to_docs(DOCS, summary)
    except KeyboardInterrupt:
        print("interrupted; every process the benchmark started has been stopped", file=sys.stderr)
        return 130
    return 0


def _report(bench: Bench, command: str) -> str:
    args = bench.args
    settings = (
        f"{args.rounds} round(s) x {args.duration:g} s per wrk run and boto3 loop, interleaved; "
        f"wrk -t1 at c=1 and c=64, {load.POOL} keys per workload; streams "
        f"{args.stream_mib} MiB, best of {args.stream_repeats} per path and round; "
        f"proxy --log-level {args.proxy_log_level}."
        + (" **--quick: a smoke run, the numbers mean nothing.**" if args.quick else "")
    )
    notes = [
        "Notes: absolute numbers are medians over rounds; ratios are medians of per-round paired "
        "ratios. `hop CPU` / `proxy CPU` are utime+stime of the nginx hop's worker / the proxy "
        "process per request (per GiB for streams). Latencies are wrk's (`--latency`, which "
        "corrects for coordinated omission). HEAD targets are 0-byte objects: wrk cannot parse a "
        "HEAD answer with a non-zero Content-Length (it waits for a body), and the cost of a "
        "HEAD does not depend on the size it reports.",
    ]
    return report.render(
        bench.results,
        stamp=_stamp(),
        command=command,
        machine=bench.machine,
        settings=settings,
        notes=notes,
        baseline=args.baseline,
        extra=redisrows.table(bench.results),
    )
