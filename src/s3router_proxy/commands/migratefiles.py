"""Files `lakefs-s3-router migrate` reads and writes besides the stores it copies between: key
lists (`--keys`) and reports (`--report`). Each is a local path or `s3://<backend>/<bucket>/<key>`,
an object on one of the config's backends, addressed with that backend's own bucket and key (no
routing: these are the operator's files, not a client's data).

Reads stream: a piece at a time, gunzipped on the way when the file starts with gzip's magic
bytes, never more than a bounded piece decompressed at once. A report is written locally and
uploaded whole (`upload_file`), a single PUT streamed from the file, every few minutes and
at the end (`ReportUpload`).
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..auth.canonical import canonical_query_string
from ..auth.sigv4 import UNSIGNED_PAYLOAD
from ..backends.backend import Backend, BackendRequest
from ..backends.call import backend_response, unreachable
from ..backends.transfer import StoredObject, backend_failure, read_answer, source_get
from ..config.storeurl import parse_store_url
from ..s3.errors import S3Error

log = logging.getLogger("s3router_proxy.migrate")
PIECE = 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class StoreFile:
    """`s3://<backend>/<bucket>/<key>`: an object on a configured backend."""

    backend: str
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.backend}/{self.bucket}/{self.key}"

    def sibling(self, key: str) -> StoreFile:
        """Another object of the same bucket (an inventory's data files sit by its manifest)."""
        return StoreFile(self.backend, self.bucket, key)


FileLocation = Path | StoreFile


def parse_file_location(text: str, backends: Mapping[str, object]) -> FileLocation:
    """A local path, or `s3://<backend>/<bucket>/<key>` on one of `backends`."""
    place = parse_store_url(text)
    if place is None:
        return Path(text)
    backend, bucket, key = place.backend, place.bucket, place.rest
    if not backend or not bucket or not key:
        raise ValueError(f"{text!r}: expected s3://<backend>/<bucket>/<key>")
    if backend not in backends:
        known = ", ".join(sorted(backends)) or "none"
        raise ValueError(f"{text!r}: no backend {backend!r} in the config (backends: {known})")
    return StoreFile(backend, bucket, key)


async def raw_pieces(backends: Mapping[str, Backend], where: FileLocation) -> AsyncIterator[bytes]:
    """The bytes of a file or an object, a piece at a time."""
    if isinstance(where, Path):
        try:
            with where.open("rb") as stream:
                while piece := stream.read(PIECE):
                    yield piece
        except OSError as exc:
            raise S3Error("NoSuchKey", f"{where}: {exc.strerror or exc}", status=404) from None
        return
    backend = backends[where.backend]
    response = await source_get(StoredObject(backend, where.bucket, where.key), {})
    try:
        while True:
            try:
                piece = await response.next_piece()
            except (TimeoutError, OSError) as exc:
                raise unreachable(backend, exc) from None
            if not piece:
                return
            yield piece
    finally:
        response.release()


async def pieces(backends: Mapping[str, Backend], where: FileLocation) -> AsyncIterator[bytes]:
    """The content of a file or an object, gunzipped if it is gzip data."""
    raw = raw_pieces(backends, where)
    try:
        first = await anext(raw, b"")
        if not first.startswith(GZIP_MAGIC):
            if first:
                yield first
            async for piece in raw:
                yield piece
            return
        inflate = _gunzip()
        pending: bytes | None = first
        while pending is not None:
            data = pending
            while data:
                out = _inflated(inflate, data, where)
                if out:
                    yield out
                if inflate.eof:  # the rest, if any, is the next gzip member
                    data = inflate.unused_data
                    inflate = _gunzip() if data else inflate
                else:
                    data = inflate.unconsumed_tail
            pending = await anext(raw, None)
        if not inflate.eof:
            raise S3Error("InvalidArgument", f"{where}: the gzip data ends early", status=400)
    finally:
        await raw.aclose()


def _gunzip() -> zlib._Decompress:
    return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)


def _inflated(inflate: zlib._Decompress, data: bytes, where: FileLocation) -> bytes:
    try:
        return inflate.decompress(data, PIECE)
    except zlib.error as exc:
        raise S3Error(
            "InvalidArgument", f"{where}: not valid gzip data: {exc}", status=400
        ) from None


async def upload_file(backends: Mapping[str, Backend], path: Path, where: StoreFile) -> None:
    """PUT a local file's bytes, as far as they are written now, to `where`: one PUT streamed
    from the file (so up to 5 GiB). The file may grow meanwhile (a report being written): the
    bytes past the size it had when the upload began wait for the next one."""
    size = path.stat().st_size

    async def body() -> AsyncIterator[bytes]:
        with path.open("rb") as stream:
            left = size
            while left and (piece := stream.read(min(PIECE, left))):
                left -= len(piece)
                yield piece

    backend = backends[where.backend]
    headers = {"content-length": str(size), "content-type": "text/csv"}
    request = BackendRequest(
        "PUT", where.bucket, where.key, canonical_query_string([]), headers, UNSIGNED_PAYLOAD
    )
    try:
        response = await backend_response(backend, request, body() if size else b"")
        try:
            answer = await read_answer(response)
        finally:
            response.release()
    except (TimeoutError, OSError) as exc:
        raise unreachable(backend, exc) from None
    if response.status != 200:
        raise backend_failure(response.status, answer, f"uploading the report to {where}")


class ReportUpload:
    """A report written to a local file and kept at `target` on a store: uploaded every
    `interval` seconds while the run goes on, so a pod that is killed leaves what it did, and
    once more at the end."""

    def __init__(
        self, backends: Mapping[str, Backend], path: Path, target: StoreFile, interval: float
    ) -> None:
        self.backends = backends
        self.path = path
        self.target = target
        self.interval = interval

    async def every_interval(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await upload_file(self.backends, self.path, self.target)
            except S3Error as error:  # the next one, or the last, may get through
                log.warning("uploading the report to %s: %s", self.target, error.message)

    async def last(self) -> None:
        """The whole report, uploaded; the local copy is removed once the store has it."""
        await upload_file(self.backends, self.path, self.target)
        self.path.unlink(missing_ok=True)
