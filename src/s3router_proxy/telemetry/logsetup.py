"""Logging: JSON lines for machines or plain text for people, one access line per request.

Access lines carry their data in `record.fields` (a dict); the JSON formatter writes those
fields as top-level keys, the text formatter as `key=value` pairs. Nothing secret is ever put
in a field: the access key id identifies a client, signatures and secrets never reach a log.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

ACCESS_LOGGER = "s3router_proxy.access"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _text_value(value: Any) -> str:
    """A field value for a `key=value` line: bare when that is unambiguous, else JSON-quoted.

    Keys and bucket names come from clients and may hold spaces, quotes, `=` or control
    characters (a newline would otherwise start a forged log line), so such values are quoted
    and escaped.
    """
    text = str(value)
    if text and all(c.isprintable() and not c.isspace() and c not in "\"'=\\" for c in text):
        return text
    return json.dumps(text, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        if fields:
            record.msg = " ".join(
                f"{name}={_text_value(value)}"
                for name, value in fields.items()
                if value is not None and value != ""
            )
            record.args = ()
        return super().format(record)


def configure_logging(level: str, fmt: str) -> None:
    """Route every log line to stderr in the chosen format (`json` or `text`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiohttp's own access log would duplicate ours; its errors still come through.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
