"""`explain` and `check`, the subcommands that read a config without serving it.

`explain` prints where one request would go and why (each earlier rule with the reason it did
not match); `check` validates a config and lists rules that can never match, unknown targets
and overlapping splits. Both use the functions the proxy routes with, so they cannot drift.
`explain` refuses a request no client could send (a method S3 does not use, a URL that names no
bucket) rather than explain something that never happens.
"""

from __future__ import annotations

import argparse

from ..auth.anonymous import explain_unsigned
from ..config.model import Config, RedisSettings
from ..routing.check import CheckWarning, check
from ..routing.conditions import HTTP_METHODS
from ..routing.explain import (
    DescribedRequest,
    did_you_mean,
    explain,
    format_explanation,
    request_method,
    request_url,
)
from ..s3.operations import OPERATIONS
from .base import argument_type, command_config, command_parser, parse_command_args

_method = argument_type(request_method)
_s3_url = argument_type(request_url)


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
    config = command_config(args)
    if config is None:
        return 2
    bucket, key = args.url
    asked = DescribedRequest(args.method, bucket, key, args.header, operation=args.operation)
    explanation = explain(config, asked)
    print(format_explanation(explanation))
    if explanation.route is not None:
        backend = config.backends.get(explanation.route.backend)
        if backend is not None and backend.redis is not None:
            print(f"  store: {_redis_store(backend.redis)}")
    unsigned = explain_unsigned(
        explanation, config.anonymous, config.anonymous_unsigned, config.stores_without_acls
    )
    print(f"  unsigned, this request is {unsigned}")
    return 0 if explanation.error is None else 1


def _redis_store(settings: RedisSettings) -> str:
    kept = "until deleted" if settings.ttl is None else f"{settings.ttl:g} s after each write"
    return (
        f"redis at {settings.url}, objects kept {kept}, each at most "
        f"{settings.max_object_size} bytes; no multipart uploads, no versions"
    )


def redis_findings(config: Config) -> list[CheckWarning]:
    """What `check` says about rules that send requests to a `kind: redis` store."""
    findings = []
    for name, backend in config.backends.items():
        if backend.redis is not None:
            findings.append(
                CheckWarning(f"backends.{name}", 0, _redis_store(backend.redis), "note")
            )
    for index, rule in enumerate(config.rules):
        stores = [rule.target, *rule.mirror]
        for name in stores:
            settings = config.backends[name].redis if name in config.backends else None
            largest = rule.conditions.max_size if rule.conditions else None
            if settings is None or (largest or 0) <= settings.max_object_size:
                continue
            findings.append(
                CheckWarning(
                    rule.name or f"routing.rules[{index}]",
                    rule.line,
                    f"max_size {largest} is above backend {name}'s max_object_size "
                    f"{settings.max_object_size}: objects in between are refused "
                    "(EntityTooLarge)",
                    rule=rule,
                )
            )
    return findings


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
    config = command_config(args)
    if config is None:
        return 2
    findings = check(config) + redis_findings(config)
    for finding in findings:
        print(finding)
    warnings = [f for f in findings if f.level == "warning"]
    print(
        f"{args.config}: valid; {len(config.backends)} backend(s), {len(config.rules)} rule(s), "
        f"{len(warnings)} warning(s)"
    )
    return 1 if warnings else 0
