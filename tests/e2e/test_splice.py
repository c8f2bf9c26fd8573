"""Large answer bodies spliced by the kernel (`http/splice.py`), behind a real proxy process.

A moto backend serves real objects (whole, a Range, HEAD, 304); `RawBackend` scripts the
failures (a backend that ends early, one that stalls past its read timeout) and shows which
backend connection carried each request. The client is a raw socket on one keep-alive
connection, so a body is complete only when every announced byte arrived, and the next
request on the same connection (or pipelined behind it) shows the connection is whole. Each
spliced body is in the proxy's debug log; with `S3_ROUTER_SPLICE=off`, and over TLS, the copy
loop must give the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from harness import (
    LOOPBACK,
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    RawBackend,
    StartProxy,
    unique_bucket_name,
)
from rawclient import sign

KEY, SECRET = "AKIASPLICE", "splice-secret"
MIB = 1024 * 1024


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    complete: bool  # every byte the head announced arrived


class Client:
    """One keep-alive client connection to the proxy, read answer by answer."""

    def __init__(self, proxy: ProxyProcess, tls: ssl.SSLContext | None = None) -> None:
        self.proxy = proxy
        self.sock = socket.create_connection((LOOPBACK, proxy.port), timeout=60)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname=LOOPBACK)
        self.buf = bytearray()

    def close(self) -> None:
        self.sock.close()

    def send(self, method: str, path: str, headers: dict[str, str] | None = None) -> None:
        extra = dict(headers or {})
        signed = sign(method, self.proxy.endpoint + path, KEY, SECRET, headers=extra)
        signed["Host"] = f"{LOOPBACK}:{self.proxy.port}"
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in signed.items())
        self.sock.sendall(head.encode() + b"\r\n")

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(4 * MIB)
        except ConnectionResetError:
            return False
        self.buf += data
        return bool(data)

    def answer(self, method: str = "GET", limit: int | None = None) -> Answer:
        while b"\r\n\r\n" not in self.buf:
            assert self._fill(), f"no head from the proxy: {bytes(self.buf[:300])!r}"
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(lines[0].split(" ")[1])
        self.buf = bytearray(rest)
        length = 0 if method == "HEAD" or status == 304 else int(headers["content-length"])
        want = length if limit is None else min(limit, length)
        while len(self.buf) < want and self._fill():
            pass
        body = bytes(self.buf[:want])
        del self.buf[:want]
        return Answer(status, headers, body, len(body) == length)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        self.send("GET", path, headers)
        return self.answer()


def config(endpoint: str, key: str, secret: str, read_timeout: float = 30) -> str:
    return f"""
        backends:
          store:
            endpoint: "{endpoint}"
            access_key_id: "{key}"
            secret_access_key: "{secret}"
            read_timeout: {read_timeout}
        clients:
          - name: "tester"
            access_key_id: "{KEY}"
            secret_access_key: "{SECRET}"
        routing:
          default_target: store
        """


def spliced(proxy: ProxyProcess) -> int:
    """Answers spliced so far. Each is logged once its last byte left, so a client can hold the
    whole answer a moment before its line is written: wait a little for a count that grows."""
    count, deadline = proxy.log_text().count("spliced "), time.monotonic() + 3
    while time.monotonic() < deadline:
        time.sleep(0.2)
        count, last = proxy.log_text().count("spliced "), count
        if count == last:
            break
    return count


@pytest.fixture(scope="module")
def big_object(moto_plain: MotoBackend) -> Iterator[tuple[str, bytes]]:
    bucket = unique_bucket_name("splice")
    client = moto_plain.client()
    client.create_bucket(Bucket=bucket)
    body = os.urandom(64 * MIB + 12345)
    client.put_object(Bucket=bucket, Key="big", Body=body)
    client.put_object(Bucket=bucket, Key="small", Body=b"small answer")
    yield f"/{bucket}", body
    client.delete_object(Bucket=bucket, Key="big")
    client.delete_object(Bucket=bucket, Key="small")


def moto_config(moto: MotoBackend) -> str:
    return config(moto.endpoint, PLAIN_ACCESS_KEY_ID, PLAIN_SECRET_ACCESS_KEY)


@pytest.mark.parametrize("switch", ["on", "off"])
def test_large_get_whole_then_keep_alive(
    switch: str, start_proxy: StartProxy, moto_plain: MotoBackend, big_object: tuple[str, bytes]
) -> None:
    prefix, body = big_object
    proxy = start_proxy(moto_config(moto_plain), env={"S3_ROUTER_SPLICE": switch})
    client = Client(proxy)
    got = client.get(f"{prefix}/big")
    assert (got.status, got.complete) == (200, True)
    assert hashlib.sha256(got.body).hexdigest() == hashlib.sha256(body).hexdigest()
    # The same client connection and the backend's pooled connection carry the next requests.
    assert client.get(f"{prefix}/small").body == b"small answer"
    again = client.get(f"{prefix}/big")
    assert again.complete and again.body == body
    client.close()
    assert spliced(proxy) == (2 if switch == "on" else 0)
    peak = proxy.peak_rss_mib()
    print(f"\nproxy peak RSS after 64 MiB downloads, splice {switch}: {peak:.1f} MiB")
    assert peak < 150


def test_range_head_and_not_modified(
    start_proxy: StartProxy, moto_plain: MotoBackend, big_object: tuple[str, bytes]
) -> None:
    prefix, body = big_object
    proxy = start_proxy(moto_config(moto_plain))
    client = Client(proxy)
    start, end = 1000, 1000 + 3 * MIB
    got = client.get(f"{prefix}/big", {"Range": f"bytes={start}-{end}"})
    assert (got.status, got.complete, got.body == body[start : end + 1]) == (206, True, True)
    assert spliced(proxy) == 1
    small = client.get(f"{prefix}/big", {"Range": "bytes=0-99"})
    assert (small.status, small.body) == (206, body[:100])
    client.send("HEAD", f"{prefix}/big")
    head = client.answer("HEAD")
    assert (head.status, head.headers["content-length"]) == (200, str(len(body)))
    etag = head.headers["etag"]
    not_modified = client.get(f"{prefix}/big", {"If-None-Match": etag})
    assert (not_modified.status, not_modified.body) == (304, b"")
    assert client.get(f"{prefix}/small").body == b"small answer"
    client.close()
    assert spliced(proxy) == 1


def _answer(size: int, body: bytes) -> bytes:
    return b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\nETag: "e"\r\n\r\n' % size + body


@pytest.fixture
def raw(tmp_path: Path) -> Iterator[RawBackend]:
    with RawBackend(tmp_path / "raw-backend") as backend:
        yield backend


def raw_proxy(start_proxy: StartProxy, raw: RawBackend, read_timeout: float = 30) -> ProxyProcess:
    return start_proxy(config(raw.endpoint, "k", "s", read_timeout), log_level="debug")


def test_keep_alive_on_both_sides_after_a_spliced_body(
    start_proxy: StartProxy, raw: RawBackend
) -> None:
    first, second = os.urandom(3 * MIB), os.urandom(2 * MIB + 7)
    raw.script(
        {
            "GET /b/first": [{"send": _answer(len(first), first)}],
            "GET /b/second": [{"send": _answer(len(second), second)}],
            "GET /b/small": [{"send": _answer(5, b"small")}],
        }
    )
    proxy = raw_proxy(start_proxy, raw)
    client = Client(proxy)
    for path, body in (("/b/first", first), ("/b/second", second), ("/b/small", b"small")):
        got = client.get(path)
        assert (got.status, got.complete, got.body == body) == (200, True, True), path
    # Pipelined: the next requests arrive while a body is being spliced, and wait their turn.
    for path in ("/b/first", "/b/small", "/b/second"):
        client.send("GET", path)
    for body in (first, b"small", second):
        got = client.answer()
        assert (got.status, got.complete, got.body == body) == (200, True, True)
    client.close()
    assert spliced(proxy) == 4
    connections = {r["conn"] for r in raw.requests() if r.get("target", "").startswith("/b/")}
    assert len(connections) == 1, raw.requests()


def test_backend_that_ends_early_cuts_the_client_connection(
    start_proxy: StartProxy, raw: RawBackend
) -> None:
    size, sent = 4 * MIB, os.urandom(2 * MIB)
    raw.script(
        {
            "GET /b/short": [
                {"send": _answer(size, sent[:MIB])},
                {"sleep": 0.5},  # the rest comes through the pipe, not with the head
                {"send": sent[MIB:]},
                {"sleep": 0.3},
                {"close": True},
            ],
            "GET /b/small": [{"send": _answer(5, b"small")}],
        }
    )
    proxy = raw_proxy(start_proxy, raw)
    client = Client(proxy)
    got = client.get("/b/short")
    assert got.status == 200 and not got.complete
    assert got.body == sent[: len(got.body)]
    assert not client._fill()  # and the connection is over: no next answer can follow
    client.close()
    fresh = Client(proxy)
    assert fresh.get("/b/small").body == b"small"
    fresh.close()
    assert "BackendStreamBroken" in proxy.log_text()


def test_backend_that_stalls_times_out(start_proxy: StartProxy, raw: RawBackend) -> None:
    size, sent = 4 * MIB, os.urandom(2 * MIB)
    raw.script(
        {
            "GET /b/stall": [
                {"send": _answer(size, sent[:MIB])},
                {"sleep": 0.5},
                {"send": sent[MIB:]},
                {"sleep": 30},
            ],
            "GET /b/small": [{"send": _answer(5, b"small")}],
        }
    )
    proxy = raw_proxy(start_proxy, raw, read_timeout=2)
    client = Client(proxy)
    started = time.monotonic()
    got = client.get("/b/stall")
    assert got.status == 200 and not got.complete
    assert 1.5 < time.monotonic() - started < 10
    client.close()
    fresh = Client(proxy)
    assert fresh.get("/b/small").body == b"small"
    fresh.close()


def test_client_that_goes_away_mid_body(start_proxy: StartProxy, raw: RawBackend) -> None:
    body = os.urandom(24 * MIB)
    raw.script(
        {
            "GET /b/big": [{"send": _answer(len(body), body)}],
            "GET /b/small": [{"send": _answer(5, b"small")}],
        }
    )
    proxy = raw_proxy(start_proxy, raw)
    client = Client(proxy)
    client.send("GET", "/b/big")
    got = client.answer(limit=MIB)
    assert got.status == 200 and got.body == body[: len(got.body)]
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    client.close()  # a reset, with most of the body still to come
    time.sleep(1.0)
    for _ in range(3):
        fresh = Client(proxy)
        assert fresh.get("/b/small").body == b"small"
        fresh.close()
    assert "error_code=ClientDisconnected" in proxy.log_text()
    assert proxy.running


def test_tls_to_the_client_uses_the_copy_loop(
    start_proxy: StartProxy,
    moto_plain: MotoBackend,
    big_object: tuple[str, bytes],
    tmp_path: Path,
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key))
    cert.cert_chain_pems[0].write_to_path(str(chain))
    tls = f'\n        router:\n          tls: {{cert_file: "{chain}", key_file: "{key}"}}'
    proxy = start_proxy(tls + moto_config(moto_plain))
    prefix, body = big_object
    context = ssl.create_default_context()
    ca.configure_trust(context)
    client = Client(proxy, context)
    got = client.get(f"{prefix}/big")
    assert (got.status, got.complete, got.body == body) == (200, True, True)
    assert client.get(f"{prefix}/small").body == b"small answer"
    client.close()
    assert spliced(proxy) == 0
