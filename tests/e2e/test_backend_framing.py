"""A backend that breaks HTTP/1.1 framing, behind a real proxy process.

Each case scripts the raw bytes `RawBackend` answers one request with, sends that request through
the proxy on a fresh client connection, and checks what the client got (the whole correct answer,
or an S3 error: never a hang, a traceback or a byte of another message) and what the backend saw;
then the NEXT request, from another client, must get its own answer, on a new backend connection
when the broken one had to be retired. One proxy and one backend serve every case in turn, as a
long-running proxy would.
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from harness import LOOPBACK, ProxyProcess, RawBackend, write_config
from lxml import etree
from rawclient import sign

KEY, SECRET = "AKIAFRAMING", "framing-secret"
BUCKET = "framing"
SMUGGLED = (
    b"HTTP/1.1 200 OK\r\nX-Smuggled: yes\r\nSet-Cookie: session=stolen\r\n"
    b"Content-Length: 7\r\n\r\nSMUGGLE"
)
ERROR_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message><RequestId>R</RequestId></Error>"
)


def ok(body: bytes, *, status: bytes = b"200 OK", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\n%s\r\n" % (status, len(body), extra) + body


def chunked(*lines: bytes, head: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + head + b"\r\n" + b"".join(lines)


def send(data: bytes) -> list[dict[str, Any]]:
    return [{"send": data}]


@dataclass(frozen=True)
class Case:
    name: str
    steps: list[dict[str, Any]]
    # "ok": exactly `status` and `body`; "error": an S3 503; "error_or_broken": that, or a
    # stream the proxy cut (its head went out before the backend broke off).
    expect: str
    status: int = 200
    body: bytes = b""
    method: str = "GET"
    retire: bool = True  # the backend connection must not carry the next request
    settle: float = 0.0  # wait before the next request (for late writes)
    status_line: bytes | None = None
    early: bool = False  # the backend answers before the request body is in
    upload: int = 0
    absent: tuple[str, ...] = field(default=("x-smuggled", "set-cookie", "link"))
    present: tuple[tuple[str, str], ...] = ()  # (lower-case name, value) the client must get


BIG = b"x" * 100_000
CASES = [
    # -- bytes after a complete answer never become part of it, nor of the next one; a backend
    # that answers what was not asked is out of step, so the answer in hand fails too
    Case("data-after-length-body", send(ok(b"a" * 32) + SMUGGLED), "error"),
    Case("data-after-chunked-body", send(chunked(b"5\r\nhello\r\n0\r\n\r\n", SMUGGLED)), "error"),
    Case("crlf-after-answer", send(ok(b"fine") + b"\r\n"), "ok", body=b"fine"),
    Case(
        "late-unsolicited-answer",
        [{"send": ok(b"first")}, {"sleep": 1.0}, {"send": SMUGGLED}],
        "ok",
        body=b"first",
        settle=2.5,
    ),
    Case(
        "late-unsolicited-crlf",
        [{"send": ok(b"first")}, {"sleep": 1.0}, {"send": b"\r\n"}],
        "ok",
        body=b"first",
        settle=2.5,
    ),
    Case("data-after-204", send(b"HTTP/1.1 204 No Content\r\n\r\n" + SMUGGLED), "error"),
    Case(
        "data-after-304",
        send(b'HTTP/1.1 304 Not Modified\r\nETag: "e"\r\n\r\n' + SMUGGLED),
        "error",
    ),
    Case("data-after-head-answer", send(ok(b"SMUGGLE") + SMUGGLED), "error", method="HEAD"),
    # -- a HEAD answer goes on as its head alone: the length it names, no body, no chunks
    Case(
        "head-answer-with-length",
        send(b'HTTP/1.1 200 OK\r\nContent-Length: 12345\r\nETag: "e"\r\n\r\n'),
        "ok",
        method="HEAD",
        retire=False,
        present=(("content-length", "12345"), ("etag", '"e"')),
        absent=("transfer-encoding", "x-smuggled"),
    ),
    Case(
        "head-answer-chunked",
        send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        "ok",
        method="HEAD",
        retire=False,
        absent=("transfer-encoding", "x-smuggled"),
    ),
    Case(
        "304-then-204",
        send(b"HTTP/1.1 304 Not Modified\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"),
        "error",
    ),
    # -- a 304 or 204 that names the length of what it does not send is a whole answer
    Case(
        "304-with-content-length",
        send(b'HTTP/1.1 304 Not Modified\r\nETag: "e"\r\nContent-Length: 5\r\n\r\n'),
        "ok",
        status=304,
        retire=False,
    ),
    Case(
        "204-with-content-length",
        send(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
        "ok",
        status=204,
        retire=False,
    ),
    # -- interim answers are skipped, a 101 is refused
    Case(
        "100-continue-first",
        send(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"hello")),
        "ok",
        body=b"hello",
        retire=False,
    ),
    Case(
        "102-then-103-then-final",
        send(
            b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
            + ok(b"hello")
        ),
        "ok",
        body=b"hello",
        retire=False,
    ),
    Case(
        "1xx-in-separate-writes",
        [{"send": b"HTTP/1.1 100 Continue\r\n\r\n"}, {"sleep": 0.2}, {"send": ok(b"later")}],
        "ok",
        body=b"later",
        retire=False,
    ),
    Case("endless-1xx", send(b"HTTP/1.1 100 Continue\r\n\r\n" * 40 + ok(b"x")), "error"),
    Case(
        "101-switching-protocols",
        send(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"
            + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
        ),
        "error",
    ),
    # -- what reaches the client of the head is clean
    Case(
        "control-bytes-in-reason",
        send(ok(b"ok", status=b"200 O\x01K\x00\x1b[31m")),
        "ok",
        body=b"ok",
        status_line=b"HTTP/1.1 200 OK",
        retire=False,
    ),
    Case(
        "reason-phrase-not-forwarded",
        send(
            ok(ERROR_XML, status=b"403 <b>Go away</b>", extra=b"Content-Type: application/xml\r\n")
        ),
        "ok",
        status=403,
        body=ERROR_XML,
        status_line=b"HTTP/1.1 403 Forbidden",
        retire=False,
    ),
    Case("nul-in-header-value", send(ok(b"x", extra=b"X-Evil: a\x00b\r\n")), "error"),
    Case("bare-cr-in-header-value", send(ok(b"x", extra=b"X-Evil: a\rSet-Cookie: b\r\n")), "error"),
    Case("control-byte-in-header-value", send(ok(b"x", extra=b"X-Evil: a\x1bb\r\n")), "error"),
    # -- framing the answer
    Case(
        "duplicate-content-length",
        send(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde"),
        "error",
    ),
    Case(
        "content-length-and-chunked",
        send(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\n\r\n"
        ),
        "error",
    ),
    Case(
        "transfer-encoding-not-chunked",
        send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc"),
        "error",
    ),
    Case(
        "transfer-encoding-chunked-twice",
        send(chunked(b"3\r\nabc\r\n0\r\n\r\n", head=b"Transfer-Encoding: chunked\r\n")),
        "error",
    ),
    Case(
        "negative-content-length", send(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nx"), "error"
    ),
    Case(
        "overflowing-content-length",
        send(b"HTTP/1.1 200 OK\r\nContent-Length: 184467440737095516160\r\n\r\nx"),
        "error",
    ),
    Case(
        "content-length-with-plus",
        send(b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello"),
        "error",
    ),
    Case("bad-chunk-size", send(chunked(b"zz\r\nhello\r\n0\r\n\r\n")), "error"),
    Case(
        "chunk-size-overflow", send(chunked(b"1" + b"0" * 16 + b"\r\nhello\r\n0\r\n\r\n")), "error"
    ),
    Case("chunk-longer-than-size", send(chunked(b"3\r\nhello\r\n0\r\n\r\n")), "error"),
    Case(
        "chunk-extension-and-trailer",
        send(chunked(b"5;name=value\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n")),
        "ok",
        body=b"hello",
        retire=False,
    ),
    Case(
        "truncated-length-body-then-close",
        [{"send": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-ten!!"}, {"close": True}],
        "error",
    ),
    Case(
        "truncated-chunked-body-then-close",
        [{"send": chunked(b"5\r\nhello\r\n20\r\nnot all")}, {"close": True}],
        "error_or_broken",
    ),
    Case(
        "body-until-close",
        [{"send": b"HTTP/1.0 200 OK\r\n\r\nto the end"}, {"close": True}],
        "ok",
        body=b"to the end",
    ),
    Case("connection-close", send(ok(b"bye", extra=b"Connection: close\r\n")), "ok", body=b"bye"),
    Case("close-before-any-byte", [{"close": True}], "error"),
    # -- the head itself
    Case("obs-fold", send(ok(b"x", extra=b"X-Folded: a\r\n b\r\n")), "error"),
    Case("bare-lf", send(b"HTTP/1.1 200 OK\nContent-Length: 1\n\nx"), "error"),
    Case(
        "bare-lf-after-status-line", send(b"HTTP/1.1 200 OK\r\nContent-Length: 1\n\r\nx"), "error"
    ),
    Case("status-line-garbage", send(b"HTTP/1.1 2x0 OK\r\nContent-Length: 1\r\n\r\nx"), "error"),
    Case("status-out-of-range", send(b"HTTP/1.1 999 Odd\r\nContent-Length: 1\r\n\r\nx"), "error"),
    Case("not-http-at-all", send(b"garbage\r\n\r\n"), "error"),
    Case("http-0.9-style-answer", send(b"<html>hello</html>"), "error"),
    Case("http-2-preface", send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), "error"),
    Case("rtsp-answer", send(b"RTSP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx"), "error"),
    Case("http-2.0-version", send(b"HTTP/2.0 200 OK\r\nContent-Length: 1\r\n\r\nx"), "error"),
    Case("header-name-with-space", send(ok(b"x", extra=b"X Evil: a\r\n")), "error"),
    Case("huge-header-line", send(b"HTTP/1.1 200 OK\r\nX-Big: " + BIG + b"\r\n\r\n"), "error"),
    Case("huge-status-line", send(b"HTTP/1.1 200 " + BIG + b"\r\n\r\n"), "error"),
    Case(
        "huge-head",
        send(ok(b"x", extra=b"".join(b"X-%d: %s\r\n" % (i, b"v" * 10_000) for i in range(10)))),
        "error",
    ),
    Case("too-many-headers", send(ok(b"x", extra=b"X-N: v\r\n" * 300)), "error"),
    # -- an answer before the request's body is all sent
    Case(
        "answer-before-request-body",
        send(ok(ERROR_XML, status=b"403 Forbidden", extra=b"Content-Type: application/xml\r\n")),
        "ok",
        status=403,
        body=ERROR_XML,
        method="PUT",
        early=True,
        upload=4 * 1024 * 1024,
    ),
]


@dataclass
class Got:
    status_line: bytes
    status: int
    headers: dict[str, str]
    body: bytes
    complete: bool  # framed as announced and nothing after it


def _parse(raw: bytes, method: str, reset: bool) -> Got:
    head, sep, rest = raw.partition(b"\r\n\r\n")
    assert sep, f"no complete head from the proxy: {raw[:300]!r}"
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        assert name.lower() not in headers, f"repeated header {name} in {head!r}"
        headers[name.lower()] = value.strip()
    if method == "HEAD" or status in (204, 304):
        return Got(lines[0], status, headers, b"", not rest and not reset)
    if "content-length" in headers:
        length = int(headers["content-length"])
        return Got(lines[0], status, headers, rest[:length], len(rest) == length and not reset)
    assert headers.get("transfer-encoding") == "chunked", head
    body = bytearray()
    while True:
        size_line, sep, rest = rest.partition(b"\r\n")
        if not sep:
            return Got(lines[0], status, headers, bytes(body), False)
        size = int(size_line, 16)
        if size == 0:
            return Got(lines[0], status, headers, bytes(body), rest == b"\r\n" and not reset)
        body += rest[:size]
        rest = rest[size + 2 :]


def request(proxy: ProxyProcess, method: str, key: str, body: bytes = b"") -> Got:
    """One request on a new client connection (`Connection: close`); the whole raw answer."""
    path = f"/{BUCKET}/{key}"
    headers = sign(method, proxy.endpoint + path, KEY, SECRET, body=body)
    if body:
        headers["Content-Length"] = str(len(body))
    headers["Host"] = f"{LOOPBACK}:{proxy.port}"
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    raw, reset = bytearray(), False
    with socket.create_connection((LOOPBACK, proxy.port), timeout=90) as sock:
        try:
            sock.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)
        except (BrokenPipeError, ConnectionResetError):
            reset = True  # an early answer and a close while the body still went out
        try:
            while data := sock.recv(65536):
                raw += data
        except ConnectionResetError:
            reset = True
    return _parse(bytes(raw), method, reset)


def error_code(got: Got) -> str:
    try:
        code = etree.fromstring(got.body).find("Code")
    except etree.XMLSyntaxError:
        return ""
    return "" if code is None else str(code.text)


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawBackend]:
    with RawBackend(tmp_path_factory.mktemp("framing-backend")) as backend:
        yield backend


@pytest.fixture(scope="module")
def proxy(raw: RawBackend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    directory: Path = tmp_path_factory.mktemp("framing-proxy")
    config = write_config(
        directory,
        f"""
        backends:
          raw:
            endpoint: "{raw.endpoint}"
            access_key_id: "backend-key"
            secret_access_key: "backend-secret"
            read_timeout: 30
        clients:
          - name: "tester"
            access_key_id: "{KEY}"
            secret_access_key: "{SECRET}"
        routing:
          default_target: raw
        """,
    )
    with ProxyProcess(config, directory, log_level="info") as process:
        yield process


def _seen(raw: RawBackend, target: str) -> list[dict[str, Any]]:
    return [r for r in raw.requests() if r.get("target") == target]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_broken_backend_answer(case: Case, raw: RawBackend, proxy: ProxyProcess) -> None:
    key, next_key = f"case-{case.name}", f"next-{case.name}"
    target, next_target = f"/{BUCKET}/{key}", f"/{BUCKET}/{next_key}"
    next_body = f"the answer to {next_key}".encode()
    entry: dict[str, Any] = {"steps": case.steps, "no_continue": True}
    if case.early:
        entry["early"] = True
    raw.script({f"{case.method} {target}": entry, f"GET {next_target}": send(ok(next_body))})
    upload = b"u" * case.upload
    log_start = len(proxy.log_text())

    got = request(proxy, case.method, key, upload)

    if case.expect == "ok" and case.body.startswith(b"<?xml"):
        # A backend's error reaches the client as that error, under the proxy's request id.
        assert (got.status, got.complete) == (case.status, True), got
        sent, seen = etree.fromstring(case.body), etree.fromstring(got.body)
        assert [(e.tag, e.text) for e in seen if e.tag != "RequestId"] == [
            (e.tag, e.text) for e in sent if e.tag != "RequestId"
        ], got
        assert seen.findtext("RequestId") == got.headers["x-amz-request-id"], got
    elif case.expect == "ok":
        assert (got.status, got.body, got.complete) == (case.status, case.body, True), got
    elif case.method == "HEAD":  # an error without its body
        assert (got.status, got.complete) == (503, True), got
    elif got.complete or case.expect == "error":
        assert (got.status, error_code(got), got.complete) == (503, "ServiceUnavailable", True), got
        assert b"in time" not in got.body  # refused at once, not after the read timeout
    if case.status_line is not None:
        assert got.status_line == case.status_line
    assert not set(case.absent) & set(got.headers), got.headers
    assert all(got.headers.get(name) == value for name, value in case.present), got.headers
    assert b"SMUGGLE" not in got.body

    time.sleep(case.settle)
    following = request(proxy, "GET", next_key)
    assert (following.status, following.body, following.complete) == (200, next_body, True)
    assert not set(case.absent) & set(following.headers), following.headers

    seen = _seen(raw, target)
    assert seen and all(r["method"] == case.method for r in seen), raw.requests()[-5:]
    if case.upload:
        early = [r for r in seen if r.get("early")]
        assert early and not [r for r in seen if "body_len" in r], "the whole body was sent"
    next_seen = _seen(raw, next_target)
    assert len(next_seen) == 1
    if case.retire:
        assert next_seen[0]["conn"] not in {r["conn"] for r in seen}, "a broken connection kept"
    log = proxy.log_text()[log_start:]
    assert "Traceback" not in log and "Fatal error" not in log, proxy.log_tail(40)


def test_reused_connection_after_clean_answers(raw: RawBackend, proxy: ProxyProcess) -> None:
    """The yardstick for `retire`: well-framed answers do keep their connection."""
    body = hashlib.sha256(b"keep").hexdigest().encode()
    raw.script({"*": send(ok(body))})
    first = request(proxy, "GET", "keep-1")
    second = request(proxy, "GET", "keep-2")
    assert (first.body, second.body) == (body, body)
    conns = [_seen(raw, f"/{BUCKET}/keep-{n}")[0]["conn"] for n in (1, 2)]
    assert conns[0] == conns[1]


def test_late_answer_racing_the_next_request(raw: RawBackend, proxy: ProxyProcess) -> None:
    """An unsolicited answer that arrives while the next request is out on that connection is,
    by HTTP/1.1, that request's answer; the real one right behind it shows the backend is out of
    step and fails the exchange: the next client gets a 503, never the stray answer."""
    raw.script(
        {
            # The late answer and the one to the next request leave in one write.
            f"GET /{BUCKET}/race-late": [
                {"send": ok(b"first")},
                {"sleep": 1.0},
                {"send": SMUGGLED + ok(b"mine")},
            ],
            f"GET /{BUCKET}/race-mine": [{"sleep": 0}],
            f"GET /{BUCKET}/race-after": send(ok(b"after")),
        }
    )
    first = request(proxy, "GET", "race-late")
    second = request(proxy, "GET", "race-mine")  # on the pooled connection, within the second
    third = request(proxy, "GET", "race-after")
    assert (first.status, first.body, first.complete) == (200, b"first", True)
    assert "x-smuggled" not in second.headers, second
    assert (second.status, error_code(second), second.complete) == (
        503,
        "ServiceUnavailable",
        True,
    )
    assert (third.status, third.body, third.complete) == (200, b"after", True)
    conns = {name: _seen(raw, f"/{BUCKET}/race-{name}")[0]["conn"] for name in ("late", "mine")}
    assert conns["late"] == conns["mine"]  # the race this test is about did happen
    assert _seen(raw, f"/{BUCKET}/race-after")[0]["conn"] != conns["mine"]


@pytest.mark.parametrize(
    ("status", "page", "code"),
    [
        (
            b"500 Internal Server Error",
            b"<html><h1>Internal Server Error</h1></html>",
            "InternalError",
        ),
        (b"502 Bad Gateway", b"<html><center>502 Bad Gateway</center></html>", "InternalError"),
        (b"503 Service Unavailable", b"upstream connect error", "ServiceUnavailable"),
        (b"501 Not Implemented", b"", "NotImplemented"),
    ],
)
def test_a_server_error_page_reaches_the_client_as_s3_error_xml(
    status: bytes, page: bytes, code: str, raw: RawBackend, proxy: ProxyProcess
) -> None:
    """A store's (or its load balancer's) HTML or text error page is no answer an S3 client can
    parse: the client gets S3's error document, with the same status and the proxy's request id.
    A server error that is S3 XML already passes as it is."""
    number = int(status[:3])
    key = f"error-page-{number}"
    xml_key = f"error-xml-{number}"
    s3_error = ERROR_XML.replace(b"AccessDenied", b"SlowDown")
    raw.script(
        {
            f"GET /{BUCKET}/{key}": send(
                ok(page, status=status, extra=b"Content-Type: text/html\r\n")
            ),
            f"GET /{BUCKET}/{xml_key}": send(ok(s3_error, status=status)),
        }
    )
    got = request(proxy, "GET", key)
    assert (got.status, error_code(got), got.complete) == (number, code, True), got
    assert got.headers["content-type"] == "application/xml"
    document = etree.fromstring(got.body)
    assert document.findtext("RequestId") == got.headers["x-amz-request-id"]
    assert page not in got.body or not page

    passed = request(proxy, "GET", xml_key)
    assert (passed.status, error_code(passed)) == (number, "SlowDown"), passed
