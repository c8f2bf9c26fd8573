"""Which document of a config file to use: a file may hold one YAML document per
`routing.environment`, chosen by `--environment`, else $S3_ROUTER_ENVIRONMENT, else
$ENVIRONMENT."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .reader import ConfigError

log = logging.getLogger("s3router_proxy")


def _document_environment(doc: Any) -> str | None:
    routing = doc.get("routing") if isinstance(doc, Mapping) else None
    value = routing.get("environment") if isinstance(routing, Mapping) else None
    return str(value) if value is not None else None


# The variable that picks a document. ENVIRONMENT is read when it is not set, as older
# versions did; but platforms set ENVIRONMENT for their own reasons, so a name read from it that
# matches no document is not taken as a choice (see select_environment).
ENVIRONMENT_VARIABLE = "S3_ROUTER_ENVIRONMENT"
FALLBACK_ENVIRONMENT_VARIABLE = "ENVIRONMENT"


def chosen_environment(environment: str | None, env: Mapping[str, str]) -> tuple[str | None, str]:
    """(name, where it came from): `--environment`, else $S3_ROUTER_ENVIRONMENT, else
    $ENVIRONMENT, else (None, "")."""
    if environment:
        return environment, "--environment"
    for variable in (ENVIRONMENT_VARIABLE, FALLBACK_ENVIRONMENT_VARIABLE):
        if env.get(variable):
            return env[variable], f"${variable}"
    return None, ""


def select_environment(
    documents: list[Any], environment: str | None, source: str, origin: str = "--environment"
) -> Any:
    """The document for `environment` from a multi-document file (`routing.environment`).

    A name from the fallback $ENVIRONMENT that matches no document picks nothing: a file of one
    document is used with a warning, a file of several is an error asking for a real choice.
    """
    if len(documents) == 1 and environment is None:
        return documents[0]
    named = {_document_environment(doc): doc for doc in documents}
    available = sorted(name for name in named if name)
    if environment is None:
        raise ConfigError(
            f"{source}: holds {len(documents)} documents for environments {available}; choose one "
            f"with --environment NAME or {ENVIRONMENT_VARIABLE}=NAME"
        )
    if environment not in named:
        if len(documents) == 1 and _document_environment(documents[0]) is None:
            return documents[0]
        fallback = origin == f"${FALLBACK_ENVIRONMENT_VARIABLE}"
        if fallback and len(documents) == 1:
            log.warning(
                "%s: $%s is %r but the file's only document is for environment %r; using it "
                "(set %s to choose a document explicitly)",
                source,
                FALLBACK_ENVIRONMENT_VARIABLE,
                environment,
                available[0],
                ENVIRONMENT_VARIABLE,
            )
            return documents[0]
        reason = f" (from {origin}" + (
            f", as {ENVIRONMENT_VARIABLE} is not set)" if fallback else ")"
        )
        raise ConfigError(
            f"{source}: no document for environment {environment!r}{reason}; the file has "
            f"{available}: choose one with --environment NAME or {ENVIRONMENT_VARIABLE}=NAME"
        )
    return named[environment]
