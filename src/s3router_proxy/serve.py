"""Serving one process: listen, print the banner, reload on SIGHUP (or a changed file), and on
SIGTERM/SIGINT stop accepting connections and let the requests in flight finish within
`router.shutdown_timeout`."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import signal
import sys
from collections.abc import Callable

from .config.model import Config
from .reload import Loader, reload, watch

log = logging.getLogger("s3router_proxy")


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
    if config.anonymous_unsigned:
        lines.append("  unsigned requests: forwarded unsigned, for the stores' ACLs to decide")
    elif config.anonymous.allow:
        lines.append("  unsigned requests: where `anonymous:` grants them, signed with store keys")
    return "\n".join(lines)


def announce(banner: str, config: Config) -> None:
    if config.log_format == "json":
        log.info(banner)  # one JSON line, so log collectors see no plain text
    else:
        print(banner, flush=True)


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
    reload_now = functools.partial(reload, server, loader)
    loop.add_signal_handler(signal.SIGHUP, reload_now)
    watcher = asyncio.create_task(watch(loader.path, reload_now)) if config.watch_config else None
    await stop.wait()
    log.info("shutting down: draining requests in flight (up to %.0fs)", config.shutdown_timeout)
    if watcher is not None:
        watcher.cancel()
    await server.stop()


def run(
    loader: Loader,
    config: Config,
    *,
    reuse_port: bool,
    on_listening: Callable[[int], None] | None = None,
) -> int:
    """Serve in this process (uvloop when installed); 1 when the port cannot be had."""
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
