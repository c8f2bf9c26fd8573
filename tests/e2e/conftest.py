"""Fixtures for the end-to-end tests: real moto_server backends and the proxy, as processes.

The backends are session-scoped and shared: tests use `unique_bucket_name()` and mark
`request_count()` before they act instead of assuming an empty server. Every test here runs with
no AWS_* settings, config files or IMDS from the machine, so boto3 shows its true defaults.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from harness import MotoBackend, ProxyProcess, StartProxy, isolated_aws_env, write_config


@pytest.fixture(scope="session", autouse=True)
def _isolated_aws_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    clean = isolated_aws_env(os.environ, tmp_path_factory.mktemp("aws-home"))
    with pytest.MonkeyPatch.context() as patch:
        for name in set(os.environ) - set(clean):
            patch.delenv(name)
        for name, value in clean.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(scope="session")
def moto_plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoBackend]:
    """moto_server without IAM checks: any key and any signature is accepted."""
    with MotoBackend(tmp_path_factory.mktemp("moto-plain")) as backend:
        yield backend


@pytest.fixture(scope="session")
def moto_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoBackend]:
    """moto_server that checks every request's SigV4 signature against its one admin key."""
    with MotoBackend(tmp_path_factory.mktemp("moto-auth"), auth=True) as backend:
        yield backend


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def start_proxy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StartProxy]:
    """Start the proxy: `start_proxy(config, env=None, **ProxyProcess options)`.

    `config` is a path, or YAML text written to a file first. Every proxy started is stopped at
    teardown, and its log's tail is printed if the test failed.
    """
    started: list[ProxyProcess] = []

    def start(
        config: Path | str, *, env: Mapping[str, str | None] | None = None, **options: object
    ) -> ProxyProcess:
        name = f"proxy-{len(started)}"
        path = (
            config if isinstance(config, Path) else write_config(tmp_path, config, f"{name}.yaml")
        )
        proxy = ProxyProcess(path, tmp_path / name, env=env, name=name, **options)  # type: ignore[arg-type]
        started.append(proxy)
        return proxy.start()

    yield start
    failed = request.node.stash.get(_CALL_FAILED, False)
    for proxy in started:
        proxy.stop()
        if failed:
            print(f"--- {proxy.name} log tail ({proxy.log_path}) ---\n{proxy.log_tail(80)}")
