"""The operation table as data: one name per slot, refinements that look further, arguments."""

from __future__ import annotations

import pytest

from s3router_proxy.s3.operationtable import (
    ARGUMENTS,
    BUCKET,
    OBJECT,
    REFINED,
    ROWS,
    SERVICE,
    SUBRESOURCES,
    TABLE,
)

COPY = {"x-amz-copy-source": "/b/k"}


def name_of(
    method: str, level: int, sub: str, query: dict[str, str], headers: dict[str, str]
) -> str:
    entry = TABLE[(method, level, sub)]
    return entry if isinstance(entry, str) else entry(query, headers)


def test_every_slot_has_one_row_and_every_sub_resource_selects() -> None:
    assert len(TABLE) == len(ROWS)
    assert {sub for _, _, sub, _ in ROWS} - {""} == SUBRESOURCES
    assert {level for _, level, _, _ in ROWS} == {SERVICE, BUCKET, OBJECT}


@pytest.mark.parametrize(
    ("sub", "kind"),
    [
        ("analytics", "Analytics"),
        ("intelligent-tiering", "IntelligentTiering"),
        ("inventory", "Inventory"),
        ("metrics", "Metrics"),
    ],
)
def test_configuration_families_get_list_put_delete(sub: str, kind: str) -> None:
    assert name_of("GET", BUCKET, sub, {"id": "x"}, {}) == f"GetBucket{kind}Configuration"
    assert name_of("GET", BUCKET, sub, {}, {}) == f"ListBucket{kind}Configurations"
    assert name_of("PUT", BUCKET, sub, {"id": "x"}, {}) == f"PutBucket{kind}Configuration"
    assert name_of("DELETE", BUCKET, sub, {"id": "x"}, {}) == f"DeleteBucket{kind}Configuration"
    for verb in ("Get", "Put", "Delete"):
        assert ARGUMENTS[f"{verb}Bucket{kind}Configuration"] == {"id"}
    assert ARGUMENTS[f"ListBucket{kind}Configurations"] == {"continuation-token"}


def test_refinements_look_past_the_slot() -> None:
    assert name_of("PUT", OBJECT, "", {}, {}) == "PutObject"
    assert name_of("PUT", OBJECT, "", {}, COPY) == "CopyObject"
    assert name_of("PUT", OBJECT, "uploadId", {"uploadId": "u"}, COPY) == "UploadPartCopy"
    assert name_of("GET", SERVICE, "", {}, {}) == "ListBuckets"
    assert name_of("GET", SERVICE, "", {"max-directory-buckets": "1"}, {}) == (
        "ListDirectoryBuckets"
    )
    assert name_of("GET", BUCKET, "list-type", {"list-type": "2"}, {}) == "ListObjectsV2"
    assert name_of("GET", BUCKET, "list-type", {"list-type": "1"}, {}) == "ListObjects"


def test_x_id_only_picks_among_operations_identical_on_the_wire() -> None:
    lifecycle = ("GET", BUCKET, "lifecycle")
    assert name_of(*lifecycle, {}, {}) == "GetBucketLifecycleConfiguration"
    assert name_of(*lifecycle, {"x-id": "GetBucketLifecycle"}, {}) == "GetBucketLifecycle"
    assert name_of(*lifecycle, {"x-id": "DeleteBucket"}, {}) == "GetBucketLifecycleConfiguration"


def test_refined_names_are_exactly_what_refinements_return() -> None:
    returned = set()
    for entry in TABLE.values():
        if isinstance(entry, str):
            continue
        for query in ({}, {"id": "1"}, {"annotationName": "a"}, {"list-type": "2"}):
            for headers in ({}, COPY):
                returned.add(entry(query, headers))
        for hint in REFINED:
            returned.add(entry({"x-id": hint}, {}))
    assert returned == REFINED
