"""`--workers auto`: worker processes from the cgroup CPU quota (v2 `cpu.max`, v1 CFS files),
capped by the CPUs the process may run on, read from fake cgroup trees."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from s3router_proxy.cli import _workers
from s3router_proxy.workers import auto_workers


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


V2 = "0::/\n"


@pytest.mark.parametrize(
    ("files", "membership", "cpus", "expected"),
    [
        ({"cpu.max": "max 100000\n"}, V2, 4, 4),  # no quota: every CPU of the affinity
        ({"cpu.max": "150000 100000\n"}, V2, 8, 2),  # 1.5 CPUs, rounded up
        ({"cpu.max": "50000 100000\n"}, V2, 8, 1),  # half a CPU: still one worker
        ({"cpu.max": "400000 100000\n"}, V2, 2, 2),  # more quota than CPUs it may use
        ({}, V2, 3, 3),  # no cgroup files at all
        ({"cpu.max": "garbage\n"}, V2, 3, 3),
        (
            # Kubernetes without a cgroup namespace: the pod's limit, above the container's.
            {
                "kubepods/pod1/cpu.max": "200000 100000\n",
                "kubepods/pod1/c1/cpu.max": "max 100000\n",
            },
            "0::/kubepods/pod1/c1\n",
            16,
            2,
        ),
        (
            # cgroup v1, the container's own cgroup mounted at the root (Docker).
            {
                "cpu,cpuacct/cpu.cfs_quota_us": "300000\n",
                "cpu,cpuacct/cpu.cfs_period_us": "100000\n",
            },
            "4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n",
            8,
            3,
        ),
        (
            {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},
            "2:cpuacct:/\n1:cpu:/\n0::/\n",
            2,
            2,
        ),
    ],
)
def test_auto_workers(
    tmp_path: Path, files: dict[str, str], membership: str, cpus: int, expected: int
) -> None:
    assert auto_workers(write(tmp_path, files), membership, cpus) == expected


def test_the_option_takes_auto_and_numbers() -> None:
    assert _workers("auto") == _workers("AUTO") == auto_workers() >= 1
    assert _workers("3") == 3
    with pytest.raises(argparse.ArgumentTypeError, match="or auto"):
        _workers("0")
