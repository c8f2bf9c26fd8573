"""The `lakefs-s3-router` command: load a config, start the proxy, stop cleanly on a signal."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys

from . import __version__
from .config import Config, ConfigError, load_config, parse_listen_address
from .embedded import EmbeddedStores

log = logging.getLogger("s3router_proxy")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lakefs-s3-router",
        description="S3-protocol reverse proxy routing each request to one of many S3 stores.",
    )
    parser.add_argument(
        "--config",
        default=os.environ.get("S3_ROUTER_CONFIG"),
        help="YAML config file (default: $S3_ROUTER_CONFIG)",
    )
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help="listen address (overrides router.listen_address)"
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("S3_ROUTER_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
        help="log level (default: info)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def describe(config: Config) -> str:
    """The start-up banner: where it listens, what it routes to, how many rules."""
    lines = [f"lakefs-s3-router listening on http://{config.listen_host}:{config.listen_port}"]
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


async def serve(config: Config) -> None:
    from .server import ProxyState, start_server, stop_server

    state = ProxyState.build(config)
    runner, tasks = await start_server(state, config.listen_host, config.listen_port)
    print(describe(config), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await stop_server(state, runner, tasks)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if not args.config:
        print("lakefs-s3-router: no config: pass --config FILE", file=sys.stderr)
        return 2
    stores = EmbeddedStores()
    try:
        config = load_config(args.config)
        if args.listen:
            try:
                host, port = parse_listen_address(args.listen)
            except ValueError as exc:
                raise ConfigError(f"--listen: {exc}") from None
            config = dataclasses.replace(config, listen_host=host, listen_port=port)
        if config.clients_from_backends:
            log.warning(
                "no `clients:` section: accepting the backends' own key pairs from clients; "
                "configure explicit client credentials for production"
            )
        config = stores.start(config)
    except ConfigError as exc:
        stores.stop()
        print(f"lakefs-s3-router: {exc}", file=sys.stderr)
        return 2
    try:
        try:
            import uvloop
        except ImportError:
            asyncio.run(serve(config))
        else:
            uvloop.run(serve(config))
    except OSError as exc:
        print(f"lakefs-s3-router: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        stores.stop()
    return 0
