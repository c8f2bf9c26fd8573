"""A rule's body cap, from what the client promised: the S3 error and its details, and the
decoded (not the framed) size for aws-chunked bodies."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from s3router_proxy.body.cap import check_body_cap
from s3router_proxy.body.payload import PayloadPlan
from s3router_proxy.s3.errors import S3Error

NO_HEADERS: CIMultiDict[str] = CIMultiDict()


def refusal(plan: PayloadPlan, cap: int, headers: CIMultiDict[str] = NO_HEADERS) -> S3Error:
    with pytest.raises(S3Error) as caught:
        check_body_cap(plan, headers, cap)
    return caught.value


def test_a_body_up_to_the_cap_passes_and_one_byte_more_is_entity_too_large() -> None:
    check_body_cap(PayloadPlan(upstream_length=1024), NO_HEADERS, 1024)
    error = refusal(PayloadPlan(upstream_length=1025), 1024)
    assert (error.code, error.status) == ("EntityTooLarge", 400)
    assert error.details == {"ProposedSize": "1025", "MaxSizeAllowed": "1024"}


def test_aws_chunked_bodies_are_capped_by_their_decoded_length() -> None:
    # The framing (chunk signatures, trailers) makes the wire length larger than the object.
    check_body_cap(
        PayloadPlan(chunked=True, decoded_length=1024, upstream_length=1500), NO_HEADERS, 1024
    )
    assert refusal(PayloadPlan(chunked=True, decoded_length=1025), 1024).code == "EntityTooLarge"


def test_a_body_of_unknown_length_is_held_to_the_cap_as_it_streams() -> None:
    plan = PayloadPlan()
    check_body_cap(plan, CIMultiDict({"Transfer-Encoding": "chunked"}), 1024)
    assert plan.size_limit == 1024
    empty = PayloadPlan()
    check_body_cap(empty, NO_HEADERS, 1024)  # no body at all
    assert empty.size_limit is None
