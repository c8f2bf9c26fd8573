"""Embedded demo stores: `endpoint: embedded` backends run as local S3 servers on loopback.

Each embedded backend is its own `moto` server process (separate processes keep the stores
apart), started before the proxy listens and stopped when it exits. An embedded `kind: redis`
backend is a `redis-server` of its own (nothing saved to disk) when one is installed; without
it an S3 store stands in, so the demo runs with nothing else installed. This is for trying the
proxy without any external store; production configs name real endpoints.

The stores live only as long as the proxy, on ports chosen at start, so the proxy says where
they are in a small state file (`state_path`: named for the config file's absolute path, in a
directory only this user can write) for as long as it runs. `lakefs-s3-router migrate
--config` the same file reads it (`running_stores`) and copies between the demo's stores.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..config.model import EMBEDDED, Config
from ..config.reader import ConfigError

log = logging.getLogger("s3router_proxy.embedded")
# A demo Redis keeps nothing on disk: its objects live as long as the proxy.
_EPHEMERAL = ("--save", "", "--appendonly", "no")


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


def state_path(config_path: str | Path) -> Path:
    """Where a proxy started with `config_path` says where its embedded stores listen."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        directory = Path(runtime) / "lakefs-s3-router"
    else:
        directory = Path(tempfile.gettempdir()) / f"lakefs-s3-router-{os.getuid()}"
    name = hashlib.sha256(str(Path(config_path).resolve()).encode()).hexdigest()[:16]
    return directory / f"embedded-{name}.json"


def _private(directory: Path) -> bool:
    """True when `directory` is this user's and nobody else may write in it (in a shared
    temporary directory another user could have made it first, to point migrate elsewhere)."""
    try:
        info = directory.lstat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # there, but another user's
    return True


def running_stores(config_path: str | Path) -> dict[str, str]:
    """Backend name -> endpoint of the embedded stores a running proxy with this config
    started; empty when no such proxy runs."""
    path = state_path(config_path)
    if not _private(path.parent):
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if (
        not isinstance(state, dict)
        or state.get("config") != str(Path(config_path).resolve())
        or not isinstance(state.get("pid"), int)
        or not _alive(state["pid"])
        or not isinstance(state.get("endpoints"), dict)
    ):
        return {}
    return {str(name): str(url) for name, url in state["endpoints"].items()}


class EmbeddedStores:
    """Starts a local S3 server per embedded backend; `stop()` ends them all."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.endpoints: dict[str, str] = {}  # backend name -> its running store
        self.state_file: Path | None = None

    def start(self, config: Config) -> Config:
        """The config with every embedded backend's endpoint replaced by a running store."""
        names = [n for n, b in config.backends.items() if b.endpoint == EMBEDDED]
        if not names:
            return config
        backends = dict(config.backends)
        redis_server = shutil.which("redis-server")
        for name in [n for n in names if backends[n].kind == "redis"]:
            if redis_server is None:
                log.warning(
                    "backend %s: redis-server is not installed; an S3 store stands in for it",
                    name,
                )
                continue
            port = _free_port()
            self._run([redis_server, "--port", str(port), "--bind", "127.0.0.1", *_EPHEMERAL])
            _wait_listening(port, self.processes[-1])
            self.endpoints[name] = f"redis://127.0.0.1:{port}/0"
            backends[name] = backends[name].running_at(self.endpoints[name])
            names.remove(name)
        if not names:
            self._publish(config.source)
            return dataclasses.replace(config, backends=backends)
        try:
            import moto.server  # noqa: F401
        except ImportError:
            raise ConfigError(
                f"{config.source}: backends {names} use `endpoint: embedded`, which needs the "
                "demo extra: pip install 's3router-proxy[demo]'"
            ) from None
        for name in names:
            port = _free_port()
            self._run([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)])
            _wait_listening(port, self.processes[-1])
            self.endpoints[name] = f"http://127.0.0.1:{port}"
            backends[name] = backends[name].running_at(self.endpoints[name])
        self._publish(config.source)
        return dataclasses.replace(config, backends=backends)

    def _run(self, argv: list[str]) -> None:
        self.processes.append(
            subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=tempfile.gettempdir(),
            )
        )

    def _publish(self, config_path: str) -> None:
        """Write the state file `running_stores` reads; a failure only costs `migrate`."""
        if not Path(config_path).is_file():
            return
        path = state_path(config_path)
        state = {
            "pid": os.getpid(),
            "config": str(Path(config_path).resolve()),
            "endpoints": self.endpoints,
        }
        try:
            path.parent.mkdir(mode=0o700, exist_ok=True)
            if not _private(path.parent):
                raise PermissionError(f"{path.parent} is not this user's alone")
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(state, out)
            os.replace(partial, path)
            self.state_file = path
        except OSError as exc:
            log.warning(
                "embedded stores: cannot write %s (%s); migrate will not find them", path, exc
            )

    def stop(self) -> None:
        if self.state_file is not None:
            with contextlib.suppress(OSError, ValueError):
                state = json.loads(self.state_file.read_text(encoding="utf-8"))
                if isinstance(state, dict) and state.get("pid") == os.getpid():
                    self.state_file.unlink()  # only our own: a newer proxy's stays
            self.state_file = None
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
