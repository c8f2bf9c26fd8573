"""The front server is never looser than aiohttp's: each raw request below goes to aiohttp's own
server and to the proxy (with a `RawBackend` behind it, bucket `pub` open to anonymous
requests, so a request that passes framing IS forwarded). Whatever aiohttp refuses, the proxy
refuses, and the backend never logs it as a complete request. Where both accept, the backend
got the body aiohttp parsed, byte for byte. The proxy may refuse more than aiohttp does.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator

import pytest
from frontkit import AiohttpEcho, Answer, backend_requests, exchange, framing_config
from harness import ProxyProcess, RawBackend

HELLO = b"5\r\nhello\r\n0\r\n\r\n"
# PutObjectTagging: the proxy forwards it with a chunked body or a Content-Length one.
PUT = b"PUT /pub/{m}?tagging HTTP/1.1\r\nHost: x\r\n"
GET = b"GET /pub/{m} HTTP/1.1\r\nHost: x\r\n"


def put(framing: bytes, body: bytes = HELLO) -> bytes:
    return PUT + framing + b"\r\n\r\n" + body


def get(extra: bytes) -> bytes:
    return GET + extra + b"\r\n\r\n"


CASES: dict[str, bytes] = {
    # baselines: both must accept these, or the table proves nothing
    "plain-get": GET + b"\r\n",
    "plain-put-length": put(b"Content-Length: 5", b"hello"),
    "plain-put-chunked": put(b"Transfer-Encoding: chunked"),
    "expect-continue": put(b"Content-Length: 5\r\nExpect: 100-continue", b"hello"),
    "leading-crlf": b"\r\n" + GET + b"\r\n",
    # Content-Length and Transfer-Encoding together, duplicated, malformed
    "cl-te": put(b"Content-Length: 5\r\nTransfer-Encoding: chunked"),
    "te-cl": put(b"Transfer-Encoding: chunked\r\nContent-Length: 5"),
    "cl-te-zero": put(b"Content-Length: 0\r\nTransfer-Encoding: chunked"),
    "cl-duplicate-differs": put(b"Content-Length: 5\r\nContent-Length: 6", b"hello!"),
    "cl-duplicate-same": put(b"Content-Length: 5\r\nContent-Length: 5", b"hello"),
    "cl-list": put(b"Content-Length: 5, 5", b"hello"),
    "cl-plus": put(b"Content-Length: +5", b"hello"),
    "cl-minus": put(b"Content-Length: -5", b"hello"),
    "cl-hex": put(b"Content-Length: 0x5", b"hello"),
    "cl-decimal": put(b"Content-Length: 5.0", b"hello"),
    "cl-inner-space": put(b"Content-Length: 5 5", b"hello"),
    "cl-leading-space": put(b"Content-Length:  5", b"hello"),
    "cl-trailing-space": put(b"Content-Length: 5 ", b"hello"),
    "cl-empty": put(b"Content-Length: ", b"hello"),
    "cl-overflow": put(b"Content-Length: 99999999999999999999999", b"hello"),
    "cl-unicode-digit": put("Content-Length: \u0665".encode(), b"hello"),
    "cl-space-before-colon": put(b"Content-Length : 5", b"hello"),
    # Transfer-Encoding spellings
    "te-leading-space": put(b"Transfer-Encoding:  chunked"),
    "te-tab": put(b"Transfer-Encoding:\tchunked"),
    "te-trailing-space": put(b"Transfer-Encoding: chunked "),
    "te-quoted": put(b'Transfer-Encoding: "chunked"'),
    "te-mixed-case": put(b"Transfer-Encoding: cHuNkEd"),
    "te-upper-name": put(b"TRANSFER-ENCODING: chunked"),
    "te-chunked-chunked": put(b"Transfer-Encoding: chunked,chunked"),
    "te-chunked-space-chunked": put(b"Transfer-Encoding: chunked, chunked"),
    "te-two-lines": put(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"),
    "te-gzip-line-chunked-line": put(b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked"),
    "te-gzip": put(b"Transfer-Encoding: gzip"),
    "te-gzip-chunked": put(b"Transfer-Encoding: gzip, chunked"),
    "te-chunked-gzip": put(b"Transfer-Encoding: chunked, gzip"),
    "te-xchunked": put(b"Transfer-Encoding: xchunked"),
    "te-chunkedx": put(b"Transfer-Encoding: chunkedx"),
    "te-identity": put(b"Transfer-Encoding: identity", b"hello"),
    "te-vertical-tab": put(b"Transfer-Encoding: \x0bchunked"),
    "te-space-before-colon": put(b"Transfer-Encoding : chunked"),
    "te-obs-fold": put(b"Transfer-Encoding:\r\n chunked"),
    "te-http-1-0": put(b"Transfer-Encoding: chunked").replace(b"HTTP/1.1", b"HTTP/1.0"),
    # line endings, folding, control bytes
    "obs-fold": get(b"X-A: a\r\n b"),
    "first-line-folded": get(b" X-A: a"),
    "bare-lf-everywhere": b"GET /pub/{m} HTTP/1.1\nHost: x\n\n",
    "bare-lf-in-a-header": get(b"X-A: a\nX-B: b"),
    "bare-cr-in-a-value": get(b"X-A: a\rb"),
    "bare-cr-line-end": b"GET /pub/{m} HTTP/1.1\rHost: x\r\r",
    "nul-in-header-name": get(b"X-\x00A: b"),
    "nul-in-header-value": get(b"X-A: a\x00b"),
    "nul-in-path": b"GET /pub/{m}\x00x HTTP/1.1\r\nHost: x\r\n\r\n",
    "space-in-path": b"GET /pub/{m} x HTTP/1.1\r\nHost: x\r\n\r\n",
    "tab-in-path": b"GET /pub/{m}\tx HTTP/1.1\r\nHost: x\r\n\r\n",
    "del-in-value": get(b"X-A: a\x7fb"),
    "high-bytes-in-value": get(b"X-A: caf\xc3\xa9"),
    "space-in-header-name": get(b"X A: b"),
    "header-without-colon": get(b"X-A"),
    "empty-header-name": get(b": b"),
    "double-space-request-line": b"GET  /pub/{m} HTTP/1.1\r\nHost: x\r\n\r\n",
    # request targets and methods
    "absolute-form": b"GET http://x/pub/{m} HTTP/1.1\r\nHost: x\r\n\r\n",
    "absolute-form-https": b"GET https://x/pub/{m} HTTP/1.1\r\nHost: x\r\n\r\n",
    "authority-form-get": b"GET x:80 HTTP/1.1\r\nHost: {m}\r\n\r\n",
    "connect": b"CONNECT {m}:80 HTTP/1.1\r\nHost: {m}:80\r\n\r\n",
    "options-asterisk": b"OPTIONS * HTTP/1.1\r\nHost: {m}\r\n\r\n",
    "lowercase-method": b"get /pub/{m} HTTP/1.1\r\nHost: x\r\n\r\n",
    "unknown-method": b"FOO /pub/{m} HTTP/1.1\r\nHost: x\r\n\r\n",
    "two-hosts": get(b"Host: y"),
    "no-host": b"GET /pub/{m} HTTP/1.1\r\n\r\n",
    # versions
    "http-0-9": b"GET /pub/{m}\r\n\r\n",
    "http-1-2": b"GET /pub/{m} HTTP/1.2\r\nHost: x\r\n\r\n",
    "http-2-0-line": b"GET /pub/{m} HTTP/2.0\r\nHost: x\r\n\r\n",
    "http-2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n{m}",
    "lowercase-version": b"GET /pub/{m} http/1.1\r\nHost: x\r\n\r\n",
    # upgrades
    "upgrade-websocket-body": put(b"Content-Length: 5\r\nConnection: Upgrade\r\nUpgrade: websocket")
    + b"hello",
    "upgrade-websocket-chunked": put(
        b"Transfer-Encoding: chunked\r\nConnection: Upgrade\r\nUpgrade: websocket"
    ),
    "upgrade-h2c": get(
        b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AA"
    ),
    # sizes
    "long-request-line": b"GET /pub/{m}/" + b"k" * (17 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "long-header": get(b"X-Big: " + b"v" * (17 * 1024)),
    "long-head": get(b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 15000) for i in range(5))[:-2]),
    "many-headers": get(b"".join(b"X-H%d: v\r\n" % i for i in range(201))[:-2]),
    # chunk framing
    "chunk-size-junk": put(b"Transfer-Encoding: chunked", b"zz\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-overflow": put(
        b"Transfer-Encoding: chunked", b"fffffffffffffffffff\r\nhello\r\n0\r\n\r\n"
    ),
    "chunk-size-0x": put(b"Transfer-Encoding: chunked", b"0x5\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-negative": put(b"Transfer-Encoding: chunked", b"-5\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-plus": put(b"Transfer-Encoding: chunked", b"+5\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-trailing-space": put(b"Transfer-Encoding: chunked", b"5 \r\nhello\r\n0\r\n\r\n"),
    "chunk-size-leading-space": put(b"Transfer-Encoding: chunked", b" 5\r\nhello\r\n0\r\n\r\n"),
    "chunk-extension": put(b"Transfer-Encoding: chunked", b"5;a=b\r\nhello\r\n0\r\n\r\n"),
    "chunk-extension-quoted": put(
        b"Transfer-Encoding: chunked", b'5;a="b c"\r\nhello\r\n0\r\n\r\n'
    ),
    "chunk-extension-nul": put(b"Transfer-Encoding: chunked", b"5;a=\x00\r\nhello\r\n0\r\n\r\n"),
    "chunk-extension-bare-lf": put(b"Transfer-Encoding: chunked", b"5;a\nb\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-bare-lf": put(b"Transfer-Encoding: chunked", b"5\nhello\n0\n\n"),
    "chunk-data-too-long": put(b"Transfer-Encoding: chunked", b"5\r\nhelloX\r\n0\r\n\r\n"),
    "chunk-data-no-crlf": put(b"Transfer-Encoding: chunked", b"5\r\nhello0\r\n\r\n"),
    "chunk-missing-final-crlf": put(b"Transfer-Encoding: chunked", b"5\r\nhello\r\n0\r\n"),
    "chunk-missing-last-chunk": put(b"Transfer-Encoding: chunked", b"5\r\nhello\r\n"),
    "trailer-field": put(b"Transfer-Encoding: chunked", b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"),
    "trailer-content-length": put(
        b"Transfer-Encoding: chunked", b"5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n"
    ),
    "trailer-transfer-encoding": put(
        b"Transfer-Encoding: chunked", b"5\r\nhello\r\n0\r\nTransfer-Encoding: gzip\r\n\r\n"
    ),
    "trailer-obs-fold": put(
        b"Transfer-Encoding: chunked", b"5\r\nhello\r\n0\r\nX-T: 1\r\n 2\r\n\r\n"
    ),
    # lengths that lie
    "length-short-body": put(b"Content-Length: 50", b"hello"),
    "length-then-pipelined": put(b"Content-Length: 5", b"hello" + GET.replace(b"{m}", b"{n}")),
}

assert len(CASES) >= 60
# A request refused for its body was forwarded as it streamed, then aborted: the backend may
# hold some of its bytes, never a complete request.
_REFUSED_IN_THE_BODY = ("IncompleteBody", "RequestTimeout")


@pytest.fixture(scope="module")
def aiohttp_echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AiohttpEcho]:
    with AiohttpEcho(tmp_path_factory.mktemp("aiohttp-echo")) as server:
        yield server


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawBackend]:
    with RawBackend(tmp_path_factory.mktemp("differential-raw")) as backend:
        yield backend


@pytest.fixture(scope="module")
def proxy(raw: RawBackend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    directory = tmp_path_factory.mktemp("differential-proxy")
    config = framing_config(directory, raw, header_timeout=2, body_timeout=2)
    with ProxyProcess(config, directory, log_level="info") as process:
        yield process


def first_answer(port: int, data: bytes) -> Answer | None:
    answers = exchange(port, data, timeout=6.0)
    return answers[0] if answers else None


@pytest.mark.parametrize("name", list(CASES))
def test_the_proxy_is_never_looser_than_aiohttp(
    name: str, aiohttp_echo: AiohttpEcho, proxy: ProxyProcess, raw: RawBackend
) -> None:
    mark = uuid.uuid4().hex[:12]
    other = uuid.uuid4().hex[:12]  # a request after the one under test, when there is one
    data = CASES[name].replace(b"{m}", mark.encode()).replace(b"{n}", other.encode())
    reference = first_answer(aiohttp_echo.port, data)
    answer = first_answer(proxy.port, data)
    time.sleep(0.2)  # a request wrongly forwarded would be logged by now
    forwarded = backend_requests(raw, mark)
    if name.startswith(("plain-", "expect-", "leading-")):
        assert reference is not None and reference.status == 200, reference
        assert answer is not None and answer.status == 200, answer
        assert len(forwarded) == 1
    if reference is None or reference.status != 200:
        assert answer is None or answer.status >= 400, (answer, reference)
        assert forwarded == [], f"aiohttp refused {name}, yet the backend got {forwarded}"
        if answer is None or answer.code not in _REFUSED_IN_THE_BODY:
            # Refused at the head: not one byte of it went to the backend.
            assert mark.encode() not in raw.received()
    elif forwarded:
        parsed = json.loads(reference.body)
        assert len(forwarded) == 1
        assert forwarded[0]["body_len"] == parsed["body_len"]
        assert forwarded[0]["body_sha256"] == parsed["body_sha256"]
    if forwarded:
        assert answer is not None and answer.status == 200


def test_the_baseline_bodies_are_what_was_sent(proxy: ProxyProcess, raw: RawBackend) -> None:
    """The comparison above is only as good as its baselines: the forwarded body is `hello`."""
    mark = uuid.uuid4().hex[:12]
    first_answer(proxy.port, CASES["plain-put-chunked"].replace(b"{m}", mark.encode()))
    seen = backend_requests(raw, mark)
    assert [r["body_sha256"] for r in seen] == [hashlib.sha256(b"hello").hexdigest()]
