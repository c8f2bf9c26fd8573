"""The store's answers: shaped like the HTTP client's (`http/client.UpstreamResponse`), so the
relay, the copy engine and the proxy's own small requests read them the same way, and the S3
XML documents and errors they carry."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable
from email.utils import formatdate
from urllib.parse import quote
from xml.sax.saxutils import escape

from ..http.client import REASONS, TooLarge
from ..s3.errors import S3Error, error_xml, new_request_id

PIECE = 256 * 1024  # a stored body goes to the client in pieces of this size
XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
OWNER = "<Owner><ID>redis</ID><DisplayName>redis</DisplayName></Owner>"

# Codes S3 uses that the proxy's own errors do not: (status, message).
STORE_ERRORS: dict[str, tuple[int, str]] = {
    "BucketAlreadyOwnedByYou": (
        409,
        "Your previous request to create the named bucket succeeded and you already own it.",
    ),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty"),
    "InvalidRange": (416, "The requested range is not satisfiable"),
    "PreconditionFailed": (412, "At least one of the pre-conditions you specified did not hold"),
}


def store_error(code: str, message: str | None = None, **details: str) -> S3Error:
    status, default = STORE_ERRORS.get(code, (0, ""))
    return S3Error(code, message or default or None, status=status or None, details=details)


class StoredAnswer:
    """An answer the store made: status, headers as sent, and a body read or streamed once."""

    __slots__ = ("_body", "header_map", "headers", "reason", "status")

    def __init__(self, status: int, headers: Iterable[tuple[str, str]], body: bytes = b"") -> None:
        self.status = status
        self.reason = REASONS.get(status, "")
        self.headers = list(headers)
        self.header_map = {name.lower(): value for name, value in self.headers}
        self._body: memoryview | None = memoryview(body)

    @property
    def body_complete(self) -> bool:
        return self._body is not None and not self._body

    async def read(self, limit: int) -> bytes:
        body = self._body
        self._body = memoryview(b"")
        if body is None:
            return b""
        if len(body) > limit:
            raise TooLarge("the store's answer is larger than expected")
        return bytes(body)

    async def next_piece(self) -> bytes:
        body = self._body
        if not body:
            return b""
        self._body = body[PIECE:]
        return bytes(body[:PIECE])

    async def iter_pieces(self) -> AsyncIterator[bytes]:
        while piece := await self.next_piece():
            yield piece

    def release(self) -> None:
        self._body = None


def xml_answer(document: str, status: int = 200) -> StoredAnswer:
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n' + document).encode("utf-8")
    return StoredAnswer(
        status,
        [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
        body,
    )


def empty_answer(status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> StoredAnswer:
    return StoredAnswer(status, [*headers, ("Content-Length", "0")])


def error_answer(error: S3Error, method: str, resource: str) -> StoredAnswer:
    """`error` as S3 sends it: its XML, or only its status for a HEAD."""
    headers = [(name, value) for name, value in error.headers.items()]
    if method == "HEAD":
        return StoredAnswer(error.status, [*headers, ("Content-Length", "0")])
    body = error_xml(error, resource=resource, request_id=new_request_id())
    headers += [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
    return StoredAnswer(error.status, headers, body)


def http_date(seconds: float) -> str:
    return formatdate(int(seconds), usegmt=True)


def iso_time(seconds: float) -> str:
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def text(value: str, url_encoded: bool = False) -> str:
    """An element's text: URL-encoded when the client asked `encoding-type=url`."""
    return quote(value, safe="/") if url_encoded else escape(value)


def element(name: str, value: str | int | None, url_encoded: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return f"<{name}>{value}</{name}>"
    return f"<{name}>{text(value, url_encoded)}</{name}>"
