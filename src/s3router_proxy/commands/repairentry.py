"""One journal entry made right: the mirror's object equal to the target's again (copied
across, streamed), or deleted from the mirror when the target no longer has it."""

from __future__ import annotations

from dataclasses import dataclass

from ..backends.backend import Backend
from ..backends.call import backend_exchange
from ..backends.transfer import StoredObject
from ..multi.copyacross import copy_object_across
from ..multi.journal import Divergence
from ..s3.errors import S3Error

REPAIRED = frozenset({"copied", "deleted", "in-sync"})


@dataclass(frozen=True)
class Outcome:
    entry: Divergence
    action: str  # copied, deleted, in-sync, failed, would-copy, would-delete, claimed
    reason: str = ""


async def _head(backend: Backend, bucket: str, key: str) -> tuple[int, str, str]:
    """(status, Content-Length, ETag) of an object."""
    status, headers, _ = await backend_exchange(backend, "HEAD", bucket, key, [])
    return status, headers.get("Content-Length", ""), headers.get("ETag", "")


async def repair_one(entry: Divergence, backends: dict[str, Backend], dry_run: bool) -> Outcome:
    primary, mirror = backends.get(entry.primary), backends.get(entry.mirror)
    if primary is None or mirror is None:
        return Outcome(entry, "failed", "backend no longer configured")
    mirror_bucket, mirror_key = entry.on_mirror
    try:
        status, size, etag = await _head(primary, entry.bucket, entry.key)
        if status == 404:
            if dry_run:
                return Outcome(entry, "would-delete")
            gone, _, _ = await backend_exchange(mirror, "DELETE", mirror_bucket, mirror_key, [])
            if gone >= 300 and gone != 404:
                return Outcome(entry, "failed", f"deleting on the mirror: status {gone}")
            return Outcome(entry, "deleted")
        if status != 200:
            return Outcome(entry, "failed", f"reading the target: status {status}")
        theirs = await _head(mirror, mirror_bucket, mirror_key)
        if theirs == (200, size, etag):
            return Outcome(entry, "in-sync")
        if dry_run:
            return Outcome(entry, "would-copy")
        await copy_object_across(
            StoredObject(primary, entry.bucket, entry.key),
            StoredObject(mirror, mirror_bucket, mirror_key),
            {},
        )
        return Outcome(entry, "copied")
    except S3Error as error:
        return Outcome(entry, "failed", f"{error.code}: {error.message}")
    except (OSError, TimeoutError) as exc:
        return Outcome(entry, "failed", type(exc).__name__)
