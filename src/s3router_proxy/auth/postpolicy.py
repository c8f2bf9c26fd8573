"""A browser form upload's policy: who signed it, and whether the form keeps to it.

The `policy` field is a base64 JSON document with an `expiration` and `conditions`; the form
signs that base64 text, with SigV4 (`x-amz-algorithm`, `x-amz-credential`, `x-amz-date`,
`x-amz-signature`: hex HMAC-SHA256 under the day's signing key) or SigV2 (`AWSAccessKeyId`,
`signature`: base64 HMAC-SHA1 of the secret). As S3 does, every condition must hold and every
field but the signature's own must be named by a condition. Field names are compared without
case (the form's were lower-cased when read), operators and document keys with it. Pure
functions of the fields; the caller looks the key id up and supplies the time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from dataclasses import dataclass
from datetime import datetime

from ..s3.errors import S3Error
from .requesttime import amz_epoch
from .signingkey import ALGORITHM, cached_key, signature
from .sigv2 import sign_v2

# Fields no condition has to name: the signature's own and the file.
_UNCONDITIONED = frozenset({"policy", "x-amz-signature", "signature", "awsaccesskeyid", "file"})
# Fields no condition has to name either: those S3 ignores, and checksums of the file.
_UNCONDITIONED_PREFIXES = ("x-ignore-", "x-amz-checksum-")
MAX_POLICY_CONDITIONS = 256


@dataclass(frozen=True, slots=True)
class PostSigner:
    """Who signed a form and how: `version` 4 (with its credential scope) or 2."""

    version: int
    access_key_id: str
    signature: str
    security_token: str | None
    date: str = ""
    region: str = ""
    amz_date: str = ""


@dataclass(frozen=True, slots=True)
class PostPolicy:
    """A decoded policy: when it expires (epoch seconds) and its conditions as written."""

    expiration: float
    conditions: tuple[object, ...]


def invalid_policy(message: str) -> S3Error:
    return S3Error("InvalidPolicyDocument", f"Invalid Policy: {message}")


def not_allowed(message: str) -> S3Error:
    return S3Error("AccessDenied", f"Invalid according to Policy: {message}")


def _required(fields: dict[str, str], name: str) -> str:
    value = fields.get(name)
    if value is None:
        raise S3Error("InvalidArgument", f"Bucket POST must contain a field named '{name}'.")
    return value


def post_signer(fields: dict[str, str]) -> PostSigner | None:
    """Who signed the form; None for a form without a policy (an anonymous upload)."""
    if "policy" not in fields:
        if fields.keys() & {"x-amz-signature", "signature", "awsaccesskeyid"}:
            raise S3Error("InvalidArgument", "Bucket POST must contain a field named 'policy'.")
        return None
    token = fields.get("x-amz-security-token")
    if "x-amz-algorithm" not in fields and "awsaccesskeyid" in fields:
        return PostSigner(2, fields["awsaccesskeyid"], _required(fields, "signature"), token)
    algorithm = _required(fields, "x-amz-algorithm")
    if algorithm != ALGORITHM:
        raise S3Error("InvalidArgument", f"Unsupported x-amz-algorithm {algorithm!r}.")
    credential = _required(fields, "x-amz-credential")
    amz_date = _required(fields, "x-amz-date")
    sig = _required(fields, "x-amz-signature")
    parts = credential.split("/")
    if amz_epoch(amz_date) is None:
        raise S3Error("InvalidArgument", "x-amz-date must be yyyyMMdd'T'HHmmss'Z'.")
    if len(parts) != 5 or parts[3] != "s3" or parts[4] != "aws4_request" or not parts[0]:
        raise S3Error("InvalidArgument", "x-amz-credential is not KEY/DATE/REGION/s3/aws4_request.")
    if parts[1] != amz_date[:8]:
        raise S3Error("InvalidArgument", "x-amz-credential's date is not x-amz-date's day.")
    return PostSigner(4, parts[0], sig, token, parts[1], parts[2], amz_date)


def verify_post_signature(signer: PostSigner, policy_b64: str, secret: str) -> None:
    """The form's signature is the policy's, signed with `secret`, or SignatureDoesNotMatch."""
    if signer.version == 4:
        key = cached_key(secret, signer.date, signer.region, "s3")
        expected = signature(key, policy_b64)
        provided = signer.signature.lower()
    else:
        expected = sign_v2(secret, policy_b64)
        provided = signer.signature
    if not hmac.compare_digest(expected.encode("ascii"), provided.encode("utf-8", "replace")):
        raise S3Error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
        )


def parse_policy(policy_b64: str) -> PostPolicy:
    """The base64 JSON policy, its shape checked (InvalidPolicyDocument otherwise)."""
    try:
        document = json.loads(base64.b64decode(policy_b64, validate=True))
    except (binascii.Error, ValueError):
        raise invalid_policy("Invalid JSON.") from None
    if not isinstance(document, dict):
        raise invalid_policy("Invalid JSON.")
    expiration = document.get("expiration")
    if not isinstance(expiration, str):
        raise invalid_policy("Policy missing expiration.")
    conditions = document.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        raise invalid_policy("Policy missing conditions.")
    if len(conditions) > MAX_POLICY_CONDITIONS:
        raise invalid_policy("Too many conditions.")
    return PostPolicy(_expiration(expiration), tuple(conditions))


def _expiration(value: str) -> float:
    """An RFC 3339 / ISO 8601 UTC time, as S3 writes and reads them."""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid_policy(f"Invalid 'expiration' value: '{value}'") from None
    if when.tzinfo is None or "T" not in value:
        raise invalid_policy(f"Invalid 'expiration' value: '{value}'")
    return when.timestamp()


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition as S3 reads it: `op` is eq, starts-with or content-length-range."""

    op: str
    field: str
    value: str = ""
    low: int = 0
    high: int = 0


def _condition(raw: object) -> Condition:
    if isinstance(raw, dict) and len(raw) == 1:
        ((name, value),) = raw.items()
        if isinstance(value, str):
            return Condition("eq", name.lower(), value)
    elif isinstance(raw, list) and len(raw) == 3 and isinstance(raw[0], str):
        op = raw[0].lower()  # S3 reads operators without case, document keys with it
        if op == "content-length-range":
            low, high = raw[1], raw[2]
            if isinstance(low, int) and isinstance(high, int) and 0 <= low <= high:
                return Condition(op, "", low=low, high=high)
        elif (
            op in ("eq", "starts-with")
            and isinstance(raw[1], str)
            and isinstance(raw[2], str)
            and raw[1].startswith("$")
            and len(raw[1]) > 1
        ):
            return Condition(op, raw[1][1:].lower(), raw[2])
    raise invalid_policy(f"Invalid Condition: {json.dumps(raw)[:200]}")


def _holds(condition: Condition, value: str) -> bool:
    if condition.op == "eq":
        return value == condition.value
    if condition.field == "content-type":  # a list of types: each must start so
        return all(v.strip().startswith(condition.value) for v in value.split(","))
    return value.startswith(condition.value)


def check_policy(
    policy: PostPolicy, fields: dict[str, str], bucket: str, file_size: int, now: float
) -> None:
    """Every condition holds for the form (the bucket is the request's), nothing is left
    unnamed, the policy has not expired, and the file's size is in range."""
    conditions = [_condition(raw) for raw in policy.conditions]
    if now > policy.expiration:
        raise not_allowed("Policy expired.")
    if fields.get("bucket", bucket) != bucket:
        raise not_allowed(f"Policy Condition failed: the form's bucket is not {bucket!r}")
    values = {**fields, "bucket": bucket}
    named = set()
    for condition in conditions:
        if condition.op == "content-length-range":
            check_size(condition, file_size)
            continue
        named.add(condition.field)
        if not _holds(condition, values.get(condition.field, "")):
            shown = json.dumps([condition.op, "$" + condition.field, condition.value])
            raise not_allowed(f"Policy Condition failed: {shown}")
    extra = [
        name
        for name in (*fields, "bucket")
        if name not in named
        and name not in _UNCONDITIONED
        and not name.startswith(_UNCONDITIONED_PREFIXES)
    ]
    if extra:
        raise not_allowed(f"Extra input fields: {', '.join(sorted(set(extra)))}")


def check_size(condition: Condition, size: int) -> None:
    if size > condition.high:
        raise S3Error(
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size",
            details={"ProposedSize": str(size), "MaxSizeAllowed": str(condition.high)},
        )
    if size < condition.low:
        raise S3Error(
            "EntityTooSmall",
            "Your proposed upload is smaller than the minimum allowed size",
            details={"ProposedSize": str(size), "MinSizeAllowed": str(condition.low)},
        )
