"""The edges of a spliced upload (`http/uploadsplice.py`) and of the send timeout, behind a real
proxy process.

moto (checking the proxy's signatures) shows what was stored, read back by sha256; `RawBackend`
shows what a backend received and answers what no S3 server would. The client is a raw socket
wherever framing is the point: keep-alive and pipelining after a spliced body, `Expect:
100-continue`, a body shorter than its Content-Length, a backend that hangs up or answers
before the body is in, the splice threshold, descriptors after many uploads, and a download
client that reads slowly but never stops.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import (
    LOOPBACK,
    MotoBackend,
    ProxyProcess,
    RawBackend,
    StartProxy,
)
from rawclient import sign
from test_upload_splice import (
    KEY,
    SECRET,
    Answers,
    config,
    connect,
    moto_proxy,
    raw_proxy,
    reset,
    spliced,
    stored,
    unsigned_head,
)

from s3router_proxy.http import splice

MIB = 1024 * 1024

pytestmark = pytest.mark.skipif(not splice.AVAILABLE, reason="no os.splice here")


@pytest.fixture
def bucket(moto_auth: MotoBackend) -> Iterator[str]:
    yield from moto_auth.fresh_bucket("upedges")


@pytest.fixture
def raw(tmp_path: Path) -> Iterator[RawBackend]:
    with RawBackend(tmp_path / "raw-backend") as backend:
        yield backend


def signed_get(proxy: ProxyProcess, path: str) -> bytes:
    headers = sign("GET", proxy.endpoint + path, KEY, SECRET)
    headers["Host"] = f"{LOOPBACK}:{proxy.port}"
    return (
        f"GET {path} HTTP/1.1\r\n".encode()
        + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
        + b"\r\n"
    )


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- keep-alive and pipelining on the client's side ---------------------------------------


def test_spliced_put_then_get_then_spliced_put_on_one_connection(
    start_proxy: StartProxy, moto_auth: MotoBackend, bucket: str
) -> None:
    moto_auth.client().put_object(Bucket=bucket, Key="small", Body=b"small object")
    proxy = moto_proxy(start_proxy, moto_auth)
    first, second = os.urandom(3 * MIB + 1), os.urandom(5 * MIB + 7)
    sock = connect(proxy)
    answers = Answers(sock)
    sock.sendall(unsigned_head(proxy, f"/{bucket}/one", len(first)) + first)
    status, headers, _ = answers.next()
    assert status == 200 and headers.get("connection") != "close", headers
    sock.sendall(signed_get(proxy, f"/{bucket}/small"))
    assert answers.next()[::2] == (200, b"small object")
    sock.sendall(unsigned_head(proxy, f"/{bucket}/two", len(second)) + second)
    status, headers, _ = answers.next()
    assert status == 200 and headers.get("connection") != "close", headers
    sock.close()
    assert stored(moto_auth, bucket, "one") == sha(first)
    assert stored(moto_auth, bucket, "two") == sha(second)
    assert len(spliced(proxy)) == 2


def test_next_requests_in_the_same_write_as_the_end_of_a_spliced_body(
    start_proxy: StartProxy, moto_auth: MotoBackend, bucket: str
) -> None:
    """The splice is under way when the body's last bytes arrive with two more requests behind
    them: it takes exactly the body, and the parser reads both requests after it."""
    moto_auth.client().put_object(Bucket=bucket, Key="small", Body=b"small object")
    proxy = moto_proxy(start_proxy, moto_auth)
    first, second = os.urandom(4 * MIB + 3), os.urandom(2 * MIB + 5)
    sock = connect(proxy)
    sock.sendall(unsigned_head(proxy, f"/{bucket}/one", len(first)) + first[:-1000])
    time.sleep(1.0)  # the head is answered with a splice, which waits for the rest
    sock.sendall(
        first[-1000:]
        + signed_get(proxy, f"/{bucket}/small")
        + unsigned_head(proxy, f"/{bucket}/two", len(second))
        + second
    )
    answers = Answers(sock)
    assert answers.next()[0] == 200
    assert answers.next()[::2] == (200, b"small object")
    assert answers.next()[0] == 200
    sock.close()
    assert stored(moto_auth, bucket, "one") == sha(first)
    assert stored(moto_auth, bucket, "two") == sha(second)
    moved = spliced(proxy)
    assert len(moved) == 2 and moved[0] > 2 * MIB, moved


# -- Expect: 100-continue ----------------------------------------------------------------


@pytest.mark.parametrize("wait", [True, False], ids=["waits", "does-not-wait"])
def test_expect_continue_with_a_spliced_body(
    wait: bool, start_proxy: StartProxy, moto_auth: MotoBackend, bucket: str
) -> None:
    proxy = moto_proxy(start_proxy, moto_auth)
    body = os.urandom(6 * MIB + 11)
    sock = connect(proxy)
    head = unsigned_head(proxy, f"/{bucket}/expect", len(body), Expect="100-continue")
    answers = Answers(sock)
    if wait:
        sock.sendall(head)
        status, _, _ = answers.next()
        assert status == 100
        sock.sendall(body + signed_get(proxy, f"/{bucket}/expect"))
    else:
        sock.sendall(head + body + signed_get(proxy, f"/{bucket}/expect"))
        assert answers.next()[0] == 100  # sent all the same, before the final answer
    status, headers, _ = answers.next()
    assert status == 200 and headers.get("connection") != "close", headers
    status, _, read_back = answers.next()  # the GET behind it: the body ended where it should
    assert (status, sha(read_back)) == (200, sha(body))
    sock.close()
    assert stored(moto_auth, bucket, "expect") == sha(body)
    assert len(spliced(proxy)) == 1


# -- a backend that hangs up or answers before the body is in ------------------------------


def _send_slowly(sock: socket.socket, chunks: int) -> threading.Thread:
    def rest() -> None:
        with contextlib.suppress(OSError):
            for _ in range(chunks):
                sock.sendall(os.urandom(MIB))
                time.sleep(0.1)

    sender = threading.Thread(target=rest, daemon=True)
    sender.start()
    return sender


def _small_get_served(proxy: ProxyProcess) -> None:
    with connect(proxy) as fresh:
        fresh.sendall(signed_get(proxy, "/b/small"))
        assert Answers(fresh).next()[::2] == (200, b"small")


def _not_pooled_again(raw: RawBackend, target: str) -> None:
    """The connection `target` went out on carried nothing after it: the next request, a
    small GET, took another."""
    cut = {r["conn"] for r in raw.requests() if r.get("target") == target}
    small = [r["conn"] for r in raw.requests() if r.get("target") == "/b/small"]
    assert cut and small and not cut & set(small), "the broken connection was pooled again"


SMALL = {"GET /b/small": [{"send": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsmall"}]}


@pytest.mark.parametrize("how", ["close", "reset"])
def test_a_backend_that_hangs_up_mid_splice_is_an_error_to_the_client(
    how: str, start_proxy: StartProxy, raw: RawBackend
) -> None:
    steps: list[dict[str, object]] = [{"sleep": 0.5}, {"close": True}]
    if how == "reset":  # an answer that is not HTTP: the proxy aborts the connection
        steps = [{"sleep": 0.5}, {"send": b"NOT HTTP\r\n\r\n"}, {"sleep": 0.2}, {"close": True}]
    raw.script({"PUT /b/cut": {"early": True, "steps": steps}, **SMALL})
    proxy = raw_proxy(start_proxy, raw)
    size = 32 * MIB
    sock = connect(proxy)
    sock.sendall(unsigned_head(proxy, "/b/cut", size) + os.urandom(MIB))
    sender = _send_slowly(sock, 31)
    answers = Answers(sock)
    status, headers, body = answers.next()
    assert status in (502, 503) and b"<Code>" in body, (status, body)
    assert headers.get("connection") == "close"
    sender.join(20)
    sock.close()
    _small_get_served(proxy)
    _not_pooled_again(raw, "/b/cut")
    assert "upload of" not in proxy.log_text()  # never reported as sent whole
    assert proxy.running


@pytest.mark.parametrize("switch", ["on", "off"])
def test_a_backend_that_says_200_before_the_body_is_in_is_not_believed(
    switch: str, start_proxy: StartProxy, raw: RawBackend
) -> None:
    """S3 answers a PUT only once the whole body is in. A 200 that comes before it, for a body
    the proxy then stopped sending, would tell the client an object is stored that the backend
    never had whole: the client must see an error, and may retry."""
    ok = b'HTTP/1.1 200 OK\r\nETag: "early"\r\nContent-Length: 0\r\n\r\n'
    raw.script({"PUT /b/early": {"early": True, "steps": [{"send": ok}]}, **SMALL})
    proxy = start_proxy(
        config(raw.endpoint, "k", "s"), env={"S3_ROUTER_SPLICE": switch}, log_level="debug"
    )
    size = 32 * MIB
    sock = connect(proxy)
    sock.sendall(unsigned_head(proxy, "/b/early", size) + os.urandom(MIB))
    sender = _send_slowly(sock, 31)
    answers = Answers(sock)
    status, headers, body = answers.next()
    sender.join(20)
    sock.close()
    assert (status, b"<Code>ServiceUnavailable</Code>" in body) == (503, True), (status, body)
    assert headers.get("connection") == "close"
    whole = [r for r in raw.requests() if r.get("target") == "/b/early" and "body_len" in r]
    assert whole == [], "the backend took the body whole: nothing was cut short"
    _small_get_served(proxy)
    _not_pooled_again(raw, "/b/early")
    assert proxy.running


# -- the threshold, and a body shorter than its Content-Length ------------------------------


@pytest.mark.parametrize("size", [splice.MIN_SPLICE, splice.MIN_SPLICE - 1])
def test_the_splice_threshold(
    size: int, start_proxy: StartProxy, moto_auth: MotoBackend, bucket: str
) -> None:
    proxy = moto_proxy(start_proxy, moto_auth)
    body = os.urandom(size)
    sock = connect(proxy)
    sock.sendall(unsigned_head(proxy, f"/{bucket}/edge", size))
    time.sleep(0.3)  # the head alone first: the body is then taken by the splice, not the parser
    sock.sendall(body)
    assert Answers(sock).next()[0] == 200
    sock.close()
    assert stored(moto_auth, bucket, "edge") == sha(body)
    moved = spliced(proxy)
    if size >= splice.MIN_SPLICE:
        assert len(moved) == 1 and moved[0] > 0, moved
    else:
        assert moved == []


def test_a_body_shorter_than_its_content_length_then_half_closed(
    start_proxy: StartProxy, moto_auth: MotoBackend, bucket: str
) -> None:
    proxy = moto_proxy(start_proxy, moto_auth)
    sock = connect(proxy)
    sock.sendall(unsigned_head(proxy, f"/{bucket}/short", 4 * MIB) + os.urandom(MIB))
    time.sleep(0.5)
    sock.sendall(os.urandom(MIB))
    sock.shutdown(socket.SHUT_WR)
    answers = Answers(sock)
    status, headers, body = answers.next()
    assert (status, b"<Code>IncompleteBody</Code>" in body) == (400, True), (status, body)
    assert headers.get("connection") == "close" and answers.closed()
    sock.close()
    assert stored(moto_auth, bucket, "short") is None
    assert "upload cut short after" in proxy.log_text()
    proxy.client(KEY, SECRET).put_object(Bucket=bucket, Key="after", Body=b"next")
    assert stored(moto_auth, bucket, "after") == sha(b"next")


def test_a_whole_body_then_half_closed_is_stored_and_answered(
    start_proxy: StartProxy, moto_auth: MotoBackend, bucket: str
) -> None:
    """The splice takes exactly the body, not the end of the stream behind it: the client
    that half-closes once it has sent everything still gets its answer."""
    proxy = moto_proxy(start_proxy, moto_auth)
    body = os.urandom(3 * MIB + 9)
    sock = connect(proxy)
    sock.sendall(unsigned_head(proxy, f"/{bucket}/whole", len(body)) + body[:MIB])
    time.sleep(0.5)
    sock.sendall(body[MIB:])
    sock.shutdown(socket.SHUT_WR)
    answers = Answers(sock)
    assert answers.next()[0] == 200
    assert answers.closed()
    sock.close()
    assert stored(moto_auth, bucket, "whole") == sha(body)
    assert len(spliced(proxy)) == 1


# -- descriptors --------------------------------------------------------------------------


def _descriptors(proxy: ProxyProcess) -> int:
    return len(os.listdir(f"/proc/{proxy.pid}/fd"))


def test_descriptors_return_after_many_spliced_uploads_some_aborted(
    start_proxy: StartProxy, moto_auth: MotoBackend, bucket: str
) -> None:
    proxy = moto_proxy(start_proxy, moto_auth)
    proxy.client(KEY, SECRET).put_object(Bucket=bucket, Key="warm", Body=b"warm")
    before = _descriptors(proxy)
    size = MIB
    for number in range(50):
        sock = connect(proxy)
        head = unsigned_head(proxy, f"/{bucket}/n{number}", size)
        if number % 5 == 4:
            sock.sendall(head + os.urandom(size // 2))
            time.sleep(0.2)  # the splice waits on this client
            reset(sock)
            continue
        sock.sendall(head + os.urandom(size))
        assert Answers(sock).next()[0] == 200
        sock.close()
    deadline = time.monotonic() + 10
    while _descriptors(proxy) > before + 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    after = _descriptors(proxy)
    assert after <= before + 4, f"descriptors {before} -> {after}"
    assert len(spliced(proxy)) == 40
    assert all(stored(moto_auth, bucket, f"n{n}") is None for n in range(4, 50, 5))


class SlowReaderBackend:
    """A backend that takes a request body slowly but steadily, 64 KiB every 0.25 s, then
    answers 200. Records how many body bytes each request delivered."""

    def __init__(self) -> None:
        self.listener = socket.create_server((LOOPBACK, 0))
        self.endpoint = f"http://{LOOPBACK}:{self.listener.getsockname()[1]}"
        self.received: list[int] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._slow, args=(conn,), daemon=True).start()

    def _slow(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            data = b""
            while b"\r\n\r\n" not in data:
                more = conn.recv(65536)
                if not more:
                    return
                data += more
            head, _, got = data.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            taken = len(got)
            while taken < length:
                time.sleep(0.25)
                more = conn.recv(min(64 * 1024, length - taken))
                if not more:
                    break
                taken += len(more)
            self.received.append(taken)
            if taken == length:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                time.sleep(0.5)

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("switch", ["on", "off"])
def test_a_backend_that_reads_slowly_but_steadily_gets_the_whole_upload(
    switch: str, start_proxy: StartProxy
) -> None:
    """The backend side of an upload is timed as the client side of a download: by the
    bytes the backend takes, not by how long the buffers toward it take to drain."""
    slow = SlowReaderBackend()
    try:
        text = config(slow.endpoint, "k", "s").replace("read_timeout: 30", "read_timeout: 2")
        proxy = start_proxy(text, env={"S3_ROUTER_SPLICE": switch}, log_level="debug")
        size = 4 * MIB
        sock = connect(proxy)
        sock.sendall(unsigned_head(proxy, "/b/slow", size) + os.urandom(size))
        status, _, body = Answers(sock).next()
        sock.close()
        assert status == 200, (status, body)
        assert slow.received == [size]
    finally:
        slow.close()


# -- a slow, steady download --------------------------------------------------------------


SEND_TIMEOUT = 2


@pytest.mark.parametrize("switch", ["on", "off"])
def test_a_slow_but_steady_download_is_not_cut_off(
    switch: str, start_proxy: StartProxy, moto_auth: MotoBackend, bucket: str
) -> None:
    """Each read takes bytes well within send_timeout, but the answer's buffer takes longer
    than that to drain: progress, not an empty buffer, is what keeps the answer going."""
    size = 12 * MIB
    body = os.urandom(size)
    moto_auth.client().put_object(Bucket=bucket, Key="slow", Body=body)
    text = config(
        moto_auth.endpoint,
        moto_auth.access_key_id,
        moto_auth.secret_access_key,
        f"router: {{send_timeout: {SEND_TIMEOUT}}}",
    )
    proxy = start_proxy(text, env={"S3_ROUTER_SPLICE": switch})
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(30)
    sock.connect((LOOPBACK, proxy.port))
    sock.sendall(signed_get(proxy, f"/{bucket}/slow"))
    received = bytearray()
    slow_until = time.monotonic() + 4 * SEND_TIMEOUT

    def whole() -> bool:
        _, found, rest = bytes(received).partition(b"\r\n\r\n")
        return bool(found) and len(rest) >= size

    with contextlib.suppress(OSError):  # a reset, or the proxy gone silent
        while time.monotonic() < slow_until:  # 64 KiB every 0.4 s: 160 KiB/s
            data = sock.recv(64 * 1024)
            if not data:
                break
            received += data
            time.sleep(0.4)
        while not whole() and (data := sock.recv(MIB)):
            received += data
    sock.close()
    head, _, got = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head[:100]
    assert len(got) == size, f"cut off after {len(got)} of {size} bytes"
    assert sha(got) == sha(body)
