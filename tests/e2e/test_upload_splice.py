"""Large unsigned upload bodies spliced by the kernel (`http/uploadsplice.py`), behind a real
proxy process.

moto (checking the proxy's signatures) stores what a presigned PUT sent, read back by sha256
straight from moto, spliced and with `S3_ROUTER_SPLICE=off`. `RawBackend` shows byte for byte
what a backend received: exactly the Content-Length bytes, and a request pipelined behind the
body parsed by the proxy as a request of its own, never passed on inside the body. A client
that goes away or stalls mid-body leaves nothing written; a body with a checksum to verify,
and any body over TLS, takes the copy loop. Each spliced upload is in the proxy's debug log.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import trustme
from harness import (
    LOOPBACK,
    MotoBackend,
    ProxyProcess,
    RawBackend,
    StartProxy,
    boto3_client,
)
from rawclient import sign

from s3router_proxy.http import splice

KEY, SECRET = "AKIAUPSPLICE", "upsplice-secret"
MIB = 1024 * 1024

pytestmark = pytest.mark.skipif(not splice.AVAILABLE, reason="no os.splice here")


def config(endpoint: str, key: str, secret: str, router: str = "") -> str:
    return f"""
        {router}
        backends:
          store:
            endpoint: "{endpoint}"
            access_key_id: "{key}"
            secret_access_key: "{secret}"
            read_timeout: 30
        clients:
          - name: "tester"
            access_key_id: "{KEY}"
            secret_access_key: "{SECRET}"
        routing:
          default_target: store
        """


def spliced(proxy: ProxyProcess) -> list[int]:
    """The bytes the kernel moved of each upload the proxy sent whole."""
    found = re.findall(r"upload of \d+ bytes spliced: (\d+) to backend", proxy.log_text())
    return [int(count) for count in found]


def unsigned_head(proxy: ProxyProcess, path: str, length: int, **headers: str) -> bytes:
    """A PUT head signed with UNSIGNED-PAYLOAD: the proxy has nothing to check in its body."""
    extra = {"Content-Length": str(length), **headers}
    signed = sign(
        "PUT", proxy.endpoint + path, KEY, SECRET, headers=extra, payload_hash="UNSIGNED-PAYLOAD"
    )
    signed["Host"] = f"{LOOPBACK}:{proxy.port}"
    lines = "".join(f"{name}: {value}\r\n" for name, value in signed.items())
    return f"PUT {path} HTTP/1.1\r\n{lines}\r\n".encode()


class Answers:
    """Answers read off one raw client connection, one after the other."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(MIB)
        except ConnectionResetError:
            return False
        self.buf += data
        return bool(data)

    def next(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            assert self._fill(), f"no answer: {bytes(self.buf[:300])!r}"
        head, _, _ = bytes(self.buf).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
        start = len(head) + 4
        size = int(headers.get("content-length", "0"))
        while len(self.buf) < start + size:
            assert self._fill(), "the answer's body was cut"
        body = bytes(self.buf[start : start + size])
        del self.buf[: start + size]
        return int(lines[0].split()[1]), headers, body

    def closed(self) -> bool:
        """Whether the proxy ends the connection (within the socket's timeout)."""
        try:
            return not self._fill()
        except TimeoutError:
            return False


def connect(proxy: ProxyProcess) -> socket.socket:
    return socket.create_connection((LOOPBACK, proxy.port), timeout=30)


def reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


# -- moto: what was stored ---------------------------------------------------------------------


@pytest.fixture
def bucket(moto_auth: MotoBackend) -> Iterator[str]:
    yield from moto_auth.fresh_bucket("upsplice")


def moto_proxy(
    start_proxy: StartProxy, moto: MotoBackend, router: str = "", **env: str
) -> ProxyProcess:
    text = config(moto.endpoint, moto.access_key_id, moto.secret_access_key, router)
    return start_proxy(text, env=env, log_level="debug")


def stored(moto: MotoBackend, bucket: str, key: str) -> str | None:
    """The sha256 of the object moto holds, or None when it holds none."""
    client = moto.client()
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        return None
    return hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("switch", ["on", "off"])
def test_presigned_put_is_stored_whole(
    switch: str, start_proxy: StartProxy, moto_auth: MotoBackend, bucket: str
) -> None:
    proxy = moto_proxy(start_proxy, moto_auth, S3_ROUTER_SPLICE=switch)
    body = os.urandom(64 * MIB + 12345)
    client = proxy.client(KEY, SECRET, signature_version="s3v4")
    url = client.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "big"})
    with requests.Session() as session:
        answer = session.put(url, data=body, timeout=120)
        assert answer.status_code == 200, answer.text
        # The same client connection serves the next request: the body ended where it should.
        small = client.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "s"})
        assert session.put(small, data=b"small", timeout=30).status_code == 200
    assert stored(moto_auth, bucket, "big") == hashlib.sha256(body).hexdigest()
    assert stored(moto_auth, bucket, "s") == hashlib.sha256(b"small").hexdigest()
    moved = spliced(proxy)
    if switch == "on":
        assert len(moved) == 1 and moved[0] > 60 * MIB, moved
    else:
        assert moved == []
    peak = proxy.peak_rss_mib()
    print(f"\nproxy peak RSS after a 64 MiB presigned PUT, splice {switch}: {peak:.1f} MiB")
    assert peak < 150


def test_presigned_upload_part_is_spliced(
    start_proxy: StartProxy, moto_auth: MotoBackend, bucket: str
) -> None:
    proxy = moto_proxy(start_proxy, moto_auth)
    client = proxy.client(KEY, SECRET, signature_version="s3v4")
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="parts")["UploadId"]
    parts = [os.urandom(5 * MIB), os.urandom(MIB + 17)]
    etags = []
    for number, part in enumerate(parts, 1):
        params = {"Bucket": bucket, "Key": "parts", "UploadId": upload_id, "PartNumber": number}
        url = client.generate_presigned_url("upload_part", Params=params)
        answer = requests.put(url, data=part, timeout=60)
        assert answer.status_code == 200, answer.text
        etags.append({"PartNumber": number, "ETag": answer.headers["ETag"]})
    client.complete_multipart_upload(
        Bucket=bucket, Key="parts", UploadId=upload_id, MultipartUpload={"Parts": etags}
    )
    assert stored(moto_auth, bucket, "parts") == hashlib.sha256(b"".join(parts)).hexdigest()
    assert len(spliced(proxy)) == 2


def test_client_that_goes_away_mid_body_leaves_nothing(
    start_proxy: StartProxy, moto_auth: MotoBackend, bucket: str
) -> None:
    proxy = moto_proxy(start_proxy, moto_auth)
    sock = connect(proxy)
    sock.sendall(unsigned_head(proxy, f"/{bucket}/gone", 32 * MIB) + os.urandom(6 * MIB))
    time.sleep(1.0)  # the splice is under way, waiting for more
    reset(sock)
    time.sleep(1.0)
    assert stored(moto_auth, bucket, "gone") is None
    assert "upload cut short after" in proxy.log_text()
    assert "error_code=IncompleteBody" in proxy.log_text()
    client = proxy.client(KEY, SECRET)
    client.put_object(Bucket=bucket, Key="after", Body=b"next")
    assert stored(moto_auth, bucket, "after") is not None
    assert proxy.running


def test_client_that_stalls_gets_request_timeout_and_nothing_is_written(
    start_proxy: StartProxy, moto_auth: MotoBackend, bucket: str
) -> None:
    proxy = moto_proxy(start_proxy, moto_auth, "router: {body_timeout: 2}")
    sock = connect(proxy)
    started = time.monotonic()
    sock.sendall(unsigned_head(proxy, f"/{bucket}/stalled", 16 * MIB) + os.urandom(3 * MIB))
    answers = Answers(sock)
    status, headers, body = answers.next()
    assert (status, b"<Code>RequestTimeout</Code>" in body) == (400, True), body
    assert 1.5 < time.monotonic() - started < 10
    assert headers.get("connection") == "close" and answers.closed()
    sock.close()
    assert stored(moto_auth, bucket, "stalled") is None
    assert "upload cut short after" in proxy.log_text()


def test_client_that_trickles_below_the_minimum_rate_times_out(
    start_proxy: StartProxy, moto_auth: MotoBackend, bucket: str
) -> None:
    """Never silent for body_timeout, but slower than body_min_rate after it: as the front
    server's sweeper times out a body it reads, the pump times out one it splices."""
    router = "router: {body_timeout: 2, body_min_rate: 1048576}"
    proxy = moto_proxy(start_proxy, moto_auth, router)
    sock = connect(proxy)
    sock.sendall(unsigned_head(proxy, f"/{bucket}/trickle", 16 * MIB) + os.urandom(MIB))
    stop = threading.Event()

    def trickle() -> None:
        with contextlib.suppress(OSError):
            while not stop.wait(0.25):
                sock.sendall(os.urandom(16 * 1024))  # 64 KiB/s

    sender = threading.Thread(target=trickle, daemon=True)
    started = time.monotonic()
    sender.start()
    try:
        status, _, body = Answers(sock).next()
    finally:
        stop.set()
        sender.join(5)
    assert (status, b"<Code>RequestTimeout</Code>" in body) == (400, True), body
    assert 2.5 < time.monotonic() - started < 15
    sock.close()
    assert stored(moto_auth, bucket, "trickle") is None
    assert "upload cut short after" in proxy.log_text()


@pytest.mark.parametrize(
    ("header", "value"),
    [("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg=="), ("x-amz-checksum-crc32", "AAAAAA==")],
)
def test_a_body_with_a_checksum_to_verify_is_not_spliced(
    header: str, value: str, start_proxy: StartProxy, moto_auth: MotoBackend, bucket: str
) -> None:
    proxy = moto_proxy(start_proxy, moto_auth)
    body = os.urandom(2 * MIB)
    sock = connect(proxy)
    sock.sendall(unsigned_head(proxy, f"/{bucket}/digest", len(body), **{header: value}) + body)
    status, _, answer = Answers(sock).next()
    sock.close()
    assert (status, b"<Code>BadDigest</Code>" in answer) == (400, True), answer
    assert stored(moto_auth, bucket, "digest") is None
    assert spliced(proxy) == [] and "upload cut short" not in proxy.log_text()


def test_tls_to_the_client_uses_the_copy_loop(
    start_proxy: StartProxy, moto_auth: MotoBackend, bucket: str, tmp_path: Path
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    chain, key, authority = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_pem.write_to_path(str(key))
    cert.cert_chain_pems[0].write_to_path(str(chain))
    ca.cert_pem.write_to_path(str(authority))
    tls = f'router: {{tls: {{cert_file: "{chain}", key_file: "{key}"}}}}'
    proxy = moto_proxy(start_proxy, moto_auth, tls)
    body = os.urandom(8 * MIB + 3)
    # Presigns only: it makes no request of its own.
    client = boto3_client(f"https://{LOOPBACK}:{proxy.port}", KEY, SECRET)
    url = client.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "tls"})
    assert url.startswith("https://")
    assert requests.put(url, data=body, timeout=60, verify=str(authority)).status_code == 200
    assert stored(moto_auth, bucket, "tls") == hashlib.sha256(body).hexdigest()
    assert spliced(proxy) == []


# -- RawBackend: the bytes a backend received ---------------------------------------------------


@pytest.fixture
def raw(tmp_path: Path) -> Iterator[RawBackend]:
    with RawBackend(tmp_path / "raw-backend") as backend:
        yield backend


def raw_proxy(start_proxy: StartProxy, raw: RawBackend, router: str = "") -> ProxyProcess:
    return start_proxy(config(raw.endpoint, "k", "s", router), log_level="debug")


def test_a_request_pipelined_behind_a_spliced_body_is_a_request_of_its_own(
    start_proxy: StartProxy, raw: RawBackend
) -> None:
    proxy = raw_proxy(start_proxy, raw)
    body = os.urandom(8 * MIB + 5)
    second = b"second body"
    smuggled = b"GET /b/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"  # unsigned: the proxy refuses it
    sock = connect(proxy)
    sock.sendall(
        unsigned_head(proxy, "/b/first", len(body))
        + body
        + unsigned_head(proxy, "/b/second", len(second))
        + second
        + smuggled
    )
    answers = Answers(sock)
    assert answers.next()[0] == 200
    assert answers.next()[0] == 200
    status, _, refused = answers.next()
    assert (status, b"<Code>AccessDenied</Code>" in refused) == (403, True), refused
    sock.close()
    seen = [r for r in raw.requests() if "target" in r]
    assert [r["target"] for r in seen] == ["/b/first", "/b/second"], seen
    first, then = seen
    assert first["body_len"] == len(body)
    assert first["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert then["body_len"] == len(second) and then["body_b64"] == "c2Vjb25kIGJvZHk="
    assert first["conn"] == then["conn"]  # the backend connection was whole and pooled again
    # Byte for byte: the body, then the next request's head, nothing between or inside.
    wire = raw.received()
    start = wire.index(b"\r\n\r\n") + 4
    assert wire[start : start + len(body)] == body
    assert wire[start + len(body) :].startswith(b"PUT /b/second HTTP/1.1\r\n")
    assert b"smuggled" not in wire
    moved = spliced(proxy)
    assert len(moved) == 1 and moved[0] > 4 * MIB, moved


def test_a_backend_that_answers_early_is_passed_on_and_the_client_connection_ends(
    start_proxy: StartProxy, raw: RawBackend
) -> None:
    error = b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>"
    answer = (
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(error) + error
    )
    raw.script(
        {
            "PUT /b/early": {"early": True, "steps": [{"sleep": 0.5}, {"send": answer}]},
            "GET /b/small": [{"send": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsmall"}],
        }
    )
    proxy = raw_proxy(start_proxy, raw)
    sock = connect(proxy)
    size = 32 * MIB
    sock.sendall(unsigned_head(proxy, "/b/early", size) + os.urandom(2 * MIB))

    def rest() -> None:
        try:
            for _ in range(30):
                sock.sendall(os.urandom(MIB))
                time.sleep(0.05)
        except OSError:
            pass

    sender = threading.Thread(target=rest, daemon=True)
    sender.start()
    answers = Answers(sock)
    status, headers, body = answers.next()
    assert (status, b"AccessDenied" in body) == (403, True), body
    assert headers.get("connection") == "close"
    sender.join(20)
    assert answers.closed()  # after a lingering close: the rest of the body is never parsed
    sock.close()
    fresh = connect(proxy)
    head = sign("GET", proxy.endpoint + "/b/small", KEY, SECRET)
    head["Host"] = f"{LOOPBACK}:{proxy.port}"
    fresh.sendall(
        b"GET /b/small HTTP/1.1\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in head.items()).encode()
        + b"\r\n"
    )
    assert Answers(fresh).next()[2] == b"small"
    fresh.close()
    early = [r for r in raw.requests() if r.get("target") == "/b/early" and "body_len" in r]
    assert all(r["body_len"] < size for r in early), early


class DeafBackend:
    """A backend that reads a request's head and then nothing, for `seconds`: its socket's
    buffers fill and the upload cannot go on. Records when each connection was closed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.listener = socket.create_server((LOOPBACK, 0))
        self.endpoint = f"http://{LOOPBACK}:{self.listener.getsockname()[1]}"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._deaf, args=(conn,), daemon=True).start()

    def _deaf(self, conn: socket.socket) -> None:
        with conn:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(1)
                if not data:
                    return
                head += data
            self.stop.wait(self.seconds)

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.mark.parametrize("switch", ["on", "off"])
def test_a_backend_that_stops_reading_the_body_fails_the_upload_after_its_read_timeout(
    switch: str, start_proxy: StartProxy
) -> None:
    """Without a timeout on the backend side of an upload, a backend that stops reading would
    hold the client, the splice (or the copy loop) and the connection for as long as it likes."""
    deaf = DeafBackend(seconds=60)
    try:
        text = config(deaf.endpoint, "k", "s").replace("read_timeout: 30", "read_timeout: 2")
        proxy = start_proxy(text, env={"S3_ROUTER_SPLICE": switch}, log_level="debug")
        sock = connect(proxy)
        size = 64 * MIB
        sock.sendall(unsigned_head(proxy, "/b/deaf", size))

        def send_body() -> None:
            with contextlib.suppress(OSError):
                for _ in range(size // MIB):
                    sock.sendall(b"d" * MIB)

        threading.Thread(target=send_body, daemon=True).start()
        started = time.monotonic()
        status, _, body = Answers(sock).next()
        waited = time.monotonic() - started
        sock.close()
        assert status == 503 and b"ServiceUnavailable" in body, body
        assert waited < 30, f"the upload was held {waited:.0f} s by a backend that stopped reading"
        if switch == "on":
            assert spliced(proxy) == []  # it never went whole
            assert "upload cut short after" in proxy.log_text()
    finally:
        deaf.close()
