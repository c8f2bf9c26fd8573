"""The entries one part of a split bucket contributes to a merged listing, in S3 order.

A cursor lists its part's backend bucket under the mapped prefix, a backend page at a time, maps
every name back to the client's and drops keys the part does not own (stale or foreign data
never leaks). Backends are read with ListObjectsV2 (for ListObjects and ListObjectsV2 clients)
or ListObjectVersions, always with `encoding-type=url` so any key survives XML. A delimiter is
passed to the backend; a common prefix the part owns only partly is confirmed by a probe listing.
Entries are shown when their name sorts after the position, common prefixes included (as S3 and
moto do).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..routing.bucketparts import Part
from ..routing.names import decode_url_value
from ..s3.errors import S3Error
from ..s3.xml import child_text, local_name, parse_xml
from .listparams import MAX_KEYS, ListParams

Fetch = Callable[[Part, list[tuple[str, str]]], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class ListingSource:
    """What a merged listing reads: the bucket's parts and how a backend page is fetched.

    `fetch(part, query_items)` sends GET `/{part.bucket}?{query}` to `part.backend` (items are
    decoded name/value pairs, in order; encode and sign them as usual) and returns the body of
    a 200 answer, raising `S3Error` otherwise. `page_size` bounds backend pages (None: max-keys
    + 1, at most 1000). `keep(key)` narrows what is shown to the keys a client may see.
    """

    parts: Sequence[Part]
    fetch: Fetch
    page_size: int | None = None
    keep: Callable[[str], bool] | None = None


@dataclass(slots=True)
class Entry:
    name: str  # client key, or client common prefix
    is_prefix: bool
    element: Any = None  # the backend's Contents / Version / DeleteMarker element
    version_id: str | None = None


class _PartMissing(Exception):
    pass


class PartCursor:
    """The entries one part contributes, in order, fetched a backend page at a time."""

    def __init__(
        self, part: Part, params: ListParams, source: ListingSource, page_size: int
    ) -> None:
        self.part = part
        self.keep = source.keep  # the client may see this key (None: every key the part owns)
        self.params = params
        self.fetch = source.fetch
        self.page_size = page_size
        self.pending: deque[Entry] = deque()
        self.requested = False
        self.missing = False
        self.last_prefix: str | None = None  # proxy-side common prefix last produced
        self.version_marker_sent = False
        mapping = part.mapping
        c, p, prefix, delimiter = (
            mapping.client_prefix,
            mapping.backend_prefix,
            params.prefix,
            params.delimiter,
        )
        self.collapse: str | None = None
        self.backend_delimiter = delimiter
        self.next_query: list[tuple[str, str]] | None
        if prefix.startswith(c):
            self.backend_prefix = p + prefix[len(c) :]
            gap = ""
        elif c.startswith(prefix):
            self.backend_prefix = p
            gap = c[len(prefix) :]
        else:
            self.backend_prefix = p
            self.next_query = None  # this part holds no key under the prefix
            return
        if delimiter and delimiter in gap:
            cut = gap.index(delimiter) + len(delimiter)
            self.collapse = prefix + gap[:cut]
        elif (
            delimiter and gap and any(gap.endswith(delimiter[:i]) for i in range(1, len(delimiter)))
        ):
            self.backend_delimiter = ""  # a delimiter could straddle C and the rest
        self.next_query = self._first_query()

    # queries ---------------------------------------------------------------------------------

    def _base_query(self, *, delimiter: str, prefix: str, max_keys: int) -> list[tuple[str, str]]:
        if self.params.kind == "versions":
            query = [("versions", "")]
        else:
            query = [("list-type", "2")]
            if self.params.fetch_owner:
                query.append(("fetch-owner", "true"))
        if prefix:
            query.append(("prefix", prefix))
        if delimiter:
            query.append(("delimiter", delimiter))
        query.append(("max-keys", str(max_keys)))
        query.append(("encoding-type", "url"))
        return query

    def _first_query(self) -> list[tuple[str, str]] | None:
        query = self._base_query(
            delimiter=self.backend_delimiter, prefix=self.backend_prefix, max_keys=self.page_size
        )
        after = self.params.after
        if not after:
            return query
        where, backend_after = self.part.mapping.to_backend_position(after)
        if where == "end":
            return None
        if where == "start":
            return query
        assert backend_after is not None
        if self.params.kind == "versions":
            query.append(("key-marker", backend_after))
            version = self.params.after_version
            if version is not None and self.part.owns(after):
                query.append(("version-id-marker", version))
                self.version_marker_sent = True
        else:
            query.append(("start-after", backend_after))
        return query

    # reading ---------------------------------------------------------------------------------

    async def _get(self, query: list[tuple[str, str]]) -> Any:
        self.requested = True
        try:
            body = await self.fetch(self.part, query)
        except S3Error as error:
            if error.code == "NoSuchBucket":
                self.missing = True
                raise _PartMissing from None
            raise
        root = parse_xml(body)
        if local_name(root) == "Error":
            code = child_text(root, "Code") or "InternalError"
            if code == "NoSuchBucket":
                self.missing = True
                raise _PartMissing
            raise S3Error(code, child_text(root, "Message") or None, status=502)
        return root

    async def head(self) -> Entry | None:
        try:
            while not self.pending and self.next_query is not None:
                if self.collapse is not None:
                    await self._load_collapsed()
                else:
                    await self._load_page()
        except _PartMissing:
            self.pending.clear()
            self.next_query = None
        return self.pending[0] if self.pending else None

    def pop(self) -> None:
        self.pending.popleft()

    def _after_position(self, name: str, *, is_prefix: bool) -> bool:
        params = self.params
        if not params.after:
            return True
        if params.kind != "versions" or is_prefix:
            return name > params.after
        if name != params.after:
            return name > params.after
        return self.version_marker_sent

    async def _load_collapsed(self) -> None:
        self.next_query = None
        name = self.collapse or ""
        if not self._after_position(name, is_prefix=True):
            return
        if await self._has_owned(self.backend_prefix, self.part.mapping.client_prefix):
            self.pending.append(Entry(name, True))

    async def _load_page(self) -> None:
        query = self.next_query
        assert query is not None
        root = await self._get(query)
        encoded = (child_text(root, "EncodingType") or "") == "url"

        def decode(value: str | None) -> str:
            value = value or ""
            return decode_url_value(value) if encoded else value

        objects: list[Entry] = []
        prefixes: list[Entry] = []
        last_backend = ""
        for item in root:
            name = local_name(item)
            if name in ("Contents", "Version", "DeleteMarker"):
                backend_key = decode(child_text(item, "Key"))
                last_backend = max(last_backend, backend_key)
                entry = self._object_entry(item, backend_key)
                if entry is not None:
                    objects.append(entry)
            elif name == "CommonPrefixes":
                backend_prefix = decode(child_text(item, "Prefix"))
                last_backend = max(last_backend, backend_prefix)
                entry = await self._prefix_entry(backend_prefix)
                if entry is not None:
                    prefixes.append(entry)
        # Backends may write every <Version> before every <DeleteMarker>: order by name (the
        # sort is stable, so each key keeps the backend's newest-first order).
        objects.sort(key=lambda entry: entry.name)
        self.pending.extend(_merge_sorted(objects, prefixes))
        self.next_query = self._next_query(query, root, decode, last_backend)

    def _next_query(
        self,
        query: list[tuple[str, str]],
        root: Any,
        decode: Callable[[str | None], str],
        last_backend: str,
    ) -> list[tuple[str, str]] | None:
        if (child_text(root, "IsTruncated") or "").strip().lower() != "true":
            return None
        if self.params.kind == "versions":
            marker = child_text(root, "NextKeyMarker")
            base = [(n, v) for n, v in query if n not in ("key-marker", "version-id-marker")]
            if marker is None:
                return [*base, ("key-marker", last_backend)] if last_backend else None
            base.append(("key-marker", decode(marker)))
            version = child_text(root, "NextVersionIdMarker")
            if version:
                base.append(("version-id-marker", version))
            return base
        base = [(n, v) for n, v in query if n not in ("start-after", "continuation-token")]
        token = child_text(root, "NextContinuationToken")
        if token:
            return [*base, ("continuation-token", token)]
        return [*base, ("start-after", last_backend)] if last_backend else None

    def _object_entry(self, item: Any, backend_key: str) -> Entry | None:
        key = self.part.mapping.to_client_key(backend_key)
        if key is None or not key.startswith(self.params.prefix) or not self._shows(key):
            return None
        delimiter = self.params.delimiter
        if delimiter and not self.backend_delimiter:
            rest = key[len(self.params.prefix) :]
            if delimiter in rest:
                common = key[: len(self.params.prefix) + rest.index(delimiter) + len(delimiter)]
                if common == self.last_prefix or not self._after_position(common, is_prefix=True):
                    return None
                self.last_prefix = common
                return Entry(common, True)
        if not self._after_position(key, is_prefix=False):
            return None
        version = child_text(item, "VersionId") if self.params.kind == "versions" else None
        return Entry(key, False, item, version)

    async def _prefix_entry(self, backend_prefix: str) -> Entry | None:
        common = self.part.mapping.to_client_key(backend_prefix)
        if common is None or not common.startswith(self.params.prefix):
            return None
        if not self._after_position(common, is_prefix=True):
            return None
        region = self.part.region(common)
        if region == "none":
            return None
        if (region == "some" or self.keep) and not await self._has_owned(backend_prefix, common):
            return None
        return Entry(common, True)

    def _shows(self, key: str) -> bool:
        return self.part.owns(key) and (self.keep is None or self.keep(key))

    async def _has_owned(self, backend_prefix: str, client_prefix: str) -> bool:
        """Does the part own at least one key (or version) under this prefix?"""
        region = self.part.region(client_prefix)
        if region == "none":
            return False
        every = region == "all" and self.keep is None
        query: list[tuple[str, str]] | None = self._base_query(
            delimiter="", prefix=backend_prefix, max_keys=1 if every else MAX_KEYS
        )
        while query is not None:
            root = await self._get(query)
            encoded = (child_text(root, "EncodingType") or "") == "url"

            def decode(value: str | None, encoded: bool = encoded) -> str:
                value = value or ""
                return decode_url_value(value) if encoded else value

            last = ""
            for item in root:
                if local_name(item) in ("Contents", "Version", "DeleteMarker"):
                    backend_key = decode(child_text(item, "Key"))
                    last = max(last, backend_key)
                    key = self.part.mapping.to_client_key(backend_key)
                    if key is not None and (every or self._shows(key)):
                        return True
            query = self._next_query(query, root, decode, last)
        return False


def _merge_sorted(objects: list[Entry], prefixes: list[Entry]) -> list[Entry]:
    """Objects (in backend order) and common prefixes merged by name; stable for versions."""
    merged: list[Entry] = []
    i = j = 0
    while i < len(objects) and j < len(prefixes):
        if prefixes[j].name < objects[i].name:
            merged.append(prefixes[j])
            j += 1
        else:
            merged.append(objects[i])
            i += 1
    merged.extend(objects[i:])
    merged.extend(prefixes[j:])
    return merged
