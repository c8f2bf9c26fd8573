"""A fixed subset of Ceph's s3-tests (subset.txt), run directly against moto and through the
proxy: every outcome must be the one expected.json recorded for the whole suite. A test that
starts passing through the proxy is a change too: record it on purpose
(docs/conformance.md says how)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from s3tests_runner import (
    EXPECTED,
    SUITE,
    TARGETS,
    load_expected,
    mismatches,
    run_targets,
    subset_names,
)

# The subset takes about two minutes here; this is the bound past which something hangs.
_RUN_TIMEOUT = 1200.0


@pytest.fixture(scope="module")
def subset() -> list[str]:
    names = subset_names()
    expected = load_expected()
    assert len(names) == len(set(names)), "subset.txt names a test twice"
    unrecorded = [name for name in names if name not in expected]
    assert not unrecorded, f"not in expected.json (record the whole suite): {unrecorded}"
    return names


def test_the_outcomes_were_recorded_with_this_copy_of_the_suite() -> None:
    pinned = re.search(r"\b[0-9a-f]{40}\b", (SUITE / "PINNED.txt").read_text(encoding="utf-8"))
    assert pinned, "PINNED.txt names no commit"
    recorded = json.loads(EXPECTED.read_text(encoding="utf-8"))["suite"]
    assert recorded == f"ceph/s3-tests {pinned.group(0)}", "re-record: scripts/s3-tests.sh --record"


def test_the_subset_covers_both_outcomes_on_both_targets(subset: list[str]) -> None:
    """A subset of tests that all pass (or all fail) could not tell the proxy from moto."""
    expected = load_expected()
    for where in TARGETS:
        outcomes = {expected[name][where] for name in subset}
        assert {"passed", "failed"} <= outcomes, (where, outcomes)
    assert any(expected[n]["direct"] != expected[n]["proxy"] for n in subset)


def test_each_outcome_is_the_recorded_one(subset: list[str], tmp_path: Path) -> None:
    actual = run_targets(tmp_path, subset, timeout=_RUN_TIMEOUT)
    changed = mismatches(load_expected(), actual, subset)
    assert not changed, (
        f"{len(changed)} s3-tests outcomes differ from tests/conformance/expected.json "
        f"(logs in {tmp_path}):\n" + "\n".join(changed)
    )
