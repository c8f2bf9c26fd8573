"""A time limit for each s3-tests test, loaded into the suite's own pytest with `-p`.

A request that hangs (through the proxy or not) then fails that one test, with the stack it
hung in, instead of stalling the whole run; the project adds no pytest plugin dependency for it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from types import FrameType

import pytest

LIMIT_SECONDS = int(os.environ.get("S3TESTS_TEST_TIMEOUT", "60"))


class TestTimeoutError(Exception):
    """Raised inside a test that ran past LIMIT_SECONDS."""


def _expire(signum: int, frame: FrameType | None) -> None:
    raise TestTimeoutError(f"test ran over {LIMIT_SECONDS} s")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _expire)
    signal.alarm(LIMIT_SECONDS)
    try:
        return (yield)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
