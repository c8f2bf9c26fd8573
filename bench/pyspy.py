"""Profile the proxy with py-spy under c=64 4 KiB GET load, and summarise where the time goes.

py-spy samples the running proxy (`record --format raw`: collapsed stacks, one line per distinct
stack with its sample count), while wrk keeps it busy. The summary attributes each sample's
leaf frame (self time) to a layer: the proxy's own code, aiohttp, its helpers (yarl, multidict),
the event loop (asyncio, uvloop), logging, the rest of the standard library, and native code
(with `--native`, frames from C extensions and libc show up themselves). It also gives the
inclusive share of a few frames that mark the request's phases.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Protocol

from bench import load
from bench.procs import CLIENT_CPU, Processes, pinned
from bench.stack import Stack


class Profiled(Protocol):
    """The running benchmark the proxy is profiled in (`runner.Bench`)."""

    python: str
    procs: Processes
    root: Path
    pin: bool
    stack: Stack
    workloads: dict[str, load.Workload]

    def log(self, message: str) -> None: ...


# "function (path/to/file.py:123)" or, for native frames, "symbol (library.so)" / "(file.c:12)".
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<where>[^()]*)\)$")
_PYTHON_FILE = re.compile(r"(\.py|^<string>|^<frozen [^>]*>):\d+$")
# Who is responsible for a sample: the innermost frame from one of these, by file.
_OWNERS = (
    (
        "metrics (telemetry/counters.py, prometheus_client)",
        (
            "prometheus_client/",
            "s3router_proxy/telemetry/counters.py",
            "s3router_proxy/telemetry/metrics.py",
        ),
    ),
    (
        "proxy's HTTP layer (http/server.py, http/messages.py, http/client.py)",
        (
            "s3router_proxy/http/server.py",
            "s3router_proxy/http/messages.py",
            "s3router_proxy/http/client.py",
        ),
    ),
    ("proxy (s3router_proxy)", ("s3router_proxy/",)),
    ("aiohttp", ("aiohttp/", "_http_parser", "_http_writer", "_websocket")),
    (
        "yarl/multidict/propcache",
        ("yarl/", "multidict/", "propcache/", "_multidict", "_quoting_c", "_helpers_c", "iter.h"),
    ),
    ("event loop (uvloop/asyncio)", ("uvloop", "loop.c", "libuv", "asyncio/", "handles/")),
    ("logging", ("logging/",)),
)
_SOCKET_CALLS = frozenset(
    {"write", "writev", "send", "sendto", "sendmsg", "read", "readv", "recv", "recvfrom", "recvmsg"}
)
_POLL_CALLS = frozenset({"epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "select"})
# Frames whose inclusive share tells the phases of a proxied request apart: (label, file, func).
_MARKERS = (
    (
        "proxy request handler (serving/handler.py, whole request)",
        "s3router_proxy/serving/handler.py",
        "",
    ),
    ("parse_request", "s3router_proxy/s3/request.py", ""),
    ("SigV4 verify (auth/sigv4.py)", "s3router_proxy/auth/sigv4.py", ""),
    ("SigV4 re-sign (auth/signer.py)", "s3router_proxy/auth/signer.py", ""),
    (
        "forward (backends/forward.py: backend round trip + relay)",
        "s3router_proxy/backends/forward.py",
        "forward",
    ),
    ("relay (response back to the client)", "s3router_proxy/backends/relay.py", "relay"),
    (
        "backend leg: UpstreamPool.request (http/client.py)",
        "s3router_proxy/http/client.py",
        "request",
    ),
    (
        "front: request heads parsed (data_received)",
        "s3router_proxy/http/server.py",
        "data_received",
    ),
    ("front: answers written (http/messages.py)", "s3router_proxy/http/messages.py", ""),
    ("aiohttp (anything, e.g. the admin listener)", "aiohttp/", ""),
    ("metrics: prometheus_client", "prometheus_client/", ""),
    ("metrics: telemetry/counters.py", "s3router_proxy/telemetry/counters.py", ""),
    ("logging", "logging/", ""),
    ("CPython cyclic GC", "", "gc_collect_main"),
)


def _split(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame)
    return (match.group("func"), match.group("where")) if match else (frame, "")


def owner(frames: list[str]) -> str:
    """The layer a sample's CPU time belongs to.

    GC, socket syscalls and the poll call are named as themselves; anything else (a Python
    function, or C code such as the interpreter or hashlib) belongs to the innermost frame of
    a known layer, so `hmac` called by the SigV4 code counts as the proxy's.
    """
    for frame in frames:
        if _split(frame)[0] == "gc_collect_main":
            return "CPython cyclic GC"
    func, where = _split(frames[-1])
    if "libc" in where and func in _SOCKET_CALLS:
        return "kernel: socket read/write syscalls"
    if "libc" in where and func in _POLL_CALLS:
        return "event loop: epoll_wait (kernel)"
    for frame in reversed(frames):
        where = _split(frame)[1]
        for name, needles in _OWNERS:
            if any(needle in where for needle in needles):
                return name
    return "other (interpreter, stdlib, libc)"


def short(frame: str) -> str:
    """Trim a frame's file to what tells it apart: `func (aiohttp/web_protocol.py)`."""
    func, where = _split(frame)
    if not where:
        return frame
    where = re.sub(r":\d+$", "", where) if _PYTHON_FILE.search(where) else where
    for marker in ("site-packages/", "/src/", "/lib/python3.11/", "/lib/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{func} ({where})"


def parse_collapsed(text: str) -> list[tuple[list[str], int]]:
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            frames = [
                f for f in stack.split(";") if not f.startswith(("process ", "thread ", "<idle>"))
            ]
            if frames:
                stacks.append((frames, int(count)))
    return stacks


def _marked(frames: list[str], file_part: str, func: str) -> bool:
    for frame in frames:
        name, where = _split(frame)
        if file_part and file_part not in where:
            continue
        if not func or name == func or name.endswith("." + func):
            return True
    return False


def summarise(text: str, *, top: int = 25) -> str:
    stacks = parse_collapsed(text)
    total = sum(count for _, count in stacks)
    if not total:
        return "py-spy recorded no samples (was the proxy busy?)\n"
    self_time: Counter[str] = Counter()
    owners: Counter[str] = Counter()
    markers: Counter[str] = Counter()
    for frames, count in stacks:
        self_time[short(frames[-1])] += count
        owners[owner(frames)] += count
        for label, file_part, func in _MARKERS:
            if _marked(frames, file_part, func):
                markers[label] += count
    out = [
        f"{total} samples of the busy proxy (idle time excluded).",
        "",
        "CPU by owner (GC and syscalls as themselves; other C code charged to the innermost "
        "Python layer that called it):",
        "",
        "| owner | share |",
        "|---|---:|",
    ]
    out += [f"| {name} | {count / total:.1%} |" for name, count in owners.most_common()]
    out += ["", "Inclusive share of request phases:", "", "| frame | inclusive |", "|---|---:|"]
    out += [f"| {label} | {markers[label] / total:.1%} |" for label, _, _ in _MARKERS]
    out += ["", f"Top {top} functions by self time:", "", "| # | function | self |"]
    out.append("|---:|---|---:|")
    for rank, (frame, count) in enumerate(self_time.most_common(top), 1):
        out.append(f"| {rank} | `{frame}` | {count / total:.1%} |")
    return "\n".join(out) + "\n"


def _py_spy(python: str) -> str:
    candidate = Path(python).parent / "py-spy"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("py-spy")
    if found:
        return found
    subprocess.run([python, "-m", "pip", "install", "-q", "py-spy"], check=True, timeout=600)
    return str(candidate)


def profile(bench: Profiled, out: Path, seconds: float) -> str:
    """Record the proxy for `seconds` under c=64 GET load; write the raw stacks; summarise."""
    spy = _py_spy(bench.python)
    raw = out.with_suffix(".collapsed.txt")
    raw.parent.mkdir(parents=True, exist_ok=True)
    pid = bench.stack.proxy.pid
    bench.log(f"py-spy: recording pid {pid} for {seconds:g} s under c=64 GET load")
    # --native shows time in C code (uvloop, the HTTP parser, hashlib) as its own frames; it
    # needs libunwind support, so fall back to Python frames only when it is refused.
    for native in (["--native"], []):
        argv = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "250"]
        argv += ["--duration", str(math.ceil(seconds)), "--output", str(raw), *native]
        spy_proc = bench.procs.start(pinned(CLIENT_CPU, argv, enabled=bench.pin),
                                     stdout=subprocess.PIPE)  # fmt: skip
        time.sleep(1.0)
        if spy_proc.poll() is not None and spy_proc.returncode != 0:
            bench.procs.stop(spy_proc)
            continue
        load.run_wrk(
            bench.procs, bench.root, bench.stack.proxy.port, bench.workloads["GET"],
            connections=64, duration=seconds + 2, pin=bench.pin,
        )  # fmt: skip
        try:
            _, err = spy_proc.communicate(timeout=60)
        finally:
            bench.procs.stop(spy_proc)
        if raw.exists() and raw.stat().st_size:
            break
        print(f"py-spy failed: {err.decode(errors='replace')[-1000:]}", file=sys.stderr)
    else:
        return "py-spy could not record the proxy (ptrace not permitted?)"
    text = raw.read_text(errors="replace")
    mode = "with --native" if "--native" in argv else "Python frames only"
    bench.log(f"py-spy: raw stacks in {raw}")
    return f"### Profile ({mode})\n\n" + summarise(text)


def append_to_docs(docs: Path, summary: str) -> None:
    """Append the profile summary to the newest dated section of the docs."""
    text = docs.read_text(encoding="utf-8") if docs.exists() else ""
    starts = [m.start() for m in re.finditer(r"^## ", text, flags=re.MULTILINE)]
    if len(starts) >= 2:
        cut = starts[1]
        text = text[:cut].rstrip() + "\n\n" + summary.rstrip() + "\n\n" + text[cut:]
    else:
        text = text.rstrip() + "\n\n" + summary.rstrip() + "\n"
    docs.write_text(text, encoding="utf-8")


if __name__ == "__main__":  # summarise a saved recording: python -m bench.pyspy FILE
    print(summarise(Path(sys.argv[1]).read_text(errors="replace")))
