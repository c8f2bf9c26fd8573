"""What one `migrate` process costs: CPU per object and per GiB, and its rate against moto.

Two moto servers (source and destination store), a bucket of small objects and a few large ones
filled directly, then `lakefs-s3-router migrate` copies it across as a separate process. Its own
CPU time (from wait4), less that of a run over an empty bucket (start-up), over the objects and
bytes it moved is what sizes a pod: at one core, a pod copies at most 1 / (CPU s per object)
objects/s and 1 / (CPU s per GiB) GiB/s, whatever the stores. The wall-clock rate here is
moto's, not the proxy's (moto's CPU is printed beside it): real stores answer faster, so a pod's
rate sits between the two.

Run as `python -m bench.migrate_rate [--small 2000] [--large 4] [--large-mib 64]`; prints a
Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.procs import LOOPBACK, Processes, cpu_seconds, free_port, wait_port

MIB = 1 << 20
SMALL_SIZE = 4096
KEY_ID, SECRET = "testing", "testing"


def _moto(procs: Processes, root: Path, name: str) -> tuple[int, subprocess.Popen[bytes]]:
    port = free_port()
    log = root / f"{name}.log"
    argv = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)]
    proc = procs.start(argv, log=log)
    wait_port(port, proc, 30.0, log)
    return port, proc


def _client(port: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=f"http://{LOOPBACK}:{port}",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=16),
    )


def _fill(port: int, small: int, large: int, large_mib: int) -> int:
    client = _client(port)
    client.create_bucket(Bucket="src-bench")
    body = os.urandom(SMALL_SIZE)
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: client.put_object(Bucket="src-bench", Key=f"s/{i:07d}", Body=body),
                range(small),
            )
        )
    big = os.urandom(large_mib * MIB)
    for i in range(large):
        client.put_object(Bucket="src-bench", Key=f"l/{i:03d}", Body=big)
    return small * SMALL_SIZE + large * large_mib * MIB


def _config(root: Path, source: int, dest: int) -> Path:
    path = root / "migrate.yaml"
    path.write_text(
        f"""
router:
  admin_address: "off"
backends:
  source:
    endpoint: "http://{LOOPBACK}:{source}"
    access_key_id: {KEY_ID}
    secret_access_key: {SECRET}
  dest:
    endpoint: "http://{LOOPBACK}:{dest}"
    access_key_id: {KEY_ID}
    secret_access_key: {SECRET}
routing:
  rules:
    - {{pattern: "src-*", target: source}}
    - {{pattern: "dst-*", target: dest}}
  default_target: source
""",
        encoding="utf-8",
    )
    return path


def measure(small: int, large: int, large_mib: int, concurrency: int) -> dict[str, float]:
    procs = Processes()
    root = Path(tempfile.mkdtemp(prefix="s3router-migrate-bench-"))
    try:
        source, source_proc = _moto(procs, root, "moto-source")
        dest, dest_proc = _moto(procs, root, "moto-dest")
        total = _fill(source, small, large, large_mib)
        _client(dest).create_bucket(Bucket="dst-bench")
        argv = [
            sys.executable, "-m", "s3router_proxy", "migrate", "--config",
            str(_config(root, source, dest)), "s3://src-bench", "s3://dst-bench",
            "--concurrency", str(concurrency), "--no-progress",
            "--report", str(root / "report.csv"),
        ]  # fmt: skip
        moto_before = cpu_seconds(source_proc.pid) + cpu_seconds(dest_proc.pid)
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            assert proc.stderr is not None
            raise RuntimeError(f"migrate failed: {proc.stderr.read().decode()[-2000:]}")
        moto_cpu = cpu_seconds(source_proc.pid) + cpu_seconds(dest_proc.pid) - moto_before
        cpu = usage.ru_utime + usage.ru_stime
        objects = small + large
        return {
            "objects": objects,
            "gib": total / (1 << 30),
            "wall_s": wall,
            "migrate_cpu_s": cpu,
            "moto_cpu_s": moto_cpu,
            "objects_per_s_wall": objects / wall,
            "mib_per_s_wall": total / MIB / wall,
            "peak_rss_mib": usage.ru_maxrss / 1024,
        }
    finally:
        procs.stop_all()
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.migrate_rate")
    parser.add_argument("--small", type=int, default=2000, help="4 KiB objects (2000)")
    parser.add_argument("--large", type=int, default=4, help="large objects (4)")
    parser.add_argument("--large-mib", type=int, default=64, help="large object size (64)")
    parser.add_argument("--concurrency", type=int, default=16, help="migrate --concurrency")
    args = parser.parse_args(argv)
    # An empty bucket: the process's start-up and one listing, taken off the others' CPU.
    empty = measure(0, 0, args.large_mib, args.concurrency)
    small_only = measure(args.small, 0, args.large_mib, args.concurrency)
    large_only = measure(0, args.large, args.large_mib, args.concurrency)
    base = empty["migrate_cpu_s"]
    per_object = (small_only["migrate_cpu_s"] - base) / small_only["objects"]
    per_gib = (large_only["migrate_cpu_s"] - base) / large_only["gib"]
    print("| run | objects | GiB | wall s | migrate CPU s | moto CPU s | objects/s | MiB/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    runs = (
        ("empty bucket", empty),
        ("small (4 KiB)", small_only),
        (f"large ({args.large_mib} MiB)", large_only),
    )
    for name, run in runs:
        print(
            f"| {name} | {run['objects']:,.0f} | {run['gib']:.2f} | {run['wall_s']:.1f} "
            f"| {run['migrate_cpu_s']:.2f} | {run['moto_cpu_s']:.2f} "
            f"| {run['objects_per_s_wall']:,.0f} | {run['mib_per_s_wall']:,.0f} |"
        )
    print(
        f"\nmigrate CPU beyond start-up ({base:.2f} s): {per_object * 1000:.2f} ms per small "
        f"object, {per_gib:.2f} s per GiB; "
        f"one core: at most {1 / per_object:,.0f} objects/s, {1 / per_gib:.2f} GiB/s; "
        f"peak RSS {max(small_only['peak_rss_mib'], large_only['peak_rss_mib']):.0f} MiB"
    )
    print(
        json.dumps(
            {
                "empty": empty,
                "small": small_only,
                "large": large_only,
                "cpu_ms_per_object": per_object * 1000,
                "cpu_s_per_gib": per_gib,
            }
        )
    )


if __name__ == "__main__":
    main()
