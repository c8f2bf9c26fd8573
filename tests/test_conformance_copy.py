"""tests/conformance/s3-tests is Ceph's s3-tests exactly as pinned: every file the manifest
lists, with the manifest's sha256, and no other. A local edit would make the conformance
numbers those of a suite nobody else runs."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

CONFORMANCE = Path(__file__).resolve().parent / "conformance"
COPY = CONFORMANCE / "s3-tests"
MANIFEST = CONFORMANCE / "s3-tests.sha256"
# What running the suite leaves behind, never part of the copy.
_RUN_LEFTOVERS = ("__pycache__", ".pytest_cache")


def manifest() -> tuple[str, dict[str, str]]:
    """(the upstream commit in its first line, {relative path: sha256})."""
    first, *rows = MANIFEST.read_text(encoding="utf-8").splitlines()
    commit = re.fullmatch(r"# ceph/s3-tests ([0-9a-f]{40}): .*", first)
    assert commit, f"{MANIFEST.name} does not start with the upstream commit: {first!r}"
    digests = {}
    for row in rows:
        digest, _, path = row.partition("  ")
        digests[path] = digest
    return commit.group(1), digests


def test_the_copy_is_the_pinned_upstream_commit_unmodified() -> None:
    commit, digests = manifest()
    assert len(digests) > 10 and "s3tests/functional/test_s3.py" in digests
    present = {
        path.relative_to(COPY).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in COPY.rglob("*")
        if path.is_file() and not set(path.relative_to(COPY).parts) & set(_RUN_LEFTOVERS)
    }
    changed = sorted(p for p in digests.keys() & present.keys() if digests[p] != present[p])
    assert not changed, f"changed from ceph/s3-tests {commit}: {changed}"
    assert sorted(digests.keys() - present.keys()) == [], "missing from the copy"
    assert sorted(present.keys() - digests.keys()) == [], "not in the manifest"
    assert commit in (COPY / "PINNED.txt").read_text(encoding="utf-8")
    assert "MIT" in (COPY / "LICENSE").read_text(encoding="utf-8")
