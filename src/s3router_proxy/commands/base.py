"""What every subcommand of `lakefs-s3-router` shares: its parser (`--config`, `--environment`,
examples printed as written), the config those name, and argparse types whose ValueError becomes
the usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TypeVar

from ..config.load import load_config
from ..config.model import Config
from ..config.reader import ConfigError

ENVIRONMENT_HELP = (
    "which document of a multi-environment config to use "
    "(default: $S3_ROUTER_ENVIRONMENT, else $ENVIRONMENT)"
)
T = TypeVar("T")


class ExamplesHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Text of several lines (the examples epilog) is printed as written; a one-paragraph
    description is wrapped to the terminal as usual."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return super()._fill_text(text, width, indent)
        return argparse.HelpFormatter._fill_text(self, text, width, indent)


def command_parser(name: str, description: str, example: str) -> argparse.ArgumentParser:
    """A subcommand's parser: its `--help` ends with `example`, printed as written."""
    parser = argparse.ArgumentParser(
        prog=f"lakefs-s3-router {name}",
        description=description,
        epilog=example,
        formatter_class=ExamplesHelpFormatter,
    )
    config_option(parser, "the proxy's YAML config file")
    parser.add_argument("--environment", metavar="NAME", help=ENVIRONMENT_HELP)
    return parser


def config_option(parser: argparse.ArgumentParser, what: str) -> None:
    """`--config FILE`, `what` in its help; the serving command's and every subcommand's."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=os.environ.get("S3_ROUTER_CONFIG"),
        help=f"{what} (default: $S3_ROUTER_CONFIG)",
    )


def parse_command_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if not args.config:
        parser.error("no config: pass --config FILE (or set S3_ROUTER_CONFIG)")
    return args


def command_config(args: argparse.Namespace, prog: str = "lakefs-s3-router") -> Config | None:
    """The config `--config` and `--environment` name; None once why it cannot be used is
    printed (the command exits 2)."""
    try:
        return load_config(args.config, environment=args.environment)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None


def argument_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """`parse` as an argparse type: its ValueError becomes the usage error's message."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__
    return convert
