"""One listing across backends: a logical bucket split by key rules, listed as if it were one.

Each `routing.Part` of the bucket is read through a cursor that lists its backend bucket under
the mapped prefix, maps every name back to the client's and drops keys the part does not own
(stale or foreign data never leaks, nothing shows twice). The cursors are merged in S3 order
(UTF-8 byte order = code point order), common prefixes are de-duplicated across parts, and a page
ends after `max-keys` entries (keys, versions, delete markers and common prefixes count alike).

Positions are logical: a page resumes after the last client name it showed. Every backend's
position is derived from that name through its mapping, so the continuation token holds only
names the client has already seen (no backend prefix or backend token leaks), stays valid across
config reloads, and is signed (HMAC-SHA256, base64url) so a forged one is refused. Entries are
shown when their name sorts after the position, common prefixes included (as S3 and moto do).

Backends are read with ListObjectsV2 (for ListObjects and ListObjectsV2 clients) or
ListObjectVersions, always with `encoding-type=url` so any key survives XML. A delimiter is
passed to the backend; a common prefix the part owns only partly is confirmed by a probe listing.
A backend that answers NoSuchBucket contributes nothing, unless every part does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lxml import etree

from ..routing.bucketparts import Part
from ..routing.names import decode_url_value, encode_url_value
from ..s3.errors import S3Error
from ..s3.xml import S3_NS, child, child_text, in_s3_namespace, local_name, parse_xml, serialize_xml

Fetch = Callable[[Part, list[tuple[str, str]]], Awaitable[bytes]]
MAX_KEYS = 1000
_BAD_TOKEN = "The continuation token provided is incorrect"
_TOKEN_CONTEXT = b"s3router-list-token-v1\0"
_KINDS = {"ListObjects": "v1", "ListObjectsV2": "v2", "ListObjectVersions": "versions"}


# -- parameters and tokens ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListParams:
    """A client's listing request, validated."""

    kind: str  # "v1" | "v2" | "versions"
    bucket: str
    prefix: str
    delimiter: str
    max_keys: int  # as requested (echoed); at most MAX_KEYS entries are returned
    encode: bool  # encoding-type=url
    after: str  # resume after this name ("" from the start)
    after_version: str | None  # versions: resume after this version of `after`
    fetch_owner: bool
    query: Mapping[str, str]

    @property
    def limit(self) -> int:
        return min(self.max_keys, MAX_KEYS)


def encode_token(secret: bytes, params: ListParams, after: str) -> str:
    """An opaque, signed continuation token for resuming `params` after name `after`."""
    payload = json.dumps(
        {"b": params.bucket, "p": params.prefix, "d": params.delimiter, "k": after},
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    ).encode("utf-8")
    mac = hmac.new(secret, _TOKEN_CONTEXT + payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(payload + mac).decode("ascii").rstrip("=")


def decode_token(secret: bytes, token: str, bucket: str, prefix: str, delimiter: str) -> str:
    """The name a token resumes after; `S3Error(InvalidArgument)` if forged, altered or foreign."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        raise _bad_token() from None
    if len(raw) <= 32:
        raise _bad_token()
    payload, mac = raw[:-32], raw[-32:]
    expected = hmac.new(secret, _TOKEN_CONTEXT + payload, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise _bad_token()
    try:
        fields = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):  # pragma: no cover - signed by us
        raise _bad_token() from None
    if (fields.get("b"), fields.get("p"), fields.get("d")) != (bucket, prefix, delimiter):
        raise _bad_token()
    after = fields.get("k")
    if not isinstance(after, str):  # pragma: no cover - signed by us
        raise _bad_token()
    return after


def _bad_token() -> S3Error:
    return S3Error(
        "InvalidArgument",
        _BAD_TOKEN,
        details={"ArgumentName": "continuation-token"},
    )


def parse_list_params(
    operation: str, bucket: str, query: Mapping[str, str], token_secret: bytes
) -> ListParams:
    """Validate a client's ListObjects / ListObjectsV2 / ListObjectVersions query."""
    kind = _KINDS.get(operation)
    if kind is None:
        raise ValueError(f"not a merged listing: {operation}")
    raw_max = query.get("max-keys", str(MAX_KEYS))
    if not raw_max.strip().isdigit():
        raise S3Error(
            "InvalidArgument",
            "Provided max-keys not an integer or within integer range",
            details={"ArgumentName": "max-keys", "ArgumentValue": raw_max},
        )
    encoding = query.get("encoding-type")
    if encoding is not None and encoding != "url":
        raise S3Error(
            "InvalidArgument",
            "Invalid Encoding Method specified in Request",
            details={"ArgumentName": "encoding-type", "ArgumentValue": encoding},
        )
    prefix = query.get("prefix", "")
    delimiter = query.get("delimiter", "")
    after, after_version = "", None
    if kind == "v1":
        after = query.get("marker", "")
    elif kind == "v2":
        token = query.get("continuation-token")
        if token is not None:
            if not token:
                raise S3Error("InvalidArgument", "The continuation token provided is incorrect")
            after = decode_token(token_secret, token, bucket, prefix, delimiter)
        else:
            after = query.get("start-after", "")
    else:
        after = query.get("key-marker", "")
        after_version = query.get("version-id-marker") or None
        if after_version is not None and not after:
            raise S3Error(
                "InvalidArgument",
                "A version-id marker cannot be specified without a key marker.",
                details={"ArgumentName": "version-id-marker"},
            )
    return ListParams(
        kind=kind,
        bucket=bucket,
        prefix=prefix,
        delimiter=delimiter,
        max_keys=int(raw_max),
        encode=encoding == "url",
        after=after,
        after_version=after_version,
        fetch_owner=kind == "v1" or query.get("fetch-owner", "").lower() == "true",
        query=query,
    )


# -- one part -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    name: str  # client key, or client common prefix
    is_prefix: bool
    element: Any = None  # the backend's Contents / Version / DeleteMarker element
    version_id: str | None = None


class _PartMissing(Exception):
    pass


class _Cursor:
    """The entries one part contributes, in order, fetched a backend page at a time."""

    def __init__(
        self,
        part: Part,
        params: ListParams,
        fetch: Fetch,
        page_size: int,
        keep: Callable[[str], bool] | None = None,
    ) -> None:
        self.part = part
        self.keep = keep  # the client may see this key (None: every key the part owns)
        self.params = params
        self.fetch = fetch
        self.page_size = page_size
        self.pending: deque[_Entry] = deque()
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

    async def head(self) -> _Entry | None:
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
            self.pending.append(_Entry(name, True))

    async def _load_page(self) -> None:
        query = self.next_query
        assert query is not None
        root = await self._get(query)
        encoded = (child_text(root, "EncodingType") or "") == "url"

        def decode(value: str | None) -> str:
            value = value or ""
            return decode_url_value(value) if encoded else value

        objects: list[_Entry] = []
        prefixes: list[_Entry] = []
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

    def _object_entry(self, item: Any, backend_key: str) -> _Entry | None:
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
                return _Entry(common, True)
        if not self._after_position(key, is_prefix=False):
            return None
        version = child_text(item, "VersionId") if self.params.kind == "versions" else None
        return _Entry(key, False, item, version)

    async def _prefix_entry(self, backend_prefix: str) -> _Entry | None:
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
        return _Entry(common, True)

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


def _merge_sorted(objects: list[_Entry], prefixes: list[_Entry]) -> list[_Entry]:
    """Objects (in backend order) and common prefixes merged by name; stable for versions."""
    merged: list[_Entry] = []
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


# -- the merge ------------------------------------------------------------------------------------


async def merged_list(
    operation: str,
    bucket: str,
    query: Mapping[str, str],
    parts: Sequence[Part],
    fetch: Fetch,
    token_secret: bytes,
    *,
    page_size: int | None = None,
    keep: Callable[[str], bool] | None = None,
) -> bytes:
    """The client's listing of logical `bucket`, merged from every part, as S3 XML.

    `operation` is ListObjects, ListObjectsV2 or ListObjectVersions; `query` the client's decoded
    query (first value per name). `parts` come from `routing.routes_for_bucket` with the client's
    prefix. `fetch(part, query_items)` sends GET `/{part.bucket}?{query}` to `part.backend`
    (items are decoded name/value pairs, in order; encode and sign them as usual) and returns the
    body of a 200 answer, raising `S3Error` otherwise. `page_size` bounds backend pages
    (default: max-keys + 1, at most 1000). `keep(key)` narrows what is shown to the keys a
    client may see: markers and tokens then only ever name an entry the client was shown.
    """
    params = parse_list_params(operation, bucket, query, token_secret)
    if not parts:
        raise S3Error("NoSuchBucket", details={"BucketName": bucket})
    size = page_size or min(MAX_KEYS, params.limit + 1)
    cursors = [_Cursor(part, params, fetch, size, keep) for part in parts]
    if params.limit > 0:
        await asyncio.gather(*(cursor.head() for cursor in cursors))
    shown: list[_Entry] = []
    while len(shown) < params.limit:
        best: _Entry | None = None
        for cursor in cursors:
            entry = await cursor.head()
            if entry is not None and (best is None or entry.name < best.name):
                best = entry
        if best is None:
            break
        for cursor in cursors:
            entry = await cursor.head()
            if entry is best or (
                entry is not None and best.is_prefix and entry.is_prefix and entry.name == best.name
            ):
                cursor.pop()
        shown.append(best)
    truncated = False
    if params.limit > 0:
        for cursor in cursors:
            if await cursor.head() is not None:
                truncated = True
                break
    requested = [c for c in cursors if c.requested]
    if requested and all(c.missing for c in requested):
        raise S3Error("NoSuchBucket", details={"BucketName": bucket})
    try:
        return _render(params, shown, truncated, token_secret)
    except ValueError:  # a key with a character XML 1.0 cannot carry
        raise S3Error(
            "InvalidArgument",
            "A key in this listing cannot be written in XML; list with encoding-type=url.",
            details={"ArgumentName": "encoding-type"},
        ) from None


# -- the answer -----------------------------------------------------------------------------------


def _render(params: ListParams, shown: list[_Entry], truncated: bool, secret: bytes) -> bytes:
    root_name = "ListVersionsResult" if params.kind == "versions" else "ListBucketResult"
    root = etree.Element(f"{{{S3_NS}}}{root_name}", nsmap={None: S3_NS})

    def add(name: str, text: str) -> None:
        etree.SubElement(root, f"{{{S3_NS}}}{name}").text = text

    def enc(value: str) -> str:
        return encode_url_value(value) if params.encode else value

    last = shown[-1] if shown else None
    add("Name", params.bucket)
    add("Prefix", enc(params.prefix))
    if params.kind == "v1":
        add("Marker", enc(params.after))
        if truncated and last is not None and params.delimiter:
            add("NextMarker", enc(last.name))
    elif params.kind == "versions":
        add("KeyMarker", enc(params.after))
        add("VersionIdMarker", params.after_version or "")
        if truncated and last is not None:
            add("NextKeyMarker", enc(last.name))
            if not last.is_prefix and last.version_id:
                add("NextVersionIdMarker", last.version_id)
    else:
        add("KeyCount", str(len(shown)))
    add("MaxKeys", str(params.max_keys))
    if params.delimiter:
        add("Delimiter", enc(params.delimiter))
    if params.encode:
        add("EncodingType", "url")
    add("IsTruncated", "true" if truncated else "false")
    if params.kind == "v2":
        token = params.query.get("continuation-token")
        if token is not None:
            add("ContinuationToken", token)
        elif params.query.get("start-after") is not None:
            add("StartAfter", enc(params.query["start-after"]))
        if truncated and last is not None:
            add("NextContinuationToken", encode_token(secret, params, last.name))
    for entry in shown:
        if not entry.is_prefix:
            root.append(_entry_element(entry, enc(entry.name)))
    for entry in shown:
        if entry.is_prefix:
            common = etree.SubElement(root, f"{{{S3_NS}}}CommonPrefixes")
            etree.SubElement(common, f"{{{S3_NS}}}Prefix").text = enc(entry.name)
    return serialize_xml(root)


def _entry_element(entry: _Entry, key_text: str) -> Any:
    source = entry.element
    element = etree.Element(f"{{{S3_NS}}}{local_name(source)}", nsmap={None: S3_NS})
    for item in source:
        if not isinstance(item.tag, str):
            continue
        element.append(in_s3_namespace(item))
    key_element = child(element, "Key")
    if key_element is None:  # pragma: no cover - S3 always sends Key
        key_element = etree.SubElement(element, f"{{{S3_NS}}}Key")
    key_element.text = key_text
    return element
