"""`redis-server` as a separate process on a free loopback port, for the `kind: redis` store.

Nothing persists (`--save '' --appendonly no`, a temporary directory) and the process is always
stopped. `REDIS_SERVER` is the binary, or None when it is not installed: tests that need it skip
with that reason (`.ci/run` installs Debian's package).
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Self

from harness import LOOPBACK, ManagedProcess, free_port

REDIS_SERVER = shutil.which("redis-server")
MISSING = "redis-server is not installed (apt-get install redis-server; .ci/run installs it)"


class RedisServer(ManagedProcess):
    """One redis-server; `url` is what a `kind: redis` backend names."""

    def __init__(self, directory: Path, *, name: str = "redis") -> None:
        super().__init__(name, directory / f"{name}.log")
        self.directory = directory
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self, timeout: float = 30.0) -> Self:
        assert REDIS_SERVER is not None, MISSING

        def launch() -> None:
            self.port = free_port()
            argv = [REDIS_SERVER, "--port", str(self.port), "--bind", LOOPBACK]
            argv += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
            self._spawn(argv, {}, cwd=self.directory)

        self._start_on_free_ports(launch, self._pong, "answering PING", timeout, 3)
        return self

    def _pong(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: str) -> bytes:
        """One command's raw answer (for tests that look at the store directly)."""
        with socket.create_connection((LOOPBACK, self.port), timeout=5) as sock:
            parts = [f"*{len(args)}\r\n".encode()]
            for arg in args:
                data = arg.encode()
                parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
            sock.sendall(b"".join(parts))
            return sock.recv(1 << 20)

    def __enter__(self) -> Self:
        return self.start()
