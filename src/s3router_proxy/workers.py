"""`--workers N`: a supervisor forks N serving processes that share the listening ports
(SO_REUSEPORT), passes signals on to them and replaces any that die."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from multiprocessing.connection import Connection

from .config.model import Config
from .config.reader import ConfigError
from .reload import Loader, keep_listeners
from .serve import announce, describe, run
from .telemetry.logsetup import configure_logging

log = logging.getLogger("s3router_proxy")


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
