"""YAML with line numbers and `${VAR}` interpolation, so config errors can name file and line.

Every mapping loads as a `Mapping` that remembers the line of each key; every string scalar has
`${VAR}` / `${VAR:-default}` replaced from the environment at load time (secrets stay out of
files). A reference to an unset variable without a default is an error naming the line.

A substituted scalar stays text (`Substituted`), whatever it looks like: a secret such as `0123`
or `true` must not turn into a number or a flag. The setting it fills types it (`literal`), so
`max_concurrent_requests: ${MAXC:-100}` is the number 100, exactly as if 100 were written there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import yaml

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class YamlError(ValueError):
    """A YAML document that cannot be loaded; `line` is 1-based, 0 if unknown."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


class Substituted(str):
    """Text that `${VAR}` substitution produced; `variables` names what it read."""

    variables: tuple[str, ...] = ()


_RESOLVER = yaml.resolver.Resolver()


def literal(text: str) -> Any:
    """What `text` would have loaded as had it been written unquoted in the file: 100 is an int,
    true a bool, 2.5 a float, an empty text null; anything else stays a string."""
    text = text.strip()
    tag = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))
    if tag == "tag:yaml.org,2002:str":
        return text
    try:
        return yaml.constructor.SafeConstructor().construct_object(yaml.ScalarNode(tag, text))
    except (yaml.YAMLError, ValueError):
        return text


class LineDict(dict):
    """A mapping that remembers the line of each key (`key_lines`) and its own (`line`)."""

    line: int = 0
    key_lines: dict[Any, int]


def interpolate(value: str, line: int, env: Mapping[str, str]) -> str:
    """Replace `${VAR}` and `${VAR:-default}` in `value` from `env`; a `Substituted` if any."""
    if "${" not in value:
        return value
    names: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        names.append(name)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise YamlError(
            f"environment variable {name} is not set (referenced as ${{{name}}}); "
            f"set it or write ${{{name}:-default}}",
            line,
        )

    text = _VAR.sub(substitute, value)
    if not names:
        return text
    result = Substituted(text)
    result.variables = tuple(dict.fromkeys(names))
    return result


def _loader_class(env: Mapping[str, str]) -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> LineDict:
        loader.flatten_mapping(node)
        result = LineDict()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlError(
                    "a key must be a plain name, not a mapping or a list "
                    "(is a ':' or an indentation out of place?)",
                    key_node.start_mark.line + 1,
                )
            key = loader.construct_object(key_node, deep=True)
            if key in result:
                raise YamlError(f"duplicate key {key!r}", key_node.start_mark.line + 1)
            result[key] = loader.construct_object(value_node, deep=True)
            result.key_lines[key] = key_node.start_mark.line + 1
        return result

    def construct_str(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
        value = loader.construct_scalar(node)
        return interpolate(str(value), node.start_mark.line + 1, env)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    Loader.add_constructor("tag:yaml.org,2002:str", construct_str)
    return Loader


def load_documents(text: str, env: Mapping[str, str] | None = None) -> list[Any]:
    """Every document in `text`, with line-aware mappings and interpolated strings."""
    loader = _loader_class(os.environ if env is None else env)
    try:
        return [doc for doc in yaml.load_all(text, Loader=loader) if doc is not None]
    except YamlError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise YamlError(f"invalid YAML: {exc.problem or exc}", line) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"invalid YAML: {exc}") from None
