"""Ceph's s3-tests run against moto directly and through the proxy, outcome by outcome.

Each target gets its own `moto_server`, with signature checks on and the three s3-tests users
(main, alt, tenant) as IAM users of three different accounts. "direct" points the suite at
moto with those users' keys; "proxy" points it at the proxy, which knows the users as its own
clients (full access each) and forwards each one's requests to moto signed with that user's
own moto keys (`backend_keys`; the backend section holds main's), and unsigned requests
unsigned, for moto to decide; moto takes `Transfer-Encoding: chunked` uploads, so
the proxy forwards them (`chunked_uploads: forward`). Outcomes come from the suite's junit XML.
`tests/conformance/expected.json` keeps the outcome of every test on both targets, so a change
in the proxy shows up as a changed outcome.

    python tests/conformance/s3tests_runner.py              # whole suite, compare with expected
    python tests/conformance/s3tests_runner.py --record     # ... and write expected.json
    python tests/conformance/s3tests_runner.py --subset     # the CI subset only
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))
from harness import (  # noqa: E402
    REGION,
    ProxyProcess,
    isolated_aws_env,
    write_config,
)
from s3tests_accounts import USERS, MotoAccounts, s3tests_conf  # noqa: E402

SUITE = HERE / "s3-tests"
EXPECTED = HERE / "expected.json"
SUBSET = HERE / "subset.txt"
TARGETS = ("direct", "proxy")
SUITE_FILES = ("s3tests/functional/test_s3.py", "s3tests/functional/test_headers.py")
# Ceph's lifecycle and cloud-tier tests wait for RGW's background workers (minutes each);
# moto has none, so they would only measure the wait.
DESELECTED_MARKERS = (
    "lifecycle_expiration",
    "lifecycle_transition",
    "cloud_transition",
    "cloud_restore",
)
# The proxy refuses these tests' DeleteObjects of 1001 keys (moto deletes them all), so their
# cleanup deletes in pages and trips over moto's ListObjectVersions, leaving a bucket that
# fails the next tests' setup on one target only. Run last, on their own, on both targets.
RUN_LAST = (
    "test_s3.py::test_multi_object_delete_key_limit",
    "test_s3.py::test_multi_objectv2_delete_key_limit",
)
OUTCOMES = ("passed", "failed", "error", "skipped")
# junit XML marks a test that did not pass by a child element; an error outranks a failure.
_JUNIT_OUTCOMES = (("error", "error"), ("failure", "failed"), ("skipped", "skipped"))


def proxy_config(backend: MotoAccounts) -> str:
    clients = "".join(
        f"""
          - name: {user.section}
            access_key_id: "{user.proxy_key}"
            secret_access_key: "{user.proxy_secret}"
            backend_keys:
              moto:
                access_key_id: "{backend.keys[user.section][0]}"
                secret_access_key: "{backend.keys[user.section][1]}"
        """
        for user in USERS
    )
    return f"""
        backends:
          moto:
            endpoint: "{backend.endpoint}"
            access_key_id: "{backend.access_key_id}"
            secret_access_key: "{backend.secret_access_key}"
            chunked_uploads: forward
        clients:{clients}
        anonymous:
          forward: unsigned
        routing:
          default_target: moto
        """


@contextlib.contextmanager
def target(name: str, workdir: Path) -> Iterator[str]:
    """Start what `name` needs and yield the path of its s3tests.conf."""
    workdir.mkdir(parents=True, exist_ok=True)
    with MotoAccounts(workdir, name=f"moto-{name}") as moto:
        conf = workdir / "s3tests.conf"
        if name == "direct":
            conf.write_text(s3tests_conf(moto.endpoint, moto.keys), encoding="utf-8")
            yield str(conf)
            return
        config = write_config(workdir, proxy_config(moto), "proxy.yaml")
        with ProxyProcess(config, workdir, log_level="info") as proxy:
            keys = {u.section: (u.proxy_key, u.proxy_secret) for u in USERS}
            conf.write_text(s3tests_conf(proxy.endpoint, keys), encoding="utf-8")
            yield str(conf)


def suite_argv(junit: Path, tests: Sequence[str] | None) -> list[str]:
    """The suite's pytest command: `tests` by node id, or every file less the markers above
    and `RUN_LAST`."""
    selection = (
        [f"s3tests/functional/{name}" for name in tests]
        if tests is not None
        else [
            *SUITE_FILES,
            "-m",
            " and ".join(f"not {m}" for m in DESELECTED_MARKERS),
            *(f"--deselect=s3tests/functional/{name}" for name in RUN_LAST),
        ]
    )
    return [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        "-p",
        "no:cacheprovider",
        "-p",
        "s3tests_timeout",
        "-o",
        "junit_family=xunit1",
        f"--junit-xml={junit}",
        *selection,
    ]


def phases(tests: Sequence[str] | None) -> list[Sequence[str] | None]:
    """The suite's pytest runs, in order: everything (or `tests`) but `RUN_LAST`, then those."""
    first = None if tests is None else [t for t in tests if t not in RUN_LAST]
    last = [t for t in (RUN_LAST if tests is None else tests) if t in RUN_LAST]
    return [run for run in (first, last) if run is None or run]


def outcomes_from_junit(path: Path) -> dict[str, str]:
    """`{"test_s3.py::test_name": outcome}` from the suite's junit XML (an error in setup or
    teardown counts as the test's error)."""
    found: dict[str, str] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        module = case.get("classname", "").rpartition(".")[2]
        name = f"{module}.py::{case.get('name')}"
        kinds = {child.tag for child in case}
        outcome = next((o for tag, o in _JUNIT_OUTCOMES if tag in kinds), "passed")
        found[name] = outcome
    return found


def run_targets(
    workdir: Path, tests: Sequence[str] | None = None, timeout: float = 4 * 3600
) -> dict[str, dict[str, str]]:
    """Run the suite (or `tests`) on both targets at once, phase by phase (`phases`); each
    target's outcomes."""
    deadline = time.monotonic() + timeout
    results: dict[str, dict[str, str]] = {name: {} for name in TARGETS}
    with contextlib.ExitStack() as stack:
        confs = {name: stack.enter_context(target(name, workdir / name)) for name in TARGETS}
        for index, selection in enumerate(phases(tests)):
            running = {
                name: _start_suite(workdir / name, conf, selection, index)
                for name, conf in confs.items()
            }
            for name, (proc, junit) in running.items():
                try:
                    proc.wait(max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    for other, _ in running.values():
                        other.kill()
                        other.wait()
                    raise
                if not junit.exists():
                    log = (workdir / name / "suite.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"s3-tests on {name} wrote no results:\n{log}")
                results[name].update(outcomes_from_junit(junit))
    return results


def _start_suite(
    where: Path, conf: str, selection: Sequence[str] | None, index: int
) -> tuple[subprocess.Popen[bytes], Path]:
    """One pytest run of the suite against the target configured in `conf`."""
    junit = where / ("junit.xml" if index == 0 else f"junit-{index}.xml")
    junit.unlink(missing_ok=True)
    env = isolated_aws_env(os.environ, where.parent)
    env.update(
        S3TEST_CONF=conf,
        PYTHONPATH=str(HERE),
        PYTHONDONTWRITEBYTECODE="1",
        AWS_DEFAULT_REGION=REGION,
    )
    with (where / "suite.log").open("wb" if index == 0 else "ab") as log:
        proc = subprocess.Popen(
            suite_argv(junit, selection),
            cwd=SUITE,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return proc, junit


def load_expected() -> dict[str, dict[str, str]]:
    """`{test: {"direct": outcome, "proxy": outcome}}` as recorded."""
    outcomes: dict[str, dict[str, str]] = json.loads(EXPECTED.read_text())["outcomes"]
    return outcomes


def subset_names() -> list[str]:
    lines = SUBSET.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def mismatches(
    expected: Mapping[str, Mapping[str, str]],
    actual: Mapping[str, Mapping[str, str]],
    tests: Sequence[str],
) -> list[str]:
    """One line per test and target whose outcome is not the recorded one."""
    lines = []
    for name in tests:
        for where in TARGETS:
            want = expected.get(name, {}).get(where, "not recorded")
            got = actual[where].get(name, "not run")
            if want != got:
                lines.append(f"{name} [{where}]: expected {want}, got {got}")
    return lines


def gap(outcomes: Mapping[str, Mapping[str, str]]) -> tuple[list[str], list[str]]:
    """(tests that pass directly but not through the proxy, tests that pass only through it)."""
    worse = [n for n, o in outcomes.items() if o["direct"] == "passed" != o["proxy"]]
    better = [n for n, o in outcomes.items() if o["proxy"] == "passed" != o["direct"]]
    return sorted(worse), sorted(better)


def by_test(results: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    names = sorted(set().union(*(results[where] for where in TARGETS)))
    return {n: {w: results[w].get(n, "not run") for w in TARGETS} for n in names}


def summary(outcomes: Mapping[str, Mapping[str, str]]) -> str:
    lines = []
    for where in TARGETS:
        counts = {o: sum(1 for v in outcomes.values() if v[where] == o) for o in OUTCOMES}
        lines.append(f"{where}: " + ", ".join(f"{n} {o}" for o, n in counts.items()))
    worse, better = gap(outcomes)
    lines.append(f"pass directly, not through the proxy ({len(worse)}):")
    lines += [f"  {n} ({outcomes[n]['proxy']})" for n in worse]
    lines.append(f"pass through the proxy, not directly ({len(better)}):")
    lines += [f"  {n} ({outcomes[n]['direct']})" for n in better]
    return "\n".join(lines)


def record(outcomes: Mapping[str, Mapping[str, str]]) -> None:
    pinned = (SUITE / "PINNED.txt").read_text(encoding="utf-8")
    commit = re.search(r"\b[0-9a-f]{40}\b", pinned)
    document = {
        "suite": f"ceph/s3-tests {commit.group(0) if commit else 'unknown commit'}",
        "moto": version("moto"),
        "deselected_markers": list(DESELECTED_MARKERS),
        "outcomes": outcomes,
    }
    EXPECTED.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", action="store_true", help="write expected.json")
    parser.add_argument("--subset", action="store_true", help="only the tests in subset.txt")
    parser.add_argument("--workdir", type=Path, help="keep logs here (default: a temporary dir)")
    args = parser.parse_args(argv)
    if args.record and args.subset:
        parser.error("--record writes the whole suite's outcomes: leave out --subset")
    tests = subset_names() if args.subset else None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="s3tests-"))
    started = time.monotonic()
    outcomes = by_test(run_targets(workdir, tests))
    print(f"{len(outcomes)} tests in {time.monotonic() - started:.0f} s; logs in {workdir}")
    print(summary(outcomes))
    if args.record:
        record(outcomes)
        print(f"recorded in {EXPECTED}")
        return 0
    if not EXPECTED.exists():
        return 0
    expected = load_expected()
    actual = {w: {n: o[w] for n, o in outcomes.items()} for w in TARGETS}
    changed = mismatches(expected, actual, tests or sorted(set(outcomes) | set(expected)))
    print(f"changed from {EXPECTED.name} ({len(changed)}):", *changed, sep="\n  ")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
