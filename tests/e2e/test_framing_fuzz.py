"""Pipelined requests with random framing, sent in random pieces to the proxy (a `RawBackend`
behind it): the backend sees exactly the requests, with exactly the bodies, that a strict
reading of the bytes gives, in order, and nothing after the first broken or final one. No
answer is a 5xx, and none hangs.

A small model says what each generated request should do: a well-framed one is forwarded whole;
a Content-Length shorter than the bytes that follow is forwarded with that many, and the rest is
a broken next request; a broken chunk framing is refused; an HTTP/1.0 request without
keep-alive (or with a chunked body) is the last one read.
"""

from __future__ import annotations

import hashlib
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from frontkit import backend_requests, framing_config, read_answer
from harness import LOOPBACK, ProxyProcess, RawBackend
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = 300


@dataclass
class Generated:
    data: bytes
    method: str
    target: str
    body: bytes  # what the backend must receive if it is forwarded
    forwarded: bool  # a strict reading forwards it
    last: bool  # nothing after it is read


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawBackend]:
    with RawBackend(tmp_path_factory.mktemp("fuzz-raw")) as backend:
        yield backend


@pytest.fixture(scope="module")
def proxy(raw: RawBackend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    directory = tmp_path_factory.mktemp("fuzz-proxy")
    config = framing_config(directory, raw, header_timeout=5, body_timeout=5)
    with ProxyProcess(config, directory, log_level="warning") as process:
        yield process


BODY = st.binary(max_size=300).map(lambda b: bytes(c % 26 + 97 for c in b))  # no CR, LF, digits
NOISE = st.lists(
    st.tuples(
        st.sampled_from(["X-Fuzz", "x-amz-meta-f", "Accept", "User-Agent"]),
        st.text("abcXYZ019 -_./", max_size=20).map(str.strip),
    ),
    max_size=3,
)


@st.composite
def chunked(draw: st.DrawFn, body: bytes) -> bytes:
    """`body` framed as HTTP/1.1 chunks of random sizes, hex in either case, maybe padded with
    zeros, maybe with an extension."""
    out = bytearray()
    rest = body
    while rest:
        size = draw(st.integers(1, max(1, len(rest))))
        piece, rest = rest[:size], rest[size:]
        digits = f"{len(piece):x}"
        if draw(st.booleans()):
            digits = digits.upper()
        digits = "0" * draw(st.integers(0, 2)) + digits
        ext = draw(st.sampled_from(["", ";a", ";name=value", ';q="x y"']))
        out += f"{digits}{ext}\r\n".encode() + piece + b"\r\n"
    return bytes(out + b"0\r\n\r\n")


@st.composite
def broken_chunked(draw: st.DrawFn, body: bytes) -> bytes:
    """A chunk framing no strict reader accepts, whatever else the bytes say."""
    body = body or b"x"
    size = f"{len(body):x}".encode()
    damage = draw(st.sampled_from(["junk-size", "no-crlf", "too-long", "bad-last"]))
    if damage == "junk-size":
        at = draw(st.integers(0, len(size)))
        size = size[:at] + draw(st.sampled_from([b"g", b"-", b"+", b"x", b" z"])) + size[at:]
        return size + b"\r\n" + body + b"\r\n0\r\n\r\n"
    if damage == "no-crlf":
        return size + b"\r\n" + body + b"0\r\n\r\n"
    if damage == "too-long":
        return size + b"\r\n" + body + b"q\r\n0\r\n\r\n"
    return size + b"\r\n" + body + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"


@st.composite
def request(draw: st.DrawFn, mark: str, index: int) -> Generated:
    kind = draw(
        st.sampled_from(["get", "delete", "length", "chunked", "short-length", "broken-chunked"])
    )
    version = draw(st.sampled_from(["1.1", "1.1", "1.1", "1.0"]))
    keep_alive = version == "1.1" or draw(st.booleans())
    noise = draw(NOISE)
    body = draw(BODY)
    method, target, payload, framing = "GET", f"/pub/{mark}-{index}", b"", []
    forwarded, sent_body = True, b""
    last = not keep_alive
    if kind == "delete":
        method = "DELETE"
    elif kind != "get":
        method, target = "PUT", f"/pub/{mark}-{index}?tagging="
        if kind == "length":
            framing, payload, sent_body = [f"Content-Length: {len(body)}"], body, body
        elif kind == "short-length":
            # \x01 cannot start a method: the reader refuses at once rather than wait for more.
            extra = b"\x01" + draw(st.binary(max_size=20))
            framing, payload, sent_body = [f"Content-Length: {len(body)}"], body + extra, body
            last = True  # what follows the body is a broken request
        else:
            framing = ["Transfer-Encoding: " + draw(st.sampled_from(["chunked", "Chunked"]))]
            if kind == "chunked":
                payload, sent_body = draw(chunked(body)), body
                last = last or version == "1.0"
            else:
                payload, forwarded, last = draw(broken_chunked(body)), False, True
    lines = [f"{method} {target} HTTP/{version}", "Host: x", *framing]
    lines += [f"{name}: {value}" for name, value in noise]
    if version == "1.0" and keep_alive:
        lines.append("Connection: keep-alive")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return Generated(head + payload, method, target, sent_body, forwarded, last)


@st.composite
def exchanges(draw: st.DrawFn) -> tuple[str, list[Generated], list[int]]:
    mark = uuid.uuid4().hex[:12]
    count = draw(st.integers(1, 4))
    requests = [draw(request(mark, index)) for index in range(count)]
    size = sum(len(r.data) for r in requests)
    cuts = sorted(draw(st.lists(st.integers(1, max(1, size - 1)), max_size=4, unique=True)))
    return mark, requests, cuts


def expected(requests: list[Generated]) -> tuple[list[Generated], int]:
    """The requests a strict reader forwards, and how many answers the client gets."""
    forwarded: list[Generated] = []
    answers = 0
    for generated in requests:
        answers += 1
        if not generated.forwarded:
            break
        forwarded.append(generated)
        if generated.last:
            break
    return forwarded, answers


_totals = {"expected": 0}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=exchanges())
def test_backend_sees_the_boundaries_a_strict_reader_sees(
    case: tuple[str, list[Generated], list[int]], proxy: ProxyProcess, raw: RawBackend
) -> None:
    mark, requests, cuts = case
    data = b"".join(r.data for r in requests)
    forwarded, answer_count = expected(requests)
    with socket.create_connection((LOOPBACK, proxy.port), timeout=20) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = 0
        try:
            for cut in [*cuts, len(data)]:
                sock.sendall(data[start:cut])
                start = cut
                time.sleep(0.001)
        except OSError:
            pass  # the proxy refused and closed early
        stream = sock.makefile("rb")
        statuses = []
        for _ in range(answer_count):
            answer = read_answer(stream)
            if answer is None:
                break
            statuses.append(answer.status)
    assert all(status < 500 for status in statuses), statuses
    assert statuses[: len(forwarded)] == [200] * len(forwarded), statuses
    if len(statuses) > len(forwarded):
        assert 400 <= statuses[len(forwarded)] < 500, statuses
    seen = backend_requests(raw, mark)
    assert [(r["method"], r["target"]) for r in seen] == [(g.method, g.target) for g in forwarded]
    for logged, generated in zip(seen, forwarded, strict=True):
        assert logged["body_sha256"] == hashlib.sha256(generated.body).hexdigest(), generated
    _totals["expected"] += len(forwarded)


def test_nothing_else_reached_the_backend_later(raw: RawBackend) -> None:
    """Run after the fuzz: a request forwarded after its example was checked shows up here."""
    time.sleep(0.5)
    logged = [r for r in raw.requests() if "error" not in r]
    assert len(logged) == _totals["expected"] > 0
