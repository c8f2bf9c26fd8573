"""Sealed upload ids: what goes in comes out, for the bucket and key it was issued for only."""

from __future__ import annotations

import pytest

from s3router_proxy.routing.uploadid import UploadPin, unwrap, wrap, wrap_in_response
from s3router_proxy.s3.errors import S3Error
from s3router_proxy.s3.xml import child_text, parse_xml

SECRET = b"0123456789abcdef-secret"


@pytest.mark.parametrize(
    "pin",
    [
        UploadPin("main", "bucket", "k/ey", "backend-id"),
        UploadPin(
            "main",
            "b",
            "k",
            "id",
            (("copy", "mirror-id", "b", "k"), ("far", "x", "other", "main/k")),
            "best_effort",
        ),
    ],
)
def test_round_trip_and_stability(pin: UploadPin) -> None:
    sealed = wrap(SECRET, pin, bucket="logical", key="key")
    assert unwrap((SECRET,), sealed, bucket="logical", key="key") == pin
    assert wrap(SECRET, pin, bucket="logical", key="key") == sealed  # one upload, one id
    assert "backend-id" not in sealed and "mirror-id" not in sealed and "main" not in sealed


def test_bound_to_its_bucket_key_and_secret() -> None:
    sealed = wrap(
        SECRET, UploadPin("main", "b", "k", "id", (("copy", "m", "b", "k"),)), bucket="x", key="y"
    )
    for bucket, key, secret in (("x", "z", SECRET), ("w", "y", SECRET), ("x", "y", b"other" * 4)):
        with pytest.raises(S3Error) as caught:
            unwrap((secret,), sealed, bucket=bucket, key=key)
        assert caught.value.code == "NoSuchUpload"
    with pytest.raises(S3Error):
        unwrap(
            (SECRET,),
            sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1],
            bucket="x",
            key="y",
        )


def test_wrap_in_response_seals_the_answers_id_where_the_pin_says() -> None:
    mirrors = (("copy", "mirror-id", "b", "k"),)
    where = UploadPin("main", "b", "k", "", mirrors, "best_effort")
    body = (
        b'<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Bucket>b</Bucket><Key>k</Key><UploadId>backend-id</UploadId>"
        b"</InitiateMultipartUploadResult>"
    )
    out = wrap_in_response(body, SECRET, where, bucket="logical", key="key")
    sealed = child_text(parse_xml(out), "UploadId") or ""
    assert sealed != "backend-id"
    pinned = unwrap((SECRET,), sealed, bucket="logical", key="key")
    assert pinned == UploadPin("main", "b", "k", "backend-id", mirrors, "best_effort")


def test_an_id_sealed_under_a_previous_secret_opens_while_that_secret_is_accepted() -> None:
    old, new = b"the-old-secret-0123", b"the-new-secret-4567"
    pin = UploadPin("main", "b", "k", "id")
    sealed = wrap(old, pin, bucket="x", key="y")
    assert unwrap((new, old), sealed, bucket="x", key="y") == pin  # during the grace period
    assert unwrap((old, new), sealed, bucket="x", key="y") == pin  # any order
    with pytest.raises(S3Error) as caught:
        unwrap((new,), sealed, bucket="x", key="y")  # after it
    assert caught.value.code == "NoSuchUpload"
    assert wrap(new, pin, bucket="x", key="y") != sealed
