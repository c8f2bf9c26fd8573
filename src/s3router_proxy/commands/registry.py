"""The subcommands of `lakefs-s3-router` (`COMMANDS`), each with its one-line summary.

`migrate` and `repair` are imported only when run: they bring the whole forwarding stack,
which `explain` and `check` do not need.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .explain import check_main, explain_main


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
