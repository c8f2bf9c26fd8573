"""Per-client authorization as a pure function: requests that name keys in their body."""

from __future__ import annotations

import pytest

from s3router_proxy.auth.policy import ClientPolicy, Grant, authorize, authorize_keys
from s3router_proxy.s3.errors import S3Error

DELETE = frozenset({"delete"})
CONFINED = ClientPolicy(allow=(Grant(("b",), ("team/*",), DELETE),))
GUARDED = ClientPolicy(allow=None, deny=(Grant(("b",), ("protected/*",), DELETE),))
NO_DELETES = ClientPolicy(allow=None, deny=(Grant(("b",), None, DELETE),))


def refused(call) -> str:
    with pytest.raises(S3Error) as caught:
        call()
    return caught.value.code


def test_a_key_grant_may_name_keys_in_a_delete_objects_body() -> None:
    authorize(CONFINED, "c", "DeleteObjects", "b", "")
    authorize_keys(CONFINED, "c", "DeleteObjects", "b", ["team/a", "team/b/c"])
    assert refused(lambda: authorize(CONFINED, "c", "DeleteObjects", "other", "")) == (
        "AccessDenied"
    )


@pytest.mark.parametrize("policy", [CONFINED, GUARDED])
@pytest.mark.parametrize("keys", [["team/a", "protected/x"], ["protected/x"], ["x", "team/a"]])
def test_one_key_outside_the_grants_refuses_the_whole_body(
    policy: ClientPolicy, keys: list[str]
) -> None:
    if policy is GUARDED and "protected/x" not in keys:
        authorize_keys(policy, "c", "DeleteObjects", "b", keys)
        return
    assert refused(lambda: authorize_keys(policy, "c", "DeleteObjects", "b", keys)) == (
        "AccessDenied"
    )


def test_an_empty_key_in_the_body_is_not_a_bucket_level_request() -> None:
    assert refused(lambda: authorize_keys(CONFINED, "c", "DeleteObjects", "b", [""])) == (
        "AccessDenied"
    )


def test_a_deny_without_keys_refuses_before_the_body_is_read() -> None:
    assert refused(lambda: authorize(NO_DELETES, "c", "DeleteObjects", "b", "")) == ("AccessDenied")
    authorize(NO_DELETES, "c", "DeleteObjects", "other", "")
