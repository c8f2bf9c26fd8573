"""Ceph's s3-tests run against moto directly and through the proxy, outcome by outcome.

Each target gets its own `moto_server`, with signature checks on and the three s3-tests users
(main, alt, tenant) as IAM users of three different accounts. "direct" points the suite at
moto with those users' keys; "proxy" points it at the proxy, which knows the users as its own
clients (full access each) and forwards everything to moto with main's key. Outcomes come from
the suite's junit XML. `tests/conformance/expected.json` keeps the outcome of every test on
both targets, so a change in the proxy shows up as a changed outcome.

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
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import boto3
from botocore.config import Config

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))
from harness import (  # noqa: E402
    REGION,
    MotoBackend,
    ProxyProcess,
    isolated_aws_env,
    write_config,
)

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
OUTCOMES = ("passed", "failed", "error", "skipped")
# junit XML marks a test that did not pass by a child element; an error outranks a failure.
_JUNIT_OUTCOMES = (("error", "error"), ("failure", "failed"), ("skipped", "skipped"))
# moto answers every account's requests with one canonical owner; the suite compares ACL
# owners and grantees with the ids configured here.
MOTO_OWNER_ID = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a"
MOTO_OWNER_NAME = "webfile"


@dataclass(frozen=True, slots=True)
class User:
    """One s3-tests user: its section, moto account, and the keys it uses through the proxy."""

    section: str
    account: str
    proxy_key: str
    proxy_secret: str
    email: str


# Different accounts, so that what alt may do with main's buckets is decided by the store's
# ACL and policy checks rather than by being the same principal. The proxy keys are those of
# s3tests.conf.SAMPLE; moto makes up its own.
USERS = (
    User(
        "main",
        "123456789012",
        "0555b35654ad1656d804",
        "h7GhxuBLTrlhVUyxSPUKUV8r/2EI4ngqJxD7iBdBYLhwluN30JaT3Q==",
        "tester@ceph.com",
    ),
    User(
        "alt",
        "222222222222",
        "NOPQRSTUVWXYZABCDEFG",
        "nopqrstuvwxyzabcdefghijklmnabcdefghijklm",
        "john.doe@example.com",
    ),
    User(
        "tenant",
        "333333333333",
        "HIJKLMNOPQRSTUVWXYZA",
        "opqrstuvwxyzabcdefghijklmnopqrstuvwxyzab",
        "tenanteduser@example.com",
    ),
)
_ADMIN_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


class MotoAccounts(MotoBackend):
    """moto with signature checks and one admin IAM user per s3-tests user, each in its own
    account (moto takes the account of IAM calls from `x-moto-account-id`, and the account of
    any later request from the key that signed it). `access_key_id` is main's."""

    def __init__(self, log_dir: Path, name: str) -> None:
        super().__init__(log_dir, auth=True, name=name)
        self.keys: dict[str, tuple[str, str]] = {}

    def _env(self) -> dict[str, str]:
        env = super()._env()
        # CreateUser, CreateAccessKey and PutUserPolicy for each user; every later request is
        # signature-checked.
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(3 * len(USERS))
        return env

    def _create_admin_key(self) -> None:
        for user in USERS:
            iam = boto3.session.Session(
                aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap", region_name=REGION
            ).client(
                "iam",
                endpoint_url=self.endpoint,
                config=Config(retries={"total_max_attempts": 1}, connect_timeout=5),
            )

            def in_account(request: object, account: str = user.account, **_: object) -> None:
                request.headers["x-moto-account-id"] = account  # type: ignore[attr-defined]

            iam.meta.events.register("before-sign.iam", in_account)
            name = f"s3tests-{user.section}"
            iam.create_user(UserName=name)
            key = iam.create_access_key(UserName=name)["AccessKey"]
            iam.put_user_policy(UserName=name, PolicyName="admin", PolicyDocument=_ADMIN_POLICY)
            self.keys[user.section] = (key["AccessKeyId"], key["SecretAccessKey"])
        self.access_key_id, self.secret_access_key = self.keys["main"]


def s3tests_conf(endpoint: str, keys: Mapping[str, tuple[str, str]]) -> str:
    """An s3tests.conf for `endpoint`, with `keys` as each user's (access key, secret)."""
    host, _, port = endpoint.removeprefix("http://").partition(":")
    sections = [
        "[DEFAULT]",
        f"host = {host}",
        f"port = {port}",
        "is_secure = False",
        "ssl_verify = False",
        "",
        "[fixtures]",
        "bucket prefix = s3t-{random}-",
        "",
    ]
    for user in USERS:
        key, secret = keys[user.section]
        sections += [
            f"[s3 {user.section}]",
            f"display_name = {MOTO_OWNER_NAME}",
            f"user_id = {MOTO_OWNER_ID}",
            f"email = {user.email}",
            f"access_key = {key}",
            f"secret_key = {secret}",
            "api_name = ",
            *(["tenant = testx"] if user.section == "tenant" else []),
            "",
        ]
    # IAM users the suite's IAM and STS tests want; neither store has them, so those fail.
    for section, key in (("iam", "ABCDEFGHIJKLMNOPQRST"), ("iam root", "AAAAAAAAAAAAAAAAAAAA")):
        sections += [f"[{section}]", f"access_key = {key}", f"secret_key = {key.lower()}"]
        sections += ["user_id = 0123456789", "email = iam@example.com", "display_name = iam", ""]
    sections += ["[iam alt root]", "access_key = BBBBBBBBBBBBBBBBBBBB"]
    sections += ["secret_key = bbbbbbbbbbbbbbbbbbbb", "user_id = 9876543210", "email = alt@x.com"]
    return "\n".join(sections) + "\n"


def proxy_config(backend: MotoBackend) -> str:
    clients = "".join(
        f"""
          - name: {user.section}
            access_key_id: "{user.proxy_key}"
            secret_access_key: "{user.proxy_secret}"
        """
        for user in USERS
    )
    return f"""
        backends:
          moto:
            endpoint: "{backend.endpoint}"
            access_key_id: "{backend.access_key_id}"
            secret_access_key: "{backend.secret_access_key}"
        clients:{clients}
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
    """The suite's pytest command: `tests` by node id, or every file less the markers above."""
    selection = (
        [f"s3tests/functional/{name}" for name in tests]
        if tests is not None
        else [*SUITE_FILES, "-m", " and ".join(f"not {m}" for m in DESELECTED_MARKERS)]
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
    """Run the suite (or `tests`) on both targets at once; each target's outcomes."""
    with contextlib.ExitStack() as stack:
        running: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        for name in TARGETS:
            conf = stack.enter_context(target(name, workdir / name))
            junit = workdir / name / "junit.xml"
            env = isolated_aws_env(os.environ, workdir)
            env.update(
                S3TEST_CONF=conf,
                PYTHONPATH=str(HERE),
                PYTHONDONTWRITEBYTECODE="1",
                AWS_DEFAULT_REGION=REGION,
            )
            with (workdir / name / "suite.log").open("wb") as log:
                running[name] = (
                    subprocess.Popen(
                        suite_argv(junit, tests),
                        cwd=SUITE,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    ),
                    junit,
                )
        deadline = time.monotonic() + timeout
        results: dict[str, dict[str, str]] = {}
        for name, (proc, junit) in running.items():
            try:
                proc.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
            if not junit.exists():
                log = (workdir / name / "suite.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"s3-tests on {name} wrote no results:\n{log}")
            results[name] = outcomes_from_junit(junit)
        return results


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
