"""The `lakefs-s3-router` command: its options, the subcommands, and the start of serving.

Serving itself is `serve` (one process: signals, drain), `reload` (SIGHUP and a watched file)
and `workers` (`--workers N`: a supervisor and its serving processes).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import logging
import os
import sys
import tempfile
from pathlib import Path

from . import __version__
from .config.load import load_config
from .config.reader import ConfigError
from .config.router import LOG_LEVELS, parse_listen_address
from .http import splice
from .reload import Loader
from .serve import run
from .serving.embedded import EmbeddedStores
from .telemetry.logsetup import configure_logging
from .workers import auto_workers, supervise

log = logging.getLogger("s3router_proxy")


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
    if text.strip().lower() == "auto":
        return auto_workers()
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of processes, 1 or more, or auto (from --workers or "
            "$S3_ROUTER_WORKERS)"
        )
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    from .commands.base import ENVIRONMENT_HELP, ExamplesHelpFormatter, config_option

    parser = argparse.ArgumentParser(
        prog="lakefs-s3-router",
        usage="%(prog)s [serve] --config FILE [options]\n       %(prog)s COMMAND [--help] ...",
        description="S3-protocol reverse proxy routing each request to one of many S3 stores.\n\n"
        + _commands_text(),
        epilog=SERVE_EXAMPLE,
        formatter_class=ExamplesHelpFormatter,
    )
    config_option(parser, "YAML config file")
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
    parser.add_argument("--environment", metavar="NAME", help=ENVIRONMENT_HELP)
    parser.add_argument(
        "--workers",
        metavar="N|auto",
        type=_workers,
        # A string default goes through `type`, so a bad $S3_ROUTER_WORKERS is a usage error.
        default=os.environ.get("S3_ROUTER_WORKERS", "1"),
        help="serving processes sharing the port, or auto: one per CPU the container's cgroup "
        "quota and the CPU affinity allow (default: $S3_ROUTER_WORKERS, else 1)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


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
    try:
        splice.ENABLED = splice.AVAILABLE and splice.setting(os.environ.get("S3_ROUTER_SPLICE"))
    except ValueError as exc:
        parser.error(str(exc))
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
            return run(loader, config, reuse_port=False)
        with tempfile.TemporaryDirectory(prefix="s3router-metrics-") as directory:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
            return supervise(loader, config, level, args.workers)
    finally:
        stores.stop()
