"""The mirror journal kept as objects on a backend (`router.mirror_journal: s3://B/BUCKET/P/`).

One small JSON object per miss, named `P/<UTC time to the microsecond>-<random>.json`, so a
listing is oldest first and replicas writing at the same instant never collide. A repair takes
an entry by creating `<entry>.claim` with `If-None-Match: *` (a conditional PutObject: AWS S3,
MinIO and moto refuse it with 412 when the object exists). The claim says who holds it and
until when; an expired one is taken over with `If-Match: <its ETag>`, so of two repairs that
find it expired only one wins. The claim is read back before it counts, which also catches a
store whose check-then-write is not atomic in the rare case where both writes land.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ..backends.backend import Backend
from ..backends.call import backend_exchange
from ..config.journal import JournalPlace
from ..s3.xml import child_text, children, parse_xml

ENTRY_SUFFIX = ".json"
CLAIM_SUFFIX = ".claim"
CLAIM_LEASE = 900.0  # seconds a repair holds an entry; longer than one object's copy
_PAGE = 1000


class JournalError(Exception):
    """A journal object could not be written, read or listed; the message names no secret."""


def entry_key(prefix: str, now_ns: int, token: str) -> str:
    """The key of an entry written at `now_ns` (epoch nanoseconds): sorts by time, then token."""
    seconds, rest = divmod(now_ns, 1_000_000_000)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(seconds))
    return f"{prefix}{stamp}.{rest // 1000:06d}Z-{token}{ENTRY_SUFFIX}"


def new_entry_key(prefix: str) -> str:
    return entry_key(prefix, time.time_ns(), secrets.token_hex(8))


def claim_key(entry: str) -> str:
    return entry + CLAIM_SUFFIX


def is_entry_key(prefix: str, key: str) -> bool:
    """An entry directly under `prefix` (not a claim, not something in a deeper folder)."""
    name = key[len(prefix) :] if key.startswith(prefix) else ""
    return name.endswith(ENTRY_SUFFIX) and "/" not in name


@dataclass(frozen=True)
class Claim:
    holder: str
    expires: float  # epoch seconds

    def live(self, now: float) -> bool:
        return now < self.expires


def claim_body(claim: Claim) -> bytes:
    return json.dumps({"holder": claim.holder, "expires": claim.expires}).encode()


def claim_of(body: bytes) -> Claim | None:
    """The claim an object holds; None when it is not one (which counts as expired)."""
    try:
        fields = json.loads(body)
        return Claim(str(fields["holder"]), float(fields["expires"]))
    except (ValueError, TypeError, KeyError):
        return None


def entry_body(fields: Mapping[str, str]) -> bytes:
    return json.dumps(dict(fields), ensure_ascii=False).encode("utf-8", "surrogatepass")


def entry_fields(body: bytes) -> dict[str, str]:
    """An entry's fields; raises JournalError when the object is not one."""
    try:
        fields = json.loads(body.decode("utf-8", "surrogatepass"))
        if not isinstance(fields, dict):
            raise TypeError
        return {str(k): str(v) for k, v in fields.items()}
    except (ValueError, TypeError):
        raise JournalError("not a journal entry") from None


async def put_entry(backend: Backend, place: JournalPlace, key: str, body: bytes) -> None:
    status, _, _ = await backend_exchange(
        backend, "PUT", place.bucket, key, [], body=body, headers=_JSON
    )
    if status != 200:
        raise JournalError(f"writing {key} to {place}: status {status}")


async def listed(backend: Backend, place: JournalPlace) -> tuple[list[str], set[str]]:
    """(entries oldest first, claims) under the journal's prefix."""
    keys: list[str] = []
    token = ""
    while True:
        query = [("list-type", "2"), ("max-keys", str(_PAGE)), ("prefix", place.prefix)]
        if token:
            query.append(("continuation-token", token))
        status, _, body = await backend_exchange(backend, "GET", place.bucket, "", query)
        if status != 200:
            raise JournalError(f"listing {place}: status {status}")
        root = parse_xml(body)
        keys.extend(child_text(item, "Key") or "" for item in children(root, "Contents"))
        token = child_text(root, "NextContinuationToken") or ""
        if child_text(root, "IsTruncated") != "true" or not token:
            break
    entries = sorted(k for k in keys if is_entry_key(place.prefix, k))
    claims = {k for k in keys if k.endswith(CLAIM_SUFFIX)}
    return entries, claims


async def fetched(backend: Backend, place: JournalPlace, key: str) -> tuple[bytes, str] | None:
    """(body, ETag) of a journal object; None when it is gone."""
    status, headers, body = await backend_exchange(backend, "GET", place.bucket, key, [])
    if status == 404:
        return None
    if status != 200:
        raise JournalError(f"reading {key} from {place}: status {status}")
    return body, headers.get("ETag", "")


async def deleted(backend: Backend, place: JournalPlace, key: str) -> None:
    status, _, _ = await backend_exchange(backend, "DELETE", place.bucket, key, [])
    if status >= 300 and status != 404:
        raise JournalError(f"deleting {key} from {place}: status {status}")


async def take_claim(
    backend: Backend, place: JournalPlace, entry: str, holder: str, now: float
) -> bool:
    """Whether `holder` now holds `entry`: a new claim, or an expired one taken over."""
    key = claim_key(entry)
    body = claim_body(Claim(holder, now + CLAIM_LEASE))
    condition = {"if-none-match": "*"}
    status, _, _ = await backend_exchange(
        backend, "PUT", place.bucket, key, [], body=body, headers={**_JSON, **condition}
    )
    if status in (409, 412):  # held, or being written by another repair right now
        current = await fetched(backend, place, key)
        if current is None:
            return False  # released meanwhile: the entry is done or free for the next run
        claim = claim_of(current[0])
        if claim is not None and claim.live(now):
            return False
        condition = {"if-match": current[1]}
        status, _, _ = await backend_exchange(
            backend, "PUT", place.bucket, key, [], body=body, headers={**_JSON, **condition}
        )
        if status in (404, 409, 412):
            return False
    if status != 200:
        raise JournalError(f"claiming {entry} in {place}: status {status}")
    held = await fetched(backend, place, key)
    return held is not None and (claim_of(held[0]) or Claim("", 0)).holder == holder


_JSON = {"content-type": "application/json"}
