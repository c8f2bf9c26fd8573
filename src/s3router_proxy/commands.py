"""The subcommands of `lakefs-s3-router` (`COMMANDS`); `explain` and `check` live here.

`explain` prints where one request would go and why (each earlier rule with the reason it did
not match); `check` validates a config and lists rules that can never match, unknown targets
and overlapping splits. Both use the functions the proxy routes with, so they cannot drift.
`explain` refuses a request no client could send (a method S3 does not use, a URL that names no
bucket) rather than explain something that never happens.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .config.model import ConfigError, load_config
from .routing.explain import (
    check,
    did_you_mean,
    explain,
    format_explanation,
    request_method,
    request_url,
)
from .routing.rules import HTTP_METHODS
from .s3.operations import OPERATIONS

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
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=os.environ.get("S3_ROUTER_CONFIG"),
        help="the proxy's YAML config file (default: $S3_ROUTER_CONFIG)",
    )
    parser.add_argument("--environment", metavar="NAME", help=ENVIRONMENT_HELP)
    return parser


def parse_command_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if not args.config:
        parser.error("no config: pass --config FILE (or set S3_ROUTER_CONFIG)")
    return args


def _argument(parse: Callable[[str], T]) -> Callable[[str], T]:
    """`parse` as an argparse type: its ValueError becomes the usage error's message."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__
    return convert


_method = _argument(request_method)
_s3_url = _argument(request_url)


def _operation(text: str) -> str:
    if text not in OPERATIONS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an S3 operation name such as GetObject or ListObjectsV2"
            + did_you_mean(text, sorted(OPERATIONS))
        )
    return text


def _header(value: str) -> tuple[str, str]:
    name, sep, text = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{value!r} is not 'Name: value'")
    return name.strip(), text.strip()


EXPLAIN_EXAMPLE = """\
examples:
  lakefs-s3-router explain --config router.yaml GET s3://photos/2024/cat.jpg
  lakefs-s3-router explain --config router.yaml PUT s3://photos/raw/a.png \\
      -H 'Content-Type: image/png' -H 'Content-Length: 1048576'
  lakefs-s3-router explain --config router.yaml GET s3://logs --operation ListObjectsV2

Exit status: 0 when a backend serves the request, 1 when none does, 2 for a bad config or
request."""


def explain_main(argv: list[str]) -> int:
    parser = command_parser(
        "explain",
        "Show which rule and backend serve a request, and why earlier rules did not.",
        EXPLAIN_EXAMPLE,
    )
    parser.add_argument(
        "method", type=_method, help=f"the HTTP method: {', '.join(sorted(HTTP_METHODS))}"
    )
    parser.add_argument(
        "url",
        type=_s3_url,
        help="s3://BUCKET/KEY or s3://BUCKET, the names the client uses",
    )
    parser.add_argument(
        "-H",
        "--header",
        action="append",
        type=_header,
        default=[],
        help="a request header, 'Name: value' (repeatable)",
    )
    parser.add_argument(
        "--operation", type=_operation, help="S3 operation name, e.g. ListObjectsV2"
    )
    args = parse_command_args(parser, argv)
    try:
        config = load_config(args.config, environment=args.environment)
    except ConfigError as exc:
        print(f"lakefs-s3-router: {exc}", file=sys.stderr)
        return 2
    bucket, key = args.url
    explanation = explain(config, args.method, bucket, key, args.header, operation=args.operation)
    print(format_explanation(explanation))
    return 0 if explanation.error is None else 1


CHECK_EXAMPLE = """\
example:
  lakefs-s3-router check --config router.yaml
  S3_ROUTER_ENVIRONMENT=production lakefs-s3-router check --config environments.yaml

Exit status: 0 when the config is valid, 1 when it is valid with warnings, 2 when it is not
valid (the message names the file, the line and the fix)."""


def check_main(argv: list[str]) -> int:
    parser = command_parser(
        "check", "Validate a config and warn about rules that can never match.", CHECK_EXAMPLE
    )
    args = parse_command_args(parser, argv)
    try:
        config = load_config(args.config, environment=args.environment)
    except ConfigError as exc:
        print(f"lakefs-s3-router: {exc}", file=sys.stderr)
        return 2
    findings = check(config)
    for finding in findings:
        print(finding)
    warnings = [f for f in findings if f.level == "warning"]
    print(
        f"{args.config}: valid; {len(config.backends)} backend(s), {len(config.rules)} rule(s), "
        f"{len(warnings)} warning(s)"
    )
    return 1 if warnings else 0


def repair_main(argv: list[str]) -> int:
    from .repair import repair_main as run

    return run(argv)


def migrate_main(argv: list[str]) -> int:
    from .migrate import migrate_main as run

    return run(argv)


@dataclass(frozen=True)
class Command:
    run: Callable[[list[str]], int]
    summary: str  # one line for `lakefs-s3-router --help`


COMMANDS = {
    "explain": Command(
        explain_main, "show which rule and backend serve a request, and why earlier rules did not"
    ),
    "check": Command(check_main, "validate a config; warn about rules that can never match"),
    "migrate": Command(
        migrate_main, "copy every object under one location to another, through the routing"
    ),
    "repair": Command(
        repair_main, "copy to mirrors (or delete from them) what best-effort mirroring missed"
    ),
}
