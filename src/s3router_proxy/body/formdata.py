"""A browser form upload's body (`multipart/form-data`, RFC 7578), read as it arrives.

The text fields come first and are small: each is read whole under a cap, and so is the
whole of what precedes the file. The part named `file` ends the form as S3 reads it: its
bytes stream on, never held whole. Their length is not announced, so it is worked out from
the request's Content-Length on one assumption, that the file is the form's last part and
the closing delimiter (`CRLF--boundary--CRLF`, what browsers and HTTP libraries write) is all
that follows it. The stream proves that as it goes: the form's delimiter must not occur in
the file's bytes and the body must end with exactly that closing delimiter. Until it has,
the last piece of the file is held back, so a form that breaks the assumption aborts the
upload before the backend has every byte, and nothing is written.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from ..http.messages import BodyTimeout
from ..s3.errors import S3Error
from .payload import BodyAborted, BodyCheck, BodyOutcome

MAX_FIELD_BYTES = 20 * 1024  # one text field's value
MAX_PART_HEAD_BYTES = 8 * 1024  # one part's header lines
MAX_FIELDS = 64
MAX_FORM_BYTES = 64 * 1024  # everything before the file's first byte
FILE_FIELD = "file"

# RFC 2046 `bchars`, 1 to 70, not ending in a space: never CR or LF, so a delimiter cannot
# overlap itself and a scan that carries its length less one byte finds every occurrence.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAM = re.compile(rf'[ \t]*;[ \t]*({_TOKEN})[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|({_TOKEN}))')
_HEADER_NAME = re.compile(_TOKEN)
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_UNESCAPE = re.compile(r"\\(.)")

Read = Callable[[], Awaitable[bytes]]


def malformed(message: str) -> S3Error:
    return S3Error("MalformedPOSTRequest", message)


def form_boundary(content_type: str) -> bytes:
    """The boundary a `multipart/form-data` Content-Type names, checked against RFC 2046."""
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise malformed("The body of a POST request must be multipart/form-data.")
    found = _params(";" + params if params.strip() else "")
    boundary = found.get("boundary")
    if boundary is None or not _BOUNDARY.fullmatch(boundary):
        raise malformed("The multipart/form-data Content-Type has no valid boundary.")
    return boundary.encode("ascii")


def _params(text: str) -> dict[str, str]:
    """`; name=value` parameters (values a token or a quoted string), names lower-cased."""
    found: dict[str, str] = {}
    pos = 0
    while pos < len(text.rstrip(" \t")):
        match = _PARAM.match(text, pos)
        if match is None:
            raise malformed("A multipart header has parameters that cannot be parsed.")
        name = match.group(1).lower()
        if name in found:
            raise malformed(f"A multipart header names the parameter {name!r} twice.")
        quoted = match.group(2)
        found[name] = _UNESCAPE.sub(r"\1", quoted) if quoted is not None else match.group(3)
        pos = match.end()
    return found


def part_name(head: bytes) -> tuple[str, str | None]:
    """(field name, filename or None) from one part's header lines."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise malformed("A part's headers are not UTF-8.") from None
    disposition = None
    for line in text.split("\r\n"):
        name, sep, value = line.partition(":")
        if not sep or not _HEADER_NAME.fullmatch(name) or _CONTROL.search(value):
            raise malformed("A part of the form has a malformed header line.")
        if name.lower() == "content-disposition":
            if disposition is not None:
                raise malformed("A part of the form has two Content-Disposition headers.")
            disposition = value.strip()
    if disposition is None:
        raise malformed("A part of the form has no Content-Disposition header.")
    kind, _, rest = disposition.partition(";")
    params = _params(";" + rest if rest.strip() else "")
    if kind.strip().lower() != "form-data" or not params.get("name"):
        raise malformed("A part of the form is not form-data with a name.")
    return params["name"], params.get("filename")


@dataclass(frozen=True, slots=True)
class Form:
    """The fields before the file (names lower-cased, as S3 compares them), the file's name as
    the client gave it, and the file's size."""

    fields: dict[str, str]
    filename: str | None
    file_size: int


class FormReader:
    """One form body, read from `read` (b"" at its end) of `length` bytes in all: first
    `read_fields`, then `file_body` (or `check_empty_file` for an empty one)."""

    def __init__(self, read: Read, boundary: bytes, length: int) -> None:
        self._read = read
        self._delimiter = b"\r\n--" + boundary
        self._closing = self._delimiter + b"--\r\n"
        self._length = length
        self._buffer = bytearray()
        self._consumed = 0  # bytes parsed and dropped from the buffer

    async def _fill(self) -> None:
        piece = await _piece(self._read)
        if not piece:
            raise malformed("The body ended before the form did.")
        self._buffer += piece

    async def _until(self, marker: bytes, limit: int, what: str) -> bytes:
        """The bytes before `marker` (at most `limit`), with the marker consumed."""
        while True:
            end = self._buffer.find(marker, 0, limit + len(marker))
            if end >= 0:
                found = bytes(self._buffer[:end])
                self._drop(end + len(marker))
                return found
            if len(self._buffer) >= limit + len(marker):
                raise S3Error(
                    "MaxPostPreDataLengthExceeded",
                    f"Your POST request's {what} was larger than {limit} bytes.",
                )
            await self._fill()

    def _drop(self, count: int) -> None:
        del self._buffer[:count]
        self._consumed += count
        if self._consumed > MAX_FORM_BYTES:
            raise S3Error(
                "MaxPostPreDataLengthExceeded",
                "Your POST request fields preceding the upload file were too large.",
            )

    async def read_fields(self) -> Form:
        """Every field up to the file part's head; its bytes are what comes next."""
        fields: dict[str, str] = {}
        first = self._delimiter[2:]
        while len(self._buffer) < len(first):
            await self._fill()
        if self._buffer[: len(first)] != first:
            raise malformed("The form must begin with its boundary.")
        self._drop(len(first))
        while True:
            while len(self._buffer) < 2:
                await self._fill()
            after = bytes(self._buffer[:2])
            if after == b"--":
                raise S3Error(
                    "IncorrectNumberOfFilesInPostRequest",
                    "POST requires exactly one file upload per request.",
                )
            if after != b"\r\n":
                raise malformed("A boundary in the form is followed by neither CRLF nor '--'.")
            self._drop(2)
            head = await self._until(b"\r\n\r\n", MAX_PART_HEAD_BYTES, "part header")
            name, filename = part_name(head)
            if name.lower() == FILE_FIELD:
                size = self._length - self._consumed - len(self._closing)
                if size < 0:
                    raise malformed("The body is shorter than its file part's headers say.")
                return Form(fields, filename, size)
            value = await self._until(self._delimiter, MAX_FIELD_BYTES, f"field {name!r}")
            if len(fields) >= MAX_FIELDS:
                raise malformed(f"A POST form has at most {MAX_FIELDS} fields.")
            if name.lower() in fields:
                raise malformed(f"The form field {name!r} appears twice.")
            try:
                fields[name.lower()] = value.decode("utf-8")
            except UnicodeDecodeError:
                raise malformed(f"The form field {name!r} is not UTF-8.") from None

    async def check_empty_file(self) -> None:
        """An empty file: the rest of the body must be the closing delimiter alone. Checked
        before anything is sent, since an empty body gives a backend nothing to abort."""
        while len(self._buffer) < len(self._closing):
            piece = await _piece(self._read)
            if not piece:
                break
            self._buffer += piece
        self._check_end(bytes(self._buffer))

    def _check_end(self, rest: bytes) -> None:
        if rest != self._closing:
            raise malformed(
                "The file must be the last part of the form, followed by the closing boundary."
            )

    async def file_body(
        self, outcome: BodyOutcome, checks: tuple[BodyCheck, ...] = ()
    ) -> AsyncIterator[bytes]:
        """The file's bytes, the last piece held until the form's end is proven and every
        check passed; any failure is in `outcome.failure`, and `BodyAborted` raised so the
        upload is aborted."""
        try:
            async for piece in self._file_pieces(outcome, checks):
                yield piece
        except S3Error as error:
            outcome.failure = error
            raise BodyAborted from error

    async def _file_pieces(
        self, outcome: BodyOutcome, checks: tuple[BodyCheck, ...]
    ) -> AsyncIterator[bytes]:
        remaining = self._file_size()
        delimiter = self._delimiter
        carry = b""  # the file's newest bytes: a delimiter may span two pieces
        held = b""
        pending = bytes(self._buffer)
        self._buffer.clear()
        while remaining > 0:
            piece = pending or await _piece(self._read)
            pending = b""
            if not piece:
                raise S3Error("IncompleteBody")
            data, pending = piece[:remaining], piece[remaining:]
            remaining -= len(data)
            # The piece itself, and where it meets the one before, without copying it whole.
            edge = carry + data[: len(delimiter) - 1]
            if delimiter in data or delimiter in edge:
                raise malformed(
                    "The file must be the last part of the form: its bytes hold the boundary."
                )
            carry = (edge if len(data) < len(delimiter) else data)[-(len(delimiter) - 1) :]
            for check in checks:
                check.hasher.update(data)  # type: ignore[attr-defined]
            if held:
                outcome.sent += len(held)
                yield held
            held = data
        rest = pending
        while len(rest) <= len(self._closing):
            piece = await _piece(self._read)
            if not piece:
                break
            rest += piece
        self._check_end(rest)
        for check in checks:
            if not check.matches():
                raise check.failure()
        if held:
            outcome.sent += len(held)
            yield held
        outcome.complete = True

    def _file_size(self) -> int:
        return self._length - self._consumed - len(self._closing)


async def _piece(read: Read) -> bytes:
    """The next piece of the body; the client's failures as the S3 errors they are."""
    try:
        return await read()
    except BodyTimeout:
        raise S3Error("RequestTimeout") from None
    except ConnectionError:
        raise S3Error("IncompleteBody") from None
