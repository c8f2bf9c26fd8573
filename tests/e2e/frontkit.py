"""The proxy in front of a `RawBackend`, and raw-socket exchanges with it, for the tests of the
front server's framing: what the client got is read off the socket, what the backend saw is
read from the RawBackend's log.

Bucket `pub` is open to anonymous requests, so any request that passes framing IS forwarded
(an assertion that nothing reached the backend can fail); `tester` signs everything else.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from harness import LOOPBACK, ManagedProcess, RawBackend, free_port, write_config

KEY, SECRET = "AKIAFRAMING", "framing-secret"
BUCKET = "pub"


def framing_config(directory: Path, raw: RawBackend, **router: Any) -> Path:
    settings = {"keepalive_timeout": 30, **router}
    lines = "".join(f"  {name}: {value}\n" for name, value in settings.items())
    text = (
        "router:\n"
        + lines
        + f"""backends:
  raw:
    endpoint: "{raw.endpoint}"
    access_key_id: "rawkey"
    secret_access_key: "rawsecret"
    read_timeout: 10
    max_connections: 4
clients:
  - name: "tester"
    access_key_id: "{KEY}"
    secret_access_key: "{SECRET}"
anonymous:
  allow:
    - buckets: ["{BUCKET}"]
routing:
  default_target: raw
"""
    )
    return write_config(directory, text)


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def code(self) -> str | None:
        start, end = self.body.find(b"<Code>"), self.body.find(b"</Code>")
        return self.body[start + 6 : end].decode() if 0 <= start < end else None


def read_answer(stream: io.BufferedReader) -> Answer | None:
    """One answer off the connection (None if it closed first), framed by its own headers."""
    try:
        line = stream.readline(65536)
        while line.startswith(b"HTTP/1.1 100"):
            while stream.readline(65536) not in (b"\r\n", b""):
                pass
            line = stream.readline(65536)
    except (ConnectionError, TimeoutError):
        return None
    if not line.startswith(b"HTTP/1."):
        return None
    answer = Answer(int(line.split()[1]))
    while (line := stream.readline(65536)) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        answer.headers[name.strip().lower()] = value.strip()
    try:
        if "content-length" in answer.headers:
            answer.body = stream.read(int(answer.headers["content-length"]))
        elif answer.headers.get("transfer-encoding") == "chunked":
            while size := int(stream.readline(65536).split(b";")[0], 16):
                answer.body += stream.read(size)
                stream.readline(65536)
            stream.readline(65536)
    except (ConnectionError, TimeoutError, ValueError):
        pass
    return answer


def exchange(port: int, data: bytes, *, answers: int = 1, timeout: float = 10.0) -> list[Answer]:
    """Send `data` on a fresh connection, then read up to `answers` answers (fewer if it closes)."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        with contextlib.suppress(ConnectionError):
            sock.sendall(data)
        stream = sock.makefile("rb")
        got = []
        for _ in range(answers):
            answer = read_answer(stream)
            if answer is None:
                break
            got.append(answer)
        return got


def closed_by_peer(sock: socket.socket, timeout: float = 10.0) -> bool:
    """Whether the other end closes `sock` within `timeout` (whatever it writes first is read)."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if sock.recv(65536) == b"":
                return True
    except TimeoutError:
        return False
    except OSError:
        return True
    return False


def backend_requests(raw: RawBackend, marker: str) -> list[dict[str, Any]]:
    """The complete requests the backend logged whose target holds `marker`."""
    return [r for r in raw.requests() if "error" not in r and marker in r.get("target", "")]


def wire_from(raw: RawBackend, start: bytes, timeout: float = 5.0) -> bytes:
    """The bytes the backend received, from the first `start` (a request line) on.

    The proxy may answer its client before the backend's process has read what was sent to it,
    so this waits up to `timeout` for `start` to arrive.
    """
    deadline = time.monotonic() + timeout
    while (at := (wire := raw.received()).find(start)) < 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"the backend never received {start!r}")
        time.sleep(0.02)
    return wire[at:]


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) of every thread of `pid`, from the scheduler's nanoseconds."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


class AiohttpEcho(ManagedProcess):
    """aiohttp's own server (`aiohttpecho.py`) in its own process: the reference for what a
    mature HTTP/1.1 parser refuses. It answers 200 with what it parsed, as JSON."""

    def __init__(self, log_dir: Path) -> None:
        super().__init__("aiohttp-echo", log_dir / "aiohttp-echo.log")
        self.port = 0

    def start(self, timeout: float = 30.0) -> Self:
        script = Path(__file__).with_name("aiohttpecho.py")
        self.port = free_port()
        self._spawn([sys.executable, str(script), str(self.port)], dict(os.environ), cwd=None)
        try:
            self._wait_until(lambda: self.listens_on(self.port), "listening", timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def __enter__(self) -> Self:
        return self.start()
