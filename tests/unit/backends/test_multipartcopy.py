"""How a large copy across backends is cut into parts. The copies themselves (parts pinned to
the source's version and ETag, aborts on failure) run end to end in tests/e2e/test_crosscopy.py."""

from __future__ import annotations

from s3router_proxy.backends.multipartcopy import part_layout
from s3router_proxy.backends.transfer import MAX_PARTS

MiB = 1024 * 1024


def test_part_layout_grows_parts_to_stay_within_10000() -> None:
    assert part_layout(0, 64 * MiB) == (64 * MiB, 1)
    assert part_layout(64 * MiB, 64 * MiB) == (64 * MiB, 1)
    assert part_layout(64 * MiB + 1, 64 * MiB) == (64 * MiB, 2)
    size, count = part_layout(5 * 1024**4, 64 * MiB)  # 5 TiB, S3's largest object
    assert count <= MAX_PARTS
    assert size * count >= 5 * 1024**4
    assert size * (count - 1) < 5 * 1024**4
