"""Backend answer framing (`responseparser`): where an answer ends, what is refused, and that it is
never looser than aiohttp's own client response parsers (C and pure Python) on the same bytes.

The same answers run through a real proxy in `tests/e2e/test_backend_framing.py`; here every one is
also fed byte by byte, which must not change the verdict.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http_parser import HttpResponseParserC, HttpResponseParserPy
from hypothesis import given, settings
from hypothesis import strategies as st

from s3router_proxy.http.responseparser import (
    MAX_FIELD_SIZE,
    MAX_HEAD,
    MAX_HEADERS,
    MAX_STATUS_LINE,
    BadAnswer,
    ResponseParser,
)

SMUGGLED = b"HTTP/1.1 200 OK\r\nX-Smuggled: yes\r\nContent-Length: 7\r\n\r\nSMUGGLE"


class Sink:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.body = bytearray()
        self.stray = bytearray()

    def on_head(self) -> None:
        self.events.append("head")

    def on_body(self, data: bytes) -> None:
        self.body += data

    def on_complete(self) -> None:
        self.events.append("complete")

    def on_stray(self, data: bytes) -> None:
        self.events.append("stray")
        self.stray += data


def run(
    data: bytes,
    *,
    head_only: bool = False,
    bytewise: bool = False,
    eof: bool = True,
    cuts: list[int] | None = None,
):
    """("bad", reason) or (status, headers, body, events) for `data` as one answer, fed in one
    read, byte by byte, or cut at `cuts`."""
    sink = Sink()
    parser = ResponseParser(sink)
    parser.begin(head_only)
    if bytewise:
        cuts = list(range(len(data)))
    bounds = [0, *sorted(cut for cut in cuts or () if 0 < cut < len(data)), len(data)]
    try:
        for start, end in itertools.pairwise(bounds):
            parser.feed(data[start:end])
        if eof:
            parser.feed_eof()
    except BadAnswer as exc:
        return ("bad", str(exc))
    events = [
        e for i, e in enumerate(sink.events) if e != "stray" or "stray" not in sink.events[:i]
    ]
    return (parser.status, parser.headers, bytes(sink.body), events, bytes(sink.stray))


def refused(data: bytes, *, bytewise: bool = False) -> bool:
    """Refused outright, or never complete (the connection then fails the answer)."""
    result = run(data, bytewise=bytewise)
    return result[0] == "bad" or "complete" not in result[3]


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), extra) + body


def chunked(body: bytes, head: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + head + b"\r\n" + body


GOOD = {
    "length": (ok(b"hello"), b"hello"),
    "empty": (ok(b""), b""),
    "chunked": (chunked(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), b"hello world"),
    "chunk-ext-trailer": (chunked(b"5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"), b"hello"),
    "interim": (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n" + ok(b"x"), b"x"),
    "http-1.0-to-close": (b"HTTP/1.0 200 OK\r\n\r\nall of it", b"all of it"),
    "obs-text-value": (ok(b"v", b"X-Name: caf\xc3\xa9\r\n"), b"v"),
    "no-reason": (b"HTTP/1.1 200 \r\nContent-Length: 1\r\n\r\nz", b"z"),
}

BAD = {
    "bare-lf": b"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
    "bare-lf-header": b"HTTP/1.1 200 OK\r\nContent-Length: 1\n\r\nx",
    "bare-cr-value": ok(b"x", b"X-A: a\rb\r\n"),
    "nul-value": ok(b"x", b"X-A: a\x00b\r\n"),
    "esc-value": ok(b"x", b"X-A: a\x1bb\r\n"),
    "del-value": ok(b"x", b"X-A: a\x7fb\r\n"),
    "obs-fold": ok(b"x", b"X-A: a\r\n b\r\n"),
    "space-in-name": ok(b"x", b"X A: b\r\n"),
    "space-before-colon": ok(b"x", b"X-A : b\r\n"),
    "duplicate-length": b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
    "same-length-twice": b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
    "length-list": b"HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx",
    "negative-length": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "plus-length": b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx",
    "huge-length": b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    "length-and-chunked": chunked(b"1\r\nx\r\n0\r\n\r\n", b"Content-Length: 1\r\n"),
    "gzip-coding": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc",
    "gzip-then-chunked": chunked(b"1\r\nx\r\n0\r\n\r\n", b"Transfer-Encoding: gzip\r\n"),
    "chunked-twice": chunked(b"1\r\nx\r\n0\r\n\r\n", b"Transfer-Encoding: chunked\r\n"),
    "chunk-size-garbage": chunked(b"zz\r\nx\r\n0\r\n\r\n"),
    "chunk-size-space": chunked(b"1 \r\nx\r\n0\r\n\r\n"),
    "chunk-size-overflow": chunked(b"10000000000000000\r\nx\r\n0\r\n\r\n"),
    "chunk-too-long": chunked(b"1\r\nxy\r\n0\r\n\r\n"),
    "chunk-bare-lf": chunked(b"1\nx\r\n0\r\n\r\n"),
    "chunk-truncated": chunked(b"5\r\nhel"),
    "length-truncated": b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    "bad-trailer": chunked(b"0\r\nX Bad: 1\r\n\r\n"),
    "status-letters": b"HTTP/1.1 2x0 OK\r\n\r\n",
    "status-999": b"HTTP/1.1 999 OK\r\nContent-Length: 0\r\n\r\n",
    "status-000": b"HTTP/1.1 000 OK\r\nContent-Length: 0\r\n\r\n",
    "status-2-digits": b"HTTP/1.1 20 OK\r\n\r\n",
    "switching-protocols": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n\x00\x00",
    "http-0.9": b"<html>hello</html>",
    "http-2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "http-2.0": b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    "http-1.2": b"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n",
    "rtsp": b"RTSP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    "lower-case-http": b"http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "leading-crlf": b"\r\n" + ok(b"x"),
    "huge-status-line": b"HTTP/1.1 200 " + b"x" * MAX_STATUS_LINE + b"\r\n\r\n",
    "huge-header": ok(b"x", b"X-Big: " + b"v" * MAX_FIELD_SIZE + b"\r\n"),
    "huge-header-name": ok(b"x", b"X" * MAX_FIELD_SIZE + b": v\r\n"),
    "huge-head": ok(b"x", b"".join(b"X-%d: %s\r\n" % (i, b"v" * 9000) for i in range(8))),
    "many-headers": ok(b"x", b"X-N: v\r\n" * (MAX_HEADERS + 1)),
    "endless-interim": b"HTTP/1.1 100 Continue\r\n\r\n" * 40 + ok(b"x"),
    "nothing": b"",
}


@pytest.mark.parametrize("bytewise", [False, True], ids=["one-read", "byte-by-byte"])
@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_answers(name: str, bytewise: bool) -> None:
    data, body = GOOD[name]
    status, _, got, events, _ = run(data, bytewise=bytewise)
    assert (status, got, events) == (200, body, ["head", "complete"])


@pytest.mark.parametrize("bytewise", [False, True], ids=["one-read", "byte-by-byte"])
@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_answers_are_refused(name: str, bytewise: bool) -> None:
    assert refused(BAD[name], bytewise=bytewise)


@pytest.mark.parametrize(
    ("data", "head_only", "body"),
    [
        (ok(b"a" * 32) + SMUGGLED, False, b"a" * 32),
        (chunked(b"1\r\nx\r\n0\r\n\r\n") + SMUGGLED, False, b"x"),
        (ok(b"fine") + b"\r\n", False, b"fine"),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\nSMUGGLE", False, b""),
        (b"HTTP/1.1 304 Not Modified\r\n\r\n" + SMUGGLED, False, b""),
        (ok(b"SMUGGLE"), True, b""),  # a HEAD answer's Content-Length announces no body
    ],
    ids=["after-length", "after-chunked", "crlf", "after-204", "after-304", "after-head"],
)
def test_bytes_after_an_answer_are_stray_never_its_own(
    data: bytes, head_only: bool, body: bytes
) -> None:
    for bytewise in (False, True):
        _, headers, got, events, _ = run(data, head_only=head_only, bytewise=bytewise)
        assert (got, events[:2], events[-1]) == (body, ["head", "complete"], "stray")
        assert "X-Smuggled" not in dict(headers)


def test_idle_bytes_are_stray() -> None:
    sink = Sink()
    parser = ResponseParser(sink)
    parser.feed(SMUGGLED)
    assert sink.events == ["stray"] and not sink.body


def test_head_is_bounded_while_it_arrives() -> None:
    # A header that never ends is refused once it passes the bound, not after it is whole.
    sink = Sink()
    parser = ResponseParser(sink)
    parser.begin(False)
    parser.feed(b"HTTP/1.1 200 OK\r\nX-Big: ")
    with pytest.raises(BadAnswer, match="too long"):
        for _ in range(MAX_HEAD):
            parser.feed(b"v" * 1024)


def test_interim_headers_do_not_leak_into_the_final_answer() -> None:
    data = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok(b"x", b"X-Final: 1\r\n")
    _, headers, _, _, _ = run(data)
    assert [name for name, _ in headers] == ["Content-Length", "X-Final"]


async def _aiohttp_refuses(cls: type, data: bytes) -> bool:
    loop = asyncio.get_running_loop()
    parser = cls(BaseProtocol(loop), loop, 2**16, max_line_size=8190, max_field_size=8190)
    try:
        messages, upgraded, _ = parser.feed_data(data)
        parser.feed_eof()
    except Exception:
        return True
    finals = [m for m, _ in messages if not 100 <= m.code < 200]
    if upgraded or not finals:
        return True
    return not all(payload.is_eof() for m, payload in messages if m in finals)


@pytest.mark.parametrize("cls", [HttpResponseParserC, HttpResponseParserPy], ids=["C", "py"])
async def test_never_looser_than_aiohttp(cls: type) -> None:
    looser = []
    for name, data in BAD.items():
        if await _aiohttp_refuses(cls, data) and not refused(data):
            looser.append(name)
    for name, (data, _) in GOOD.items():
        if await _aiohttp_refuses(cls, data) and not refused(data):
            looser.append(name)
    assert not looser
    refusals = [await _aiohttp_refuses(cls, data) for data in BAD.values()]
    assert sum(refusals) > len(BAD) // 2  # the yardstick does refuse things


_SAMPLES = [data for data, _ in GOOD.values()] + list(BAD.values())


@st.composite
def answers(draw: st.DrawFn) -> bytes:
    """A known answer, good or bad, with a few bytes changed, dropped or added."""
    data = bytearray(draw(st.sampled_from(_SAMPLES)))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data)))
        byte = draw(st.sampled_from([0x0D, 0x0A, 0x00, 0x20, 0x3A, 0x30, 0x3B, 0x48, 0x7F, 0xFF]))
        action = draw(st.sampled_from(["insert", "replace", "delete"]))
        if action == "insert" or at == len(data):
            data.insert(at, byte)
        elif action == "replace":
            data[at] = byte
        else:
            del data[at]
    return bytes(data)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(data=answers(), cuts=st.lists(st.integers(0, 200_000), max_size=8), head=st.booleans())
def test_any_bytes_any_reads_same_verdict_only_bad_answer(
    data: bytes, cuts: list[int], head: bool
) -> None:
    """Only `BadAnswer` escapes, and how the bytes were split into reads changes nothing."""
    whole = run(data, head_only=head)
    pieces = run(data, head_only=head, cuts=[cut % (len(data) + 1) for cut in cuts])
    if whole[0] == "bad":
        assert pieces[0] == "bad"
    else:
        assert pieces == whole
