"""`lakefs-s3-router explain` and `lakefs-s3-router check`: the routing rules, examined offline.

`explain` prints where one request would go and why (each earlier rule with the reason it did
not match); `check` validates a config and lists rules that can never match, unknown targets
and overlapping splits. Both use the functions the proxy routes with, so they cannot drift.
"""

from __future__ import annotations

import argparse
import sys

from .config import ConfigError, load_config
from .explain import check, explain, format_explanation, parse_s3_url


def _header(value: str) -> tuple[str, str]:
    name, sep, text = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{value!r} is not 'Name: value'")
    return name.strip(), text.strip()


def explain_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="lakefs-s3-router explain",
        description="Show which rule and backend serve a request, and why earlier rules did not.",
    )
    parser.add_argument("--config", required=True)
    parser.add_argument(
        "--environment", help="config document (default: $S3_ROUTER_ENVIRONMENT, else $ENVIRONMENT)"
    )
    parser.add_argument("method", help="GET, PUT, HEAD, POST, DELETE")
    parser.add_argument("url", help="s3://bucket/key")
    parser.add_argument(
        "-H", "--header", action="append", type=_header, default=[], help="'Name: value'"
    )
    parser.add_argument("--operation", help="S3 operation name, e.g. ListObjectsV2")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, environment=args.environment)
    except ConfigError as exc:
        print(f"lakefs-s3-router: {exc}", file=sys.stderr)
        return 2
    bucket, key = parse_s3_url(args.url)
    explanation = explain(config, args.method, bucket, key, args.header, operation=args.operation)
    print(format_explanation(explanation))
    return 0 if explanation.error is None else 1


def check_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="lakefs-s3-router check",
        description="Validate a config and warn about rules that can never match.",
    )
    parser.add_argument("--config", required=True)
    parser.add_argument(
        "--environment", help="config document (default: $S3_ROUTER_ENVIRONMENT, else $ENVIRONMENT)"
    )
    args = parser.parse_args(argv)
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


SUBCOMMANDS = {
    "explain": explain_main,
    "check": check_main,
    "repair": repair_main,
    "migrate": migrate_main,
}
