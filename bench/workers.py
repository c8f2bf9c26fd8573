"""How the proxy scales with `--workers N` on this machine: c=64 GET ops/s per worker count.

Starts the benchmark's object-store nginx and, for each worker count in turn (interleaved over
rounds), the proxy with `--workers N`; wrk replays the same presigned 4 KiB GETs at c=64.
Nothing is pinned here: with N workers the proxy needs N cores, so wrk, nginx and the proxy
share every core the machine has, as they would on a node. Reported per worker count: ops/s,
the proxy's CPU per request (all its processes), the cores the proxy kept busy and its ops/s
per busy core (flat when workers scale, falling when they contend), the scaling against one
worker per worker added, and how busy the whole machine was (from /proc/stat), which says
whether the run was limited by cores or by the proxy.

Run as `python -m bench.workers [--workers 1 2] [--duration 5] [--rounds 2]`; prints a
Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import load
from bench.procs import Processes
from bench.runner import _cpu, _fill_objects
from bench.stack import BUCKET, Stack, _start_nginx, backend_conf, start_proxy


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot."""
    with open("/proc/stat") as stat:
        fields = [float(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.workers")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args(argv)
    python = os.environ.get("BENCH_PYTHON", sys.executable)
    procs = Processes()
    root = Path(tempfile.mkdtemp(prefix="s3router-workers-", dir="/dev/shm"))
    runs: dict[int, list[tuple[float, float, float, float]]] = {n: [] for n in args.workers}
    try:
        data = root / "data"
        (data / BUCKET).mkdir(parents=True)
        (data / ".put-temp").mkdir()
        prefix = root / "nginx-backend"
        backend = _start_nginx(
            procs, "nginx-backend", prefix, lambda p: backend_conf(prefix, data, p), pin=False
        )
        _fill_objects(Stack(backend, backend, backend, data), 1 << 20)
        for round_index in range(args.rounds):
            for workers in args.workers:
                proxy_root = root / f"proxy-{workers}-{round_index}"
                proxy_root.mkdir()
                proxy = start_proxy(
                    procs, proxy_root, backend.port, python=python, pin=False,
                    log_level="warning", workers=workers,
                )  # fmt: skip
                time.sleep(1.0 + workers)  # every worker bound and warm
                workloads = load.write_workloads(proxy_root, proxy.port)
                load.run_wrk(
                    procs, proxy_root, proxy.port, workloads["GET"], connections=16,
                    duration=1.0, pin=False,
                )  # fmt: skip
                pids = proxy.work_pids()
                cpu, busy = _cpu(pids), _machine_busy()
                result = load.run_wrk(
                    procs, proxy_root, proxy.port, workloads["GET"],
                    connections=args.connections, duration=args.duration, pin=False,
                )  # fmt: skip
                cpu = _cpu(pids) - cpu
                after = _machine_busy()
                machine = (after[0] - busy[0]) / max(after[1] - busy[1], 1.0)
                per_request = cpu / max(result.requests, 1) * 1e6
                cores = cpu / args.duration  # proxy CPU seconds per second of load
                runs[workers].append((result.ops, per_request, machine, cores))
                print(
                    f"[workers] round {round_index + 1}: --workers {workers}: {result.ops:,.0f} "
                    f"ops/s, {per_request:.0f} µs CPU/req, {cores:.2f} cores, "
                    f"machine {machine:.0%} busy, "
                    f"{result.errors} errors",
                    file=sys.stderr,
                    flush=True,
                )
                procs.stop(proxy.proc)
    finally:
        procs.stop_all()
        shutil.rmtree(root, ignore_errors=True)
    base = sorted(r[0] for r in runs[args.workers[0]])[len(runs[args.workers[0]]) // 2]
    summary = {}
    print(
        f"| --workers | GET 4 KiB c={args.connections} ops/s | vs 1 | per worker vs 1 | "
        "proxy CPU µs/req | proxy cores busy | ops/s per busy core | machine busy |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    first = args.workers[0]
    for workers, results in runs.items():
        ops, cpu, busy, cores = (sorted(r[i] for r in results)[len(results) // 2] for i in range(4))
        per_core = ops / cores if cores else 0.0
        summary[workers] = {
            "ops_per_s": round(ops),
            "cpu_us_per_req": round(cpu),
            "busy": busy,
            "cores": round(cores, 2),
            "ops_per_core": round(per_core),
        }
        scaling = (ops / base) / (workers / first)
        print(
            f"| {workers} | {ops:,.0f} | {ops / base:.2f}x | {scaling:.2f} | {cpu:.0f} "
            f"| {cores:.2f} | {per_core:,.0f} | {busy:.0%} |"
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
