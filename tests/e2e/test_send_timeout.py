"""A client that stops reading its download is cut off after `router.send_timeout`.

Without it the answer's coroutine (or the splice pump) waits on the client for ever, holding a
backend connection and the bytes buffered toward the client. The client here is a raw socket
with a small receive buffer that reads the answer's head and then nothing for longer than the
timeout: afterwards it must find the connection ended short of the body (so it can never take
the answer as complete), and the proxy must serve the next client. Both the copy loop
(`S3_ROUTER_SPLICE=off`) and the splice path are covered.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
from harness import (
    LOOPBACK,
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    StartProxy,
    unique_bucket_name,
)
from rawclient import sign

KEY, SECRET = "AKIASENDTIMEOUT", "send-timeout-secret"
MIB = 1024 * 1024
SIZE = 48 * MIB
SEND_TIMEOUT = 2


def config(endpoint: str) -> str:
    return f"""
        router:
          send_timeout: {SEND_TIMEOUT}
        backends:
          store:
            endpoint: "{endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
        clients:
          - name: "tester"
            access_key_id: "{KEY}"
            secret_access_key: "{SECRET}"
        routing:
          default_target: store
        """


def signed_get(port: int, path: str) -> bytes:
    headers = sign("GET", f"http://{LOOPBACK}:{port}{path}", KEY, SECRET)
    headers["Host"] = f"{LOOPBACK}:{port}"
    head = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n"


def read_all(sock: socket.socket) -> tuple[int, bool]:
    """Bytes read until the connection ended, and whether it ended (not timed out here)."""
    total = 0
    try:
        while data := sock.recv(MIB):
            total += len(data)
    except ConnectionResetError:
        return total, True
    except TimeoutError:
        return total, False
    return total, True


@pytest.mark.parametrize("switch", ["on", "off"])
def test_a_client_that_stops_reading_is_cut_off(
    switch: str, start_proxy: StartProxy, moto_plain: MotoBackend
) -> None:
    bucket = unique_bucket_name("sendtimeout")
    s3 = moto_plain.client()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="big", Body=os.urandom(SIZE))
    s3.put_object(Bucket=bucket, Key="small", Body=b"still served")
    proxy = start_proxy(config(moto_plain.endpoint), env={"S3_ROUTER_SPLICE": switch})

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(30)
    sock.connect((LOOPBACK, proxy.port))
    sock.sendall(signed_get(proxy.port, f"/{bucket}/big"))
    first = sock.recv(4096)
    assert first.startswith(b"HTTP/1.1 200 ")
    time.sleep(SEND_TIMEOUT + 4)  # the proxy's buffers fill, then it waits on this client
    read, ended = read_all(sock)
    sock.close()
    assert ended, "the proxy kept the connection of a client that stopped reading"
    assert len(first) + read < SIZE, "the whole answer arrived: nothing was cut"

    # The proxy, and its way to the backend, serve the next client.
    with socket.create_connection((LOOPBACK, proxy.port), timeout=30) as other:
        other.sendall(signed_get(proxy.port, f"/{bucket}/small"))
        answer = b""
        while not answer.endswith(b"still served"):
            data = other.recv(65536)
            assert data, answer
            answer += data
    assert answer.startswith(b"HTTP/1.1 200 ")
