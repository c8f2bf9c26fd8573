"""Requests that carry no signature, and the two ways the proxy lets them through.

An unsigned request is refused unless the `anonymous:` section lets it in; then
`anonymous.forward` says how it leaves:

- `signed` (the default): like any other request, signed with the backend's keys, for what the
  section's `allow:` grants. The proxy's grants are the only check.
- `unsigned`: as it came, its names mapped by the rules and nothing added (no Authorization,
  no x-amz-date, no payload hash, no session token), so the backend's own ACLs and bucket
  policies decide, as for a client talking to it directly. What would make the proxy send
  requests of its own with a backend's keys for it (ListBuckets over every store, a bucket
  split over stores or listed by the proxy, a copy across stores, a mirrored write) is
  refused instead: an unsigned request never borrows a key.

The two are `SigV4Auth` values told apart by identity, never by equality.
"""

from __future__ import annotations

from ..routing.explain import Explanation
from ..s3.errors import S3Error
from ..s3.operationsets import (
    KEY_LISTINGS,
    MIRRORED_OPERATIONS,
    OBJECT_LISTINGS,
    SPLIT_BUCKET_OPERATIONS,
)
from .policy import ClientPolicy
from .sigv4 import UNSIGNED_PAYLOAD, SigV4Auth


def _unsigned_auth() -> SigV4Auth:
    return SigV4Auth(
        access_key_id="",
        date="",
        region="",
        service="s3",
        signed_headers=(),
        signature="",
        amz_date="",
        payload_hash=UNSIGNED_PAYLOAD,
        presigned=False,
        expires=None,
        security_token=None,
    )


# An unsigned request the `anonymous:` grants let in, forwarded signed with the backend's keys.
ANONYMOUS = _unsigned_auth()
# An unsigned request forwarded unsigned (`anonymous: {forward: unsigned}`).
PASSED_THROUGH = _unsigned_auth()

FORWARD_MODES = ("signed", "unsigned")


def refuse_unsigned(auth: SigV4Auth, why: str) -> None:
    """AccessDenied for a request forwarded unsigned where serving it takes a backend's keys
    (`why` says what would take them): it must never borrow them."""
    if auth is PASSED_THROUGH:
        raise S3Error(
            "AccessDenied",
            f"Anonymous requests are forwarded unsigned, and {why}; sign the request.",
        )


def is_anonymous(auth: SigV4Auth) -> bool:
    """Whether `auth` is an unsigned request's, in either mode."""
    return auth is ANONYMOUS or auth is PASSED_THROUGH


def forwarded_unsigned(auth: SigV4Auth) -> bool:
    """Whether the request goes to its backend without the backend's signature."""
    return auth is PASSED_THROUGH


def explain_unsigned(
    explanation: Explanation,
    policy: ClientPolicy,
    unsigned: bool,
    without_acls: frozenset[str] = frozenset(),
) -> str:
    """What becomes of this request when it comes unsigned, as `explain` prints it.
    `without_acls` names the backends that cannot decide an unsigned request (Redis stores)."""
    e = explanation
    if not unsigned and not policy.allow:
        return "refused (no `anonymous:` grants)"
    if not policy.permits(e.operation, e.bucket, e.key, e.prefix):
        return "refused by the `anonymous:` grants"
    if e.route is None:
        return "refused: not routed"
    if not unsigned:
        return f"allowed by the `anonymous:` grants, signed with {e.route.backend}'s keys"
    if e.parts and e.operation in OBJECT_LISTINGS | SPLIT_BUCKET_OPERATIONS:
        return "refused: the bucket spans several stores, which the proxy asks with their keys"
    if e.operation in KEY_LISTINGS and policy.filters_keys(e.bucket):
        return "refused: a key-restricted grant's listing is made by the proxy, with its keys"
    rule = e.route.rule
    if rule is not None and rule.mirror and e.operation in MIRRORED_OPERATIONS:
        return "refused: the write is mirrored, which takes the mirrors' keys"
    if e.route.backend in without_acls:
        return f"refused: {e.route.backend} has no ACLs of its own to decide it"
    return f"forwarded unsigned to {e.route.backend}: its ACLs and bucket policies decide"
