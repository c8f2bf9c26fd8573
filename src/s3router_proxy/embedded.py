"""Embedded demo stores: `endpoint: embedded` backends run as local S3 servers on loopback.

Each embedded backend is its own `moto` server process (separate processes keep the stores
apart), started before the proxy listens and stopped when it exits. This is for trying the
proxy without any external store; production configs name real endpoints.
"""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import time

from .config import EMBEDDED, Config, ConfigError


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigError(f"the embedded store on port {port} exited at start-up")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ConfigError(f"the embedded store on port {port} did not start within {timeout:.0f}s")


class EmbeddedStores:
    """Starts a local S3 server per embedded backend; `stop()` ends them all."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.endpoints: dict[str, str] = {}  # backend name -> its running store

    def start(self, config: Config) -> Config:
        """The config with every embedded backend's endpoint replaced by a running store."""
        names = [n for n, b in config.backends.items() if b.endpoint == EMBEDDED]
        if not names:
            return config
        try:
            import moto.server  # noqa: F401
        except ImportError:
            raise ConfigError(
                f"{config.source}: backends {names} use `endpoint: embedded`, which needs the "
                "demo extra: pip install 's3router-proxy[demo]'"
            ) from None
        backends = dict(config.backends)
        for name in names:
            port = _free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.processes.append(process)
            _wait_listening(port, process)
            self.endpoints[name] = f"http://127.0.0.1:{port}"
            backends[name] = dataclasses.replace(backends[name], endpoint=self.endpoints[name])
        return dataclasses.replace(config, backends=backends)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
