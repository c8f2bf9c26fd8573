"""Processes the benchmark starts: free ports, CPU pinning, /proc counters, certain cleanup.

Every child is started through `Processes.start`, which remembers it; `Processes.stop_all`
(called from a `finally`, an atexit hook and the SIGINT/SIGTERM handlers) stops each one by its
own pid: SIGTERM (SIGQUIT for nginx's graceful stop is not needed: it is throwaway), a bounded
wait, then SIGKILL. Nothing is ever killed by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

LOOPBACK = "127.0.0.1"
CLIENT_CPU = 0  # wrk, curl, boto3 loops, this orchestrator
SERVER_CPU = 1  # nginx (both), the proxy
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    """Wait until something accepts on 127.0.0.1:port; fail with the log's tail if it dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{proc.args!r} did not listen on port {port} in {timeout}s:\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def can_pin() -> bool:
    """Two distinct CPUs for client and server, and taskset to put processes on them."""
    try:
        cpus = os.sched_getaffinity(0)
    except OSError:
        return False
    return {CLIENT_CPU, SERVER_CPU} <= cpus and shutil.which("taskset") is not None


def pinned(cpu: int, argv: Sequence[str], *, enabled: bool) -> list[str]:
    """`taskset -c CPU argv...` (taskset execs, so the pid is argv's own)."""
    return ["taskset", "-c", str(cpu), *argv] if enabled else list(argv)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds, from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def status_kib(pid: int, name: str) -> int:
    """A `kB` line of /proc/PID/status (VmHWM, VmRSS), in KiB; 0 when absent."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def children(pid: int) -> list[int]:
    """Direct children of a process (nginx workers of a master)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found.extend(int(x) for x in task.read_text().split())
    if found:
        return found
    for entry in Path("/proc").iterdir():  # kernels without CONFIG_PROC_CHILDREN
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@dataclass
class Processes:
    """Every child process the benchmark started, to be stopped whatever happens."""

    running: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(
        self,
        argv: Sequence[str],
        *,
        log: Path | None = None,
        stdout: int | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        out: int | IO[bytes]
        if log is not None:
            handle = open(log, "ab")  # noqa: SIM115 - owned by the child from here on
            out = handle
        else:
            handle = None
            out = stdout if stdout is not None else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if log is not None else subprocess.PIPE,
                env=env,
                cwd=cwd,
                start_new_session=True,  # a terminal's Ctrl-C reaches us; we stop them in order
            )
        finally:
            if handle is not None:
                handle.close()
        self.running.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
        # Workers (nginx) are remembered first: a master killed hard would leave them behind.
        kids = {pid: _comm(pid) for pid in children(proc.pid)} if proc.poll() is None else {}
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout)
        for pid, comm in kids.items():
            if comm and _comm(pid) == comm:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        if proc in self.running:
            self.running.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.running)):
            with contextlib.suppress(Exception):
                self.stop(proc)
