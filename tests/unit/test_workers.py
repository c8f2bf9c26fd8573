"""`--workers N`: the supervisor's processes share one port, a worker that dies is replaced, and
SIGTERM stops them all. The supervisor runs in a process of its own, as it does in production."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

CONFIG = """\
router:
  listen_address: "127.0.0.1:{port}"
  admin_address: "off"
  shutdown_timeout: 2
backends:
  a: {{endpoint: "http://127.0.0.1:9", access_key_id: k, secret_access_key: s}}
"""

SUPERVISOR = """\
import sys
from s3router_proxy.reload import Loader
from s3router_proxy.telemetry.logsetup import configure_logging
from s3router_proxy.workers import supervise

configure_logging("info", "text")
loader = Loader(sys.argv[1], None, {}, {})
sys.exit(supervise(loader, loader.load(), "info", 2))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_worker_that_dies_is_replaced_and_sigterm_stops_all(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "r.yaml"
    config.write_text(CONFIG.format(port=port), encoding="utf-8")
    log = tmp_path / "supervisor.log"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    with log.open("wb") as out:
        supervisor = subprocess.Popen(
            [sys.executable, "-c", SUPERVISOR, str(config)], stdout=out, stderr=out, env=env
        )
    try:
        wait_for(lambda: "listening on" in log.read_text(), "the banner")
        first = children(supervisor.pid)
        assert len(first) == 2, first
        os.kill(first[0], signal.SIGKILL)
        wait_for(lambda: "starting another" in log.read_text(), "a replacement")
        wait_for(lambda: len(set(children(supervisor.pid)) - {first[0]}) == 2, "two workers")
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        workers = children(supervisor.pid)
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
        assert all(not Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
    text = log.read_text()
    assert text.count("listening on") == 1, text
    assert f"listening on http://127.0.0.1:{port} (2 worker processes)" in text
    assert f"worker {first[0]} exited with -9; starting another" in text
