"""The front server against hostile framing, over raw sockets, with a `RawBackend` behind the
proxy: each test asserts what the client got AND what reached the backend.

Covered: a request head bounded while it arrives (one huge header costs no CPU), framing headers
validated before anything is forwarded (Transfer-Encoding other than `chunked`, Upgrade,
CONNECT), slow heads and slow bodies timed out, HTTP/1.0 framing and keep-alive.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from frontkit import (
    BUCKET,
    KEY,
    SECRET,
    Answer,
    backend_requests,
    closed_by_peer,
    cpu_seconds,
    exchange,
    framing_config,
    read_answer,
)
from harness import LOOPBACK, ProxyProcess, RawBackend
from rawclient import sign

HEAD_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawBackend]:
    with RawBackend(tmp_path_factory.mktemp("front-raw")) as backend:
        yield backend


@pytest.fixture(scope="module")
def proxy(raw: RawBackend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    directory = tmp_path_factory.mktemp("front-proxy")
    config = framing_config(
        directory,
        raw,
        header_timeout=2,
        body_timeout=2,
        body_min_rate=1024,
        max_request_head_bytes=HEAD_LIMIT,
    )
    with ProxyProcess(config, directory, log_level="info") as process:
        yield process


def marker() -> str:
    return uuid.uuid4().hex[:12]


def signed_head(
    proxy: ProxyProcess, method: str, path: str, headers: dict[str, str] | None = None
) -> bytes:
    """A signed request head (UNSIGNED-PAYLOAD), `headers` included in the signature."""
    all_headers = sign(
        method,
        f"{proxy.endpoint}{path}",
        KEY,
        SECRET,
        headers=headers,
        payload_hash="UNSIGNED-PAYLOAD",
    )
    all_headers.setdefault("Host", f"{LOOPBACK}:{proxy.port}")
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in all_headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def nothing_forwarded(raw: RawBackend, mark: str) -> None:
    time.sleep(0.3)  # a request wrongly forwarded would be on its way by now
    assert mark.encode() not in raw.received(), "the backend got bytes of a refused request"


def get_through(proxy: ProxyProcess, raw: RawBackend) -> None:
    """A plain anonymous GET is served and reaches the backend."""
    mark = marker()
    answers = exchange(
        proxy.port, f"GET /{BUCKET}/{mark} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), timeout=30
    )
    assert [a.status for a in answers] == [200]
    assert [r["method"] for r in backend_requests(raw, mark)] == ["GET"]


# -- one huge header, and the whole request head, bounded as they arrive --------------------------


def _send_huge_header(port: int, mark: str, total: int, outcome: dict[str, object]) -> None:
    """Send a head with one header of `total` bytes until the proxy closes the connection."""
    piece = b"a" * (1024 * 1024)
    with socket.create_connection((LOOPBACK, port), timeout=60) as sock:
        sent = 0
        try:
            sock.sendall(f"GET /{BUCKET}/{mark} HTTP/1.1\r\nHost: x\r\nX-Big: ".encode())
            while sent < total:
                sock.sendall(piece)
                sent += len(piece)
            sock.sendall(b"\r\n\r\n")
        except OSError:
            pass
        outcome["sent"] = sent
        outcome["answer"] = read_answer(sock.makefile("rb"))
        outcome["closed"] = closed_by_peer(sock, 30)


def test_a_huge_header_costs_no_cpu_and_is_closed(proxy: ProxyProcess, raw: RawBackend) -> None:
    mark = marker()
    outcome: dict[str, object] = {}
    before = cpu_seconds(proxy.pid)
    _send_huge_header(proxy.port, mark, 128 * 1024 * 1024, outcome)
    time.sleep(0.2)
    spent = cpu_seconds(proxy.pid) - before
    assert spent < 0.010, f"the proxy spent {spent * 1000:.1f} ms of CPU on one header"
    assert outcome["closed"]
    assert int(outcome["sent"]) < 128 * 1024 * 1024  # type: ignore[call-overload]
    answer = outcome["answer"]
    if answer is not None:  # the answer may be lost to the reset of the unread bytes
        assert isinstance(answer, Answer)
        assert (answer.status, answer.code) == (400, "RequestHeaderSectionTooLarge")
    nothing_forwarded(raw, mark)


def test_a_huge_header_does_not_hold_up_another_client(
    proxy: ProxyProcess, raw: RawBackend
) -> None:
    outcome: dict[str, object] = {}
    attacker = threading.Thread(
        target=_send_huge_header, args=(proxy.port, marker(), 128 * 1024 * 1024, outcome)
    )
    attacker.start()
    try:
        get_through(proxy, raw)
    finally:
        attacker.join(120)
    assert outcome["closed"]
    assert int(outcome["sent"]) < 128 * 1024 * 1024  # type: ignore[call-overload]


@pytest.mark.parametrize(("count", "forwarded"), [(3, True), (5, False)])
def test_the_whole_head_is_capped_not_only_each_line(
    proxy: ProxyProcess, raw: RawBackend, count: int, forwarded: bool
) -> None:
    """Headers of 15 KiB each: three fit in 64 KiB and are forwarded, five are refused whole."""
    mark = marker()
    pads = "".join(f"X-Pad-{i}: {'p' * 15 * 1024}\r\n" for i in range(count))
    head = f"GET /{BUCKET}/{mark} HTTP/1.1\r\nHost: x\r\n{pads}\r\n".encode()
    answers = exchange(proxy.port, head)
    if forwarded:
        assert [a.status for a in answers] == [200]
        seen = backend_requests(raw, mark)
        assert len(seen) == 1
        assert sum(1 for name, _ in seen[0]["headers"] if name.lower().startswith("x-pad-")) == 3
    else:
        assert [(a.status, a.code) for a in answers] == [(400, "RequestHeaderSectionTooLarge")]
        assert answers[0].headers["connection"] == "close"
        nothing_forwarded(raw, mark)


# -- framing headers validated before the request is handled --------------------------------------


@pytest.mark.parametrize(
    "coding", ["gzip", "xchunked", "chunked, gzip", "gzip, chunked", "identity", "chunked;q=1"]
)
@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_a_transfer_coding_other_than_chunked_is_not_implemented(
    proxy: ProxyProcess, raw: RawBackend, coding: str, method: str
) -> None:
    mark = marker()
    head = signed_head(proxy, method, f"/{BUCKET}/{mark}", {"Transfer-Encoding": coding})
    answers = exchange(proxy.port, head + b"5\r\nhello\r\n0\r\n\r\n")
    # llhttp refuses some codings itself, as it reads the header (400); the rest are 501.
    assert [(a.status, a.code) for a in answers] in (
        [(501, "NotImplemented")],
        [(400, "BadRequest")],
    )
    assert answers[0].headers["connection"] == "close"
    nothing_forwarded(raw, mark)


@pytest.mark.parametrize(
    "framing",
    [
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
        "Content-Length: 5\r\nContent-Length: 5",
        "Content-Length: 5\r\nTransfer-Encoding: chunked",
        "Content-Length: 05x",
        "Content-Length: 1" + "0" * 25,
    ],
)
def test_ambiguous_framing_is_refused_before_anything_is_forwarded(
    proxy: ProxyProcess, raw: RawBackend, framing: str
) -> None:
    mark = marker()
    head = f"PUT /{BUCKET}/{mark} HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n".encode()
    answers = exchange(proxy.port, head + b"5\r\nhello\r\n0\r\n\r\n")
    assert len(answers) <= 1
    if answers:
        assert answers[0].status in (400, 501)
        assert answers[0].headers["connection"] == "close"
    nothing_forwarded(raw, mark)


# -- upgrades and CONNECT -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("framing", "body"),
    [
        ("Content-Length: 5", b"hello"),
        ("Transfer-Encoding: chunked", b"5\r\nhello\r\n0\r\n\r\n"),
    ],
    ids=["length", "chunked"],
)
def test_an_upgrade_request_is_refused_with_its_body_unread(
    proxy: ProxyProcess, raw: RawBackend, framing: str, body: bytes
) -> None:
    mark = marker()
    head = signed_head(
        proxy,
        "PUT",
        f"/{BUCKET}/{mark}?tagging",
        {"Connection": "Upgrade", "Upgrade": "websocket"},
    ).replace(b"\r\n\r\n", f"\r\n{framing}\r\n\r\n".encode())
    with socket.create_connection((LOOPBACK, proxy.port), timeout=10) as sock:
        sock.sendall(head + body)
        answer = read_answer(sock.makefile("rb"))
        assert answer is not None and (answer.status, answer.code) == (400, "BadRequest")
        assert answer.headers["connection"] == "close"
        assert closed_by_peer(sock)
    nothing_forwarded(raw, mark)


@pytest.mark.parametrize(
    "head",
    [
        "CONNECT {host} HTTP/1.1\r\nHost: {host}\r\n\r\n",
        "GET /pub/{mark} HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\r\n",
        "GET /pub/{mark} HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n",
    ],
    ids=["connect", "upgrade-header", "connection-upgrade"],
)
def test_connect_and_upgrade_tokens_are_refused(
    proxy: ProxyProcess, raw: RawBackend, head: str
) -> None:
    mark = marker()
    host = f"{LOOPBACK}:{raw.port}"
    data = head.format(host=host, mark=mark) + f"GET /pub/{mark}-next HTTP/1.1\r\nHost: x\r\n\r\n"
    answers = exchange(proxy.port, data.encode(), answers=2)
    assert [a.status for a in answers] == [400]
    nothing_forwarded(raw, mark)
    assert not [r for r in raw.requests() if r.get("method") == "CONNECT"]


# -- slow heads and slow bodies -------------------------------------------------------------------


def test_a_trickled_head_times_out_long_before_the_keepalive_timeout(proxy: ProxyProcess) -> None:
    """keepalive_timeout is 30 s here, header_timeout 2 s."""
    with socket.create_connection((LOOPBACK, proxy.port), timeout=10) as sock:
        sock.sendall(b"GET /pub/slow HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        got = b""
        while time.monotonic() - started < 10:
            try:
                sock.sendall(b"X-Slow: a\r\n")
            except OSError:
                break
            sock.settimeout(0.5)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            got += data
        assert time.monotonic() - started < 8, "the trickled head was not timed out"
    if got:
        assert b" 400 " in got.split(b"\r\n")[0] and b"<Code>RequestTimeout</Code>" in got


def _trickle_body(port: int, head: bytes, outcome: list[Answer | None], seconds: float) -> None:
    with socket.create_connection((LOOPBACK, port), timeout=30) as sock:
        sock.sendall(head)
        sock.settimeout(0.5)
        stream = sock.makefile("rb")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                sock.sendall(b"x")
                if sock.recv(1, socket.MSG_PEEK):
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        sock.settimeout(10)
        outcome.append(read_answer(stream))


def test_slow_bodies_time_out_and_free_the_backend_connections(
    proxy: ProxyProcess, raw: RawBackend
) -> None:
    """Four uploads sending a byte at a time hold the four backend connections no longer than
    body_timeout (2 s, 1 KiB/s); nothing is committed and another client is served."""
    mark = marker()
    outcomes: list[Answer | None] = []
    threads = []
    for index in range(4):
        path = f"/{BUCKET}/{mark}-{index}"
        head = signed_head(proxy, "PUT", path, {"Content-Length": "1000"})
        thread = threading.Thread(
            target=_trickle_body, args=(proxy.port, head, outcomes, 15.0), daemon=True
        )
        thread.start()
        threads.append(thread)
    started = time.monotonic()
    time.sleep(1.0)
    get_through(proxy, raw)
    for thread in threads:
        thread.join(30)
    assert time.monotonic() - started < 12, "the slow bodies were not timed out"
    assert len(outcomes) == 4
    for answer in outcomes:
        assert answer is not None
        assert (answer.status, answer.code) == (400, "RequestTimeout")
        assert answer.headers["connection"] == "close"
    assert backend_requests(raw, mark) == []  # no upload completed at the backend


def test_a_body_above_the_minimum_rate_is_served(proxy: ProxyProcess, raw: RawBackend) -> None:
    """4 KiB/s for 4 s: longer than body_timeout, faster than body_min_rate."""
    mark = marker()
    body = bytes(range(256)) * 64  # 16 KiB
    head = signed_head(proxy, "PUT", f"/{BUCKET}/{mark}", {"Content-Length": str(len(body))})
    with socket.create_connection((LOOPBACK, proxy.port), timeout=30) as sock:
        sock.sendall(head)
        for offset in range(0, len(body), 1024):
            sock.sendall(body[offset : offset + 1024])
            time.sleep(0.25)
        answer = read_answer(sock.makefile("rb"))
    assert answer is not None and answer.status == 200, answer
    seen = backend_requests(raw, mark)
    assert [(r["method"], r["body_len"]) for r in seen] == [("PUT", len(body))]


# -- HTTP/1.0 -------------------------------------------------------------------------------------


def test_http_1_0_with_a_chunked_body_closes_after_the_answer(
    proxy: ProxyProcess, raw: RawBackend
) -> None:
    mark = marker()
    first = (
        f"PUT /{BUCKET}/{mark}?tagging HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n"
        "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    second = f"GET /{BUCKET}/{mark}-after HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    answers = exchange(proxy.port, (first + second).encode(), answers=2)
    assert [a.status for a in answers] == [200]
    assert answers[0].headers["connection"] == "close"
    time.sleep(0.3)
    seen = backend_requests(raw, mark)
    assert [(r["method"], r["target"], r["body_len"]) for r in seen] == [
        ("PUT", f"/{BUCKET}/{mark}?tagging=", 5)
    ]


def test_http_1_0_keeps_alive_only_when_asked(proxy: ProxyProcess, raw: RawBackend) -> None:
    mark = marker()
    kept = (
        f"PUT /{BUCKET}/{mark}-a HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc"
        f"GET /{BUCKET}/{mark}-b HTTP/1.0\r\n\r\n"
        f"GET /{BUCKET}/{mark}-c HTTP/1.0\r\n\r\n"
    )
    answers = exchange(proxy.port, kept.encode(), answers=3)
    assert [a.status for a in answers] == [200, 200]
    assert answers[0].headers["connection"] == "keep-alive"
    assert answers[1].headers["connection"] == "close"
    time.sleep(0.3)
    assert [r["target"].rsplit("-", 1)[1] for r in backend_requests(raw, mark)] == ["a", "b"]


def test_an_endless_trailer_is_cut_short(proxy: ProxyProcess, raw: RawBackend) -> None:
    """Trailer fields are joined like header values: they are bounded the same way, and
    refused anyway, so the chunked request never completes at the backend."""
    mark = marker()
    head = (
        f"PUT /{BUCKET}/{mark}?tagging HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n0\r\nX-Trailer: "
    ).encode()
    total, sent = 32 * 1024 * 1024, 0
    piece = b"t" * (1024 * 1024)
    with socket.create_connection((LOOPBACK, proxy.port), timeout=30) as sock:
        try:
            sock.sendall(head)
            while sent < total:
                sock.sendall(piece)
                sent += len(piece)
        except OSError:
            pass
        answer = read_answer(sock.makefile("rb"))
        assert closed_by_peer(sock)
    assert sent < total
    if answer is not None:
        assert answer.status == 400
    time.sleep(0.3)
    assert backend_requests(raw, mark) == []
