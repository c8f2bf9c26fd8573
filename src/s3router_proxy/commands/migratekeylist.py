"""The keys of `lakefs-s3-router migrate --keys FILE`, streamed: an S3 Inventory manifest and
its data files, or a Batch Operations CSV (formats: `migratekeys`).

FILE is a manifest when it starts with `{`. Its data files are read one after the other: for a
manifest on a store, the objects of the manifest's bucket its `files` name (the inventory's
destination bucket, where S3 writes both); for a local manifest, that key below the manifest's
folder or any folder above it (as `aws s3 sync` of the inventory bucket lays them out), else a
file of the same name next to the manifest.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator, Mapping
from pathlib import PurePosixPath

from ..backends.backend import Backend
from .migratefiles import FileLocation, StoreFile, pieces
from .migratekeys import (
    MAX_MANIFEST,
    InventoryColumns,
    RecordReader,
    batch_key,
    inventory_key,
    parse_manifest,
)

_BOM = b"\xef\xbb\xbf"


async def listed_keys(backends: Mapping[str, Backend], where: FileLocation) -> AsyncIterator[str]:
    """Every key the list at `where` names, in its order; ValueError naming the file for a
    list that is not one of the formats."""
    reading = where
    content = pieces(backends, where)
    try:
        first = await anext(content, b"")
        if first.removeprefix(_BOM).lstrip()[:1] != b"{":
            async for record in _records(_chained(first, content)):
                yield batch_key(record)
            return
        manifest = parse_manifest(await _whole(first, content))
        columns = InventoryColumns.of(manifest)
        for file_key in manifest.files:
            reading = data_file(where, file_key)
            async for record in _records(pieces(backends, reading)):
                key = inventory_key(record, columns)
                if key is not None:
                    yield key
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"key list {reading}: {exc}") from None
    finally:
        await content.aclose()


def data_file(manifest: FileLocation, file_key: str) -> FileLocation:
    """Where an inventory data file named `file_key` by `manifest` is (see the module doc)."""
    if isinstance(manifest, StoreFile):
        return manifest.sibling(file_key)
    folder = manifest.parent
    for base in (folder, *folder.parents):
        if (base / file_key).is_file():
            return base / file_key
    return folder / PurePosixPath(file_key).name


async def _records(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[str]]:
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
    reader = RecordReader()
    async for chunk in chunks:
        for record in reader.feed(decoder.decode(chunk)):
            yield record
    for record in reader.feed(decoder.decode(b"", final=True)) + reader.close():
        yield record


async def _chained(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for piece in rest:
        yield piece


async def _whole(first: bytes, rest: AsyncIterator[bytes]) -> bytes:
    data = bytearray(first)
    async for piece in rest:
        data += piece
        if len(data) > MAX_MANIFEST:
            raise ValueError(f"larger than {MAX_MANIFEST} bytes: not a manifest.json")
    return bytes(data)
