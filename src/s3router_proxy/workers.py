"""`--workers N`: a supervisor forks N serving processes that share the listening ports
(SO_REUSEPORT), passes signals on to them and replaces any that die. `--workers auto` is one
per core the process may use: its CPU affinity, narrowed by the cgroup's CPU quota (a
container's `--cpus`, a Kubernetes CPU limit), rounded up."""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import signal
from multiprocessing.connection import Connection
from pathlib import Path

from .config.model import Config
from .config.reader import ConfigError
from .reload import Loader, keep_listeners
from .serve import announce, describe, run
from .telemetry.logsetup import configure_logging

log = logging.getLogger("s3router_proxy")


CGROUP_ROOT = Path("/sys/fs/cgroup")
# cgroup v1 mounts the cpu controller alone or joined with cpuacct.
_V1_CPU_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


def auto_workers(
    root: Path = CGROUP_ROOT, membership: str | None = None, cpus: int | None = None
) -> int:
    """Worker processes for `--workers auto`: ceil(cgroup quota / period), at most the CPUs
    this process may run on (`cpus`, else its affinity), at least 1.

    `membership` is /proc/self/cgroup's text (read when None); `root` where cgroups are
    mounted (tests give a directory of fake files)."""
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if membership is None:
        try:
            membership = Path("/proc/self/cgroup").read_text()
        except OSError:
            membership = ""
    quota = cpu_quota(root, membership)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def cpu_quota(root: Path, membership: str) -> float | None:
    """The CPUs the cgroup quota allows (cgroup v2 `cpu.max` or v1 `cpu.cfs_quota_us` over
    `cpu.cfs_period_us`), the smallest along the way from this process's cgroup to the root;
    None when nothing limits it."""
    v2_path, v1_path = "/", "/"
    for line in membership.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if number == "0" and not controllers:
            v2_path = path or "/"
        elif "cpu" in controllers.split(","):
            v1_path = path or "/"
    limits = [_v2_quota(d / "cpu.max") for d in _levels(root, v2_path)]
    for name in _V1_CPU_DIRS:
        if (root / name).is_dir():
            limits += [_v1_quota(d) for d in _levels(root / name, v1_path)]
    found = [limit for limit in limits if limit is not None]
    return min(found) if found else None


def _levels(root: Path, path: str) -> list[Path]:
    """`root` joined with `path` and each of its parents, down to `root` itself. Inside a
    container the cgroup mounted at `root` is often the process's own, whatever the path says."""
    parts = [part for part in path.split("/") if part and part not in (".", "..")]
    return [root.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


def _v2_quota(path: Path) -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        quota, period = path.read_text().split()[:2]
        if quota != "max" and int(period) > 0:
            return int(quota) / int(period)
    return None


def _v1_quota(directory: Path) -> float | None:
    with contextlib.suppress(OSError, ValueError):
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return quota / period
    return None


def _worker(loader: Loader, config: Config, level: str, listening: Connection) -> None:
    configure_logging(level, config.log_format)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    raise SystemExit(run(loader, config, reuse_port=True, on_listening=listening.send))


def supervise(loader: Loader, config: Config, level: str, workers: int) -> int:
    """Run `workers` serving processes; pass signals on; replace a worker that dies.

    Each worker reports its port once it listens; when all of the first `workers` have, the
    banner is printed, once. One that exits before that (the port is taken, say) stops them all:
    a replacement would fail the same way, forever."""
    context = multiprocessing.get_context("fork")
    children: list[multiprocessing.process.BaseProcess] = []
    stopping = False
    reports, report = context.Pipe(duplex=False)

    current = config

    def spawn() -> multiprocessing.process.BaseProcess:
        nonlocal current
        try:  # a replacement serves the config the others serve now (reloads included)
            current = keep_listeners(loader.load(), config)
        except ConfigError as exc:
            log.error("config not reloadable for a new worker, keeping the last good one: %s", exc)
        child = context.Process(target=_worker, args=(loader, current, level, report), daemon=False)
        child.start()
        return child

    def forward(sig: int, _frame: object) -> None:
        nonlocal stopping
        if sig in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    children.extend(spawn() for _ in range(workers))
    log.info("supervising %d worker processes", workers)
    listening = 0  # workers that reported; the banner is printed when all the first ones have
    while True:
        reports.poll(0.5)  # instead of a sleep: wakes as soon as a worker reports
        while reports.poll():
            port = reports.recv()
            listening += 1
            if listening == workers:
                announce(describe(config, port, workers), config)
        if stopping:
            for child in children:
                child.join(timeout=config.shutdown_timeout + 5)
                if child.is_alive():
                    child.kill()
            return 0
        for index, child in enumerate(children):
            if not child.is_alive():
                if listening < workers:
                    log.error(
                        "worker %s exited with %s before it could serve; stopping",
                        child.pid,
                        child.exitcode,
                    )
                    for other in children:
                        if other.is_alive():
                            other.terminate()
                        other.join(timeout=config.shutdown_timeout + 5)
                    return 1
                log.warning("worker %s exited with %s; starting another", child.pid, child.exitcode)
                if child.pid is not None:
                    from prometheus_client import multiprocess

                    multiprocess.mark_process_dead(child.pid)
                children[index] = spawn()
