"""Where a backend's answer begins and ends, byte for byte: HTTP/1.1 response framing, sans I/O.

`client.py` feeds the bytes a connection receives; this module says which of them are the
answer to the request in flight (head, then body pieces, then the end) and which belong to no
answer at all. A byte outside an answer (after its end, or while no request is out) is never
parsed as a next answer: the connection it came on cannot be trusted and is retired, so one
backend answer can never bleed into the next request's.

The head is bounded while it arrives (status line, each header line, header count, whole head),
in linear time, and only then parsed by llhttp (`httptools`), which refuses
obs-fold, bare LF, control bytes in values, duplicate or malformed Content-Length and Content-
Length with Transfer-Encoding. The body's framing is decided here (RFC 9112 section 6.3), not by
llhttp, which cannot be told an answer is to a HEAD request: no body after HEAD, 1xx, 204 or 304
whatever the head says; `Transfer-Encoding: chunked` (nothing else); Content-Length; otherwise to
the end of the connection. Interim 1xx answers are skipped, a 101 is refused.
"""

from __future__ import annotations

import re
from typing import Protocol

import httptools

# Bounds like the client side's in `requestparser.py`, checked while the head arrives; the line
# and count bounds are aiohttp's client defaults (this client replaced aiohttp's), so no answer
# aiohttp refused for its size gets through here.
MAX_STATUS_LINE = 8190
MAX_FIELD_SIZE = 8190  # one header or trailer line
MAX_HEADERS = 128
MAX_HEAD = 64 * 1024
MAX_INTERIM = 16  # 1xx answers before the final one
MAX_CHUNK_LINE = 4 * 1024  # a chunk-size line with its extensions

_NO_BODY_STATUS = frozenset({204, 304})
_HTTP1 = b"HTTP/1."
# Control bytes other than HTAB (and the CR LF that end lines).
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})(?:;[\t\x20-\x7e\x80-\xff]*)?")
_TRAILER = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*")

# States of one connection's reading.
IDLE = 0  # no request out: any byte is stray
HEAD = 1
LENGTH = 2  # a body of Content-Length bytes
CHUNK_SIZE = 3
CHUNK_DATA = 4
CHUNK_END = 5  # the CRLF after a chunk's data
TRAILERS = 6
UNTIL_CLOSE = 7  # a body delimited by the end of the connection
DONE = 8  # the answer is complete: any further byte is stray
# The longest line, with its CRLF, in each state of a chunked body that reads lines.
_LINE_LIMIT = {CHUNK_END: 2, CHUNK_SIZE: MAX_CHUNK_LINE + 2, TRAILERS: MAX_FIELD_SIZE + 2}


class BadAnswer(ValueError):
    """The backend's bytes are not a well-framed HTTP/1.1 answer (or are beyond a bound)."""


class AnswerSink(Protocol):
    def on_head(self) -> None: ...
    def on_body(self, data: bytes) -> None: ...
    def on_complete(self) -> None: ...
    def on_stray(self, data: bytes) -> None: ...


class ResponseParser:
    """Delimits the answers to a connection's requests, one at a time; see the module doc."""

    __slots__ = (
        "_buf",
        "_head_only",
        "_headers_seen",
        "_line",
        "_line_start",
        "_lines",
        "_remaining",
        "_trailers",
        "header_map",
        "headers",
        "interim",
        "keep_alive",
        "sink",
        "state",
        "status",
        "version",
    )

    def __init__(self, sink: AnswerSink) -> None:
        self.sink = sink
        self.state = IDLE
        self._head_only = False
        self.interim = 0
        self._new_head()

    def _new_head(self) -> None:
        self.status = 0
        self.version = ""
        self.headers: list[tuple[str, str]] = []
        self.header_map: dict[str, str] = {}
        self.keep_alive = True
        self._buf = bytearray()
        self._line_start = 0
        self._lines = 0
        self._headers_seen = False
        self._remaining = 0
        self._line = bytearray()
        self._trailers = 0

    def begin(self, head_only: bool) -> None:
        """A request went out: the next bytes are its answer (`head_only` for HEAD)."""
        self._head_only = head_only
        self.interim = 0
        self._new_head()
        self.state = HEAD

    @property
    def started(self) -> bool:
        """Some byte of the answer in flight arrived (an interim answer counts)."""
        return self.state != HEAD or bool(self._buf) or self.interim > 0

    @property
    def body_left(self) -> int:
        """Bytes still to come of a Content-Length body (0 for any other state)."""
        return self._remaining if self.state == LENGTH else 0

    def body_skipped(self) -> None:
        """The rest of a Content-Length body went past this parser (spliced): the answer ends."""
        if self.state == LENGTH:
            self._remaining = 0
            self._finish()

    def feed(self, data: bytes) -> None:
        """Take bytes as they arrived; raises `BadAnswer` when they cannot be an answer."""
        while data:
            state = self.state
            if state == LENGTH:
                data = self._feed_length(data)
            elif state == UNTIL_CLOSE:
                self.sink.on_body(data)
                return
            elif state == HEAD:
                data = self._feed_head(data)
            elif CHUNK_SIZE <= state <= TRAILERS:
                data = self._feed_chunked(data)
            else:  # IDLE or DONE: these bytes belong to no answer
                self.state = DONE
                self.sink.on_stray(data)
                return

    def feed_eof(self) -> bool:
        """The connection ended; True when that completed the answer (a body to the end)."""
        if self.state == UNTIL_CLOSE:
            self._finish()
            return True
        return self.state == DONE

    # the head

    def _feed_head(self, data: bytes) -> bytes:
        buf = self._buf
        if not buf:
            # The usual case, a whole head in one read and short enough that no line can pass
            # its bound: checked with a few C-level scans instead of line by line.
            end = data.find(b"\r\n\r\n") + 4
            if 4 <= end <= MAX_FIELD_SIZE and data.startswith(_HTTP1):
                head = data[:end]
                lines = head.count(b"\r\n")
                if head.count(b"\n") != lines:
                    raise BadAnswer("a line of the head ends in a bare LF")
                if lines > MAX_HEADERS + 2:
                    raise BadAnswer("too many headers")
                return self._end_head(head, data[end:])
        pos = len(buf)
        buf += data
        if self._lines == 0 and not _HTTP1.startswith(bytes(buf[:7])):
            raise BadAnswer("not an HTTP/1.x answer")
        start = self._line_start
        while True:
            end = buf.find(b"\n", pos)
            if end < 0:
                break
            if end == 0 or buf[end - 1] != 0x0D:
                raise BadAnswer("a line of the head ends in a bare LF")
            length = end - 1 - start
            if length == 0:
                end += 1
                if end > MAX_HEAD:
                    raise BadAnswer("the head is too large")
                return self._end_head(bytes(buf[:end]), bytes(buf[end:]))
            self._check_line(length)
            self._lines += 1
            if self._lines > MAX_HEADERS + 1:
                raise BadAnswer("too many headers")
            start = pos = end + 1
        self._line_start = start
        self._check_line(len(buf) - start)
        if len(buf) > MAX_HEAD:
            raise BadAnswer("the head is too large")
        return b""

    def _check_line(self, length: int) -> None:
        if self._lines == 0:
            if length > MAX_STATUS_LINE:
                raise BadAnswer("the status line is too long")
        elif length > MAX_FIELD_SIZE:
            raise BadAnswer("a header line is too long")

    def _end_head(self, head: bytes, rest: bytes) -> bytes:
        # llhttp refuses control bytes in values too; this is the second lock. The reason
        # phrase may hold them: it is never passed on.
        if _CONTROL.search(head, head.find(b"\r\n")):
            raise BadAnswer("a control character in a header")
        parser = httptools.HttpResponseParser(self)
        try:
            parser.feed_data(head)
        except httptools.HttpParserUpgrade:
            pass  # a 101: refused below, by its status
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            raise BadAnswer(str(cause if isinstance(cause, BadAnswer) else exc)) from None
        except httptools.HttpParserError as exc:
            raise BadAnswer(str(exc) or type(exc).__name__) from None
        if not self._headers_seen:
            raise BadAnswer("the head was not understood")
        status = parser.get_status_code()
        version = parser.get_http_version()
        if version not in ("1.1", "1.0"):
            raise BadAnswer(f"HTTP version {version}")
        if not 100 <= status <= 599:
            raise BadAnswer(f"status {status}")
        if status == 101:
            raise BadAnswer("the backend switched protocols")
        if status < 200:
            # An interim answer (100 Continue, 102, 103 Early Hints): the final one follows.
            self.interim += 1
            if self.interim > MAX_INTERIM:
                raise BadAnswer("too many interim answers")
            self._new_head()
            return rest
        self.status, self.version = status, version
        header_map = self.header_map
        connection = header_map.get("connection")
        if connection is None:
            self.keep_alive = version == "1.1"
        else:
            tokens = {token.strip() for token in connection.lower().split(",")}
            self.keep_alive = "close" not in tokens if version == "1.1" else "keep-alive" in tokens
        coding = header_map.get("transfer-encoding")
        if self._head_only or status in _NO_BODY_STATUS:
            self.state = DONE
        elif coding is not None:
            if coding.strip().lower() != "chunked":
                raise BadAnswer("a transfer coding other than chunked")
            self.state = CHUNK_SIZE
        elif "content-length" in header_map:
            # llhttp refused a repeated, signed, spaced or overflowing value already.
            self._remaining = int(header_map["content-length"])
            self.state = LENGTH if self._remaining else DONE
        else:
            self.state = UNTIL_CLOSE
            self.keep_alive = False
        self.sink.on_head()
        if self.state == DONE:
            self.sink.on_complete()
        return rest

    # httptools callbacks, for the head only

    def on_header(self, name: bytes, value: bytes) -> None:
        text = name.decode("latin-1")
        decoded = value.decode("utf-8", "surrogateescape")
        self.headers.append((text, decoded))
        lower = text.lower()
        header_map = self.header_map
        if lower in header_map:
            header_map[lower] += "," + decoded
        else:
            header_map[lower] = decoded

    def on_headers_complete(self) -> None:
        self._headers_seen = True

    # the body

    def _finish(self) -> None:
        self.state = DONE
        self.sink.on_complete()

    def _feed_length(self, data: bytes) -> bytes:
        remaining = self._remaining
        if len(data) < remaining:
            self._remaining = remaining - len(data)
            self.sink.on_body(data)
            return b""
        self._remaining = 0
        if len(data) == remaining:
            self.sink.on_body(data)
            self._finish()
            return b""
        self.sink.on_body(data[:remaining])
        self._finish()
        return data[remaining:]

    def _feed_chunked(self, data: bytes) -> bytes:
        pos, size = 0, len(data)
        sink = self.sink
        while pos < size:
            state = self.state
            if state == CHUNK_DATA:
                take = min(self._remaining, size - pos)
                sink.on_body(data if take == size else data[pos : pos + take])
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self.state = CHUNK_END
                continue
            end = data.find(b"\n", pos)
            stop = size if end < 0 else end + 1
            line = self._line
            line += data[pos:stop]
            pos = stop
            if len(line) > _LINE_LIMIT[state]:
                raise BadAnswer("a chunk line is too long")
            if end < 0:
                break
            if len(line) < 2 or line[-2] != 0x0D:
                raise BadAnswer("a chunk line ends in a bare LF")
            text = bytes(line[:-2])
            self._line = bytearray()
            if state == CHUNK_END:
                if text:
                    raise BadAnswer("a chunk is longer than its size")
                self.state = CHUNK_SIZE
            elif state == CHUNK_SIZE:
                match = _CHUNK_SIZE.fullmatch(text)
                if match is None:
                    raise BadAnswer("a bad chunk size")
                self._remaining = int(match[1], 16)
                self.state = CHUNK_DATA if self._remaining else TRAILERS
            elif text:  # a trailer: checked, not passed on
                self._trailers += 1
                if self._trailers > MAX_HEADERS or not _TRAILER.fullmatch(text):
                    raise BadAnswer("a bad trailer")
            else:
                self._finish()
                return data[pos:]
        return b""
