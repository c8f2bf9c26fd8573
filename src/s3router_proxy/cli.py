"""The `lakefs-s3-router` command: load a config, serve it, reload it, stop cleanly.

Signals: SIGHUP reloads the config file (an invalid one is logged and the old one keeps
serving); SIGTERM/SIGINT stop accepting connections and let requests in flight finish within
`router.shutdown_timeout`. With `--workers N` a supervisor forks N serving processes that share
the listening ports (SO_REUSEPORT), passes signals on to them and replaces any that die.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import difflib
import gc
import logging
import multiprocessing
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from pathlib import Path

from . import __version__
from .config.load import load_config
from .config.model import EMBEDDED, Config
from .config.reader import ConfigError
from .config.router import parse_listen_address
from .serving.embedded import EmbeddedStores
from .telemetry.logsetup import configure_logging

log = logging.getLogger("s3router_proxy")
WATCH_INTERVAL = 1.0
LOG_LEVELS = ("debug", "info", "warning", "error")


SERVE_SUMMARY = "run the proxy (the default: the same as no command)"
SERVE_EXAMPLE = """\
examples:
  lakefs-s3-router --config router.yaml
  lakefs-s3-router --config router.yaml --listen 0.0.0.0:8080 --admin 0.0.0.0:9090 --workers 4
  lakefs-s3-router check --config router.yaml
  lakefs-s3-router explain --config router.yaml GET s3://photos/2024/cat.jpg

Run 'lakefs-s3-router COMMAND --help' for a command's options and examples."""


def _commands_text() -> str:
    from .commands.registry import COMMANDS

    rows = [("serve", SERVE_SUMMARY)] + [(name, c.summary) for name, c in COMMANDS.items()]
    return "commands:\n" + "\n".join(f"  {name:9} {summary}" for name, summary in rows)


def _workers(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of processes, 1 or more (from --workers or "
            "$S3_ROUTER_WORKERS)"
        )
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    from .commands.base import ExamplesHelpFormatter

    parser = argparse.ArgumentParser(
        prog="lakefs-s3-router",
        usage="%(prog)s [serve] --config FILE [options]\n       %(prog)s COMMAND [--help] ...",
        description="S3-protocol reverse proxy routing each request to one of many S3 stores.\n\n"
        + _commands_text(),
        epilog=SERVE_EXAMPLE,
        formatter_class=ExamplesHelpFormatter,
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=os.environ.get("S3_ROUTER_CONFIG"),
        help="YAML config file (default: $S3_ROUTER_CONFIG)",
    )
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help="listen address (overrides router.listen_address)"
    )
    parser.add_argument(
        "--admin",
        metavar="HOST:PORT",
        help='admin listener address, or "off" (overrides router.admin_address)',
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("S3_ROUTER_LOG_LEVEL"),
        type=str.lower,
        choices=LOG_LEVELS,
        help="log level (default: $S3_ROUTER_LOG_LEVEL, else router.log_level, else info)",
    )
    parser.add_argument(
        "--environment",
        metavar="NAME",
        help="which document of a multi-environment config to use "
        "(default: $S3_ROUTER_ENVIRONMENT, else $ENVIRONMENT)",
    )
    parser.add_argument(
        "--workers",
        metavar="N",
        type=_workers,
        # A string default goes through `type`, so a bad $S3_ROUTER_WORKERS is a usage error.
        default=os.environ.get("S3_ROUTER_WORKERS", "1"),
        help="serving processes sharing the port (default: $S3_ROUTER_WORKERS, else 1)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def describe(config: Config, port: int | None = None, workers: int = 1) -> str:
    """The start-up banner: where it listens, what it routes to, how many rules."""
    scheme = "https" if config.tls_cert_file else "http"
    lines = [
        f"lakefs-s3-router listening on {scheme}://{config.listen_host}:"
        f"{port if port is not None else config.listen_port}"
        + (f" ({workers} worker processes)" if workers > 1 else "")
    ]
    if config.admin_host is not None:
        lines.append(
            f"  admin (health, ready, metrics) on http://{config.admin_host}:{config.admin_port}"
        )
    for backend in config.backends.values():
        lines.append(
            f"  backend {backend.name}: {backend.endpoint} "
            f"(region {backend.region}, {backend.addressing_style} style)"
        )
    lines.append(
        f"  {len(config.rules)} routing rule(s), default target: {config.default_target or 'none'}"
    )
    lines.append(f"  {len(config.clients)} client credential(s)")
    return "\n".join(lines)


def announce(banner: str, config: Config) -> None:
    if config.log_format == "json":
        log.info(banner)  # one JSON line, so log collectors see no plain text
    else:
        print(banner, flush=True)


@dataclasses.dataclass(frozen=True)
class Loader:
    """Loads the config file the same way at start and at every reload."""

    path: str
    environment: str | None
    overrides: Mapping[str, object]  # Config fields set on the command line
    embedded: Mapping[str, str]  # backend name -> endpoint of its running demo store

    def load(self) -> Config:
        config = dataclasses.replace(
            load_config(self.path, environment=self.environment), **self.overrides
        )
        backends = dict(config.backends)
        for name, backend in backends.items():
            if backend.endpoint == EMBEDDED:
                if name not in self.embedded:
                    raise ConfigError(
                        f"{self.path}: backend {name!r}: an embedded store cannot be added by a "
                        "reload; restart the proxy"
                    )
                backends[name] = dataclasses.replace(backend, endpoint=self.embedded[name])
        return dataclasses.replace(config, backends=backends)


def keep_listeners(new: Config, old: Config) -> Config:
    """`new`, but with the listeners and TLS of `old`: those change only on restart."""
    fixed = ("listen_host", "listen_port", "admin_host", "admin_port")
    fixed += ("tls_cert_file", "tls_key_file")
    if any(getattr(new, name) != getattr(old, name) for name in fixed):
        log.warning("listen addresses and TLS settings change only on restart; kept as they were")
        new = dataclasses.replace(new, **{name: getattr(old, name) for name in fixed})
    return new


async def serve(
    loader: Loader,
    config: Config,
    *,
    reuse_port: bool = False,
    on_listening: Callable[[int], None] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT; once listening, print the banner, or with `on_listening`
    tell the supervisor the port instead (it prints one banner for all its workers)."""
    from .serving.handler import ProxyServer
    from .telemetry import metrics

    # Signals first: a SIGTERM that arrives as soon as the port opens must still drain.
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: None)  # until reloading can work, below
    server = ProxyServer(config, reuse_port=reuse_port)
    await server.start()
    if on_listening is None:
        announce(describe(config, server.port), config)
    else:
        on_listening(server.port)
    # Everything alive now lives as long as the process: keep the collector off it, and let
    # short-lived request objects accumulate longer before a collection pass.
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)

    def reload() -> None:
        old = server.state.config
        try:
            new = loader.load()
        except ConfigError as exc:
            metrics.CONFIG_RELOADS.labels("rejected").inc()
            log.error("config reload rejected, still serving the previous config: %s", exc)
            return
        new = keep_listeners(new, old)
        server.reload(new)
        metrics.CONFIG_RELOADS.labels("success").inc()
        log.info("config reloaded: %d backend(s), %d rule(s)", len(new.backends), len(new.rules))

    loop.add_signal_handler(signal.SIGHUP, reload)
    watcher = asyncio.create_task(_watch(loader.path, reload)) if config.watch_config else None
    await stop.wait()
    log.info("shutting down: draining requests in flight (up to %.0fs)", config.shutdown_timeout)
    if watcher is not None:
        watcher.cancel()
    await server.stop()


async def _watch(path: str, reload: object) -> None:
    """Reload when the file's modification time or size changes (polling: works on any FS)."""

    def stamp() -> tuple[float, int] | None:
        try:
            info = Path(path).stat()
        except OSError:
            return None
        return info.st_mtime, info.st_size

    last = stamp()
    while True:
        await asyncio.sleep(WATCH_INTERVAL)
        current = stamp()
        if current is not None and current != last:
            last = current
            reload()  # type: ignore[operator]


def _run(
    loader: Loader,
    config: Config,
    *,
    reuse_port: bool,
    on_listening: Callable[[int], None] | None = None,
) -> int:
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(serve(loader, config, reuse_port=reuse_port, on_listening=on_listening))
    except OSError as exc:
        print(f"lakefs-s3-router: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _worker(loader: Loader, config: Config, level: str, listening: Connection) -> None:
    configure_logging(level, config.log_format)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    raise SystemExit(_run(loader, config, reuse_port=True, on_listening=listening.send))


def _supervise(loader: Loader, config: Config, level: str, workers: int) -> int:
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


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    """Config fields the command line sets, validated like the file's."""
    overrides: dict[str, object] = {}
    if args.listen:
        try:
            overrides["listen_host"], overrides["listen_port"] = parse_listen_address(args.listen)
        except ValueError as exc:
            raise ConfigError(f"--listen: {exc}") from None
    if args.admin:
        if args.admin.lower() in ("off", "none", "disabled"):
            overrides["admin_host"] = None
        else:
            try:
                overrides["admin_host"], overrides["admin_port"] = parse_listen_address(args.admin)
            except ValueError as exc:
                raise ConfigError(f"--admin: {exc}") from None
    return overrides


def unknown_command(name: str) -> str:
    """The message for a first argument that is neither an option nor a command."""
    from .commands.registry import COMMANDS

    names = ["serve", *COMMANDS]
    near = difflib.get_close_matches(name, names, n=1)
    if near:
        hint = f" — did you mean {near[0]!r}?"
    elif name.endswith((".yaml", ".yml")) or Path(name).is_file():
        hint = f" — did you mean --config {name}?"
    else:
        hint = f"; commands: {', '.join(names)} (see lakefs-s3-router --help)"
    return f"lakefs-s3-router: unknown command {name!r}{hint}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and not argv[0].startswith("-"):
        from .commands.registry import COMMANDS

        if argv[0] in COMMANDS:
            return COMMANDS[argv[0]].run(argv[1:])
        if argv[0] == "help":
            return main([*argv[1:2], "--help"])
        if argv[0] != "serve":
            print(unknown_command(argv[0]), file=sys.stderr)
            return 2
        argv = argv[1:]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.log_level is not None and args.log_level not in LOG_LEVELS:
        # argparse checks `choices` only on the command line, not on a default from the env
        parser.error(
            f"S3_ROUTER_LOG_LEVEL={args.log_level!r} is not one of {', '.join(LOG_LEVELS)}"
        )
    configure_logging(args.log_level or "info", "text")
    if not args.config:
        print(
            "lakefs-s3-router: no config: pass --config FILE (or set S3_ROUTER_CONFIG)",
            file=sys.stderr,
        )
        return 2
    stores = EmbeddedStores()
    try:
        overrides = _overrides(args)
        config = dataclasses.replace(
            load_config(args.config, environment=args.environment), **overrides
        )
        config = stores.start(config)
        loader = Loader(args.config, args.environment, overrides, dict(stores.endpoints))
    except ConfigError as exc:
        stores.stop()
        print(f"lakefs-s3-router: {exc}", file=sys.stderr)
        return 2
    level = args.log_level or config.log_level or "info"
    configure_logging(level, config.log_format)
    if config.clients_from_backends:
        log.warning(
            "no `clients:` section: accepting the backends' own key pairs from clients; "
            "configure explicit client credentials for production"
        )
    try:
        if args.workers == 1:
            return _run(loader, config, reuse_port=False)
        with tempfile.TemporaryDirectory(prefix="s3router-metrics-") as directory:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
            return _supervise(loader, config, level, args.workers)
    finally:
        stores.stop()
