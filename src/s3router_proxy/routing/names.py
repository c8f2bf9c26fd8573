"""Name mapping: client bucket and key ↔ the backend's, and the request values that carry them.

A rule that maps names turns the client's `bucket/key` into the backend's `bucket'/key'`:

- the bucket is replaced by the rule's `mapped_bucket` (unchanged when it has none);
- the key's *literal prefix* C (the rule's `key_pattern` up to its first `*`, `?` or `[`; empty
  without a key pattern) is replaced by the backend prefix P: `key' = P + key[len(C):]`.
  P is the rule's `mapped_prefix`, with a `/` appended when the prefix ends at a path boundary
  (C is empty or ends with `/`) and the mapped prefix does not already end with one. So
  `key_pattern: team2/*` + `mapped_prefix: data/team2` stores `team2/obj2` as `data/team2/obj2`,
  and a whole-bucket rule with `mapped_prefix: main` stores `a/b` as `main/a/b`. Without a
  `mapped_prefix` keys are not rewritten (P = C).
- The inverse strips P and puts C back; a backend key outside P has no client name and is never
  shown. Within one rule both directions preserve S3's (UTF-8 byte) order.

Here a `NameMapping` is applied to what a request sends around names: listing parameters and
`x-amz-copy-source`. The answers coming back are `responsexml.py` (XML documents) and
`location.py` (Location headers); the DeleteObjects request body is `s3/deleteobjects.py`. All
functions are pure: strings in and out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from ..s3.errors import S3Error

# -- the mapping ----------------------------------------------------------------------------------


def join_prefix(literal_prefix: str, mapped_prefix: str | None) -> str:
    """The backend prefix P that replaces a rule's literal key prefix C (see module docstring)."""
    if mapped_prefix is None:
        return literal_prefix
    at_boundary = literal_prefix == "" or literal_prefix.endswith("/")
    if mapped_prefix and at_boundary and not mapped_prefix.endswith("/"):
        return mapped_prefix + "/"
    return mapped_prefix


@dataclass(frozen=True, slots=True)
class NameMapping:
    """How one rule renames one client bucket: bucket → backend bucket, prefix C → prefix P."""

    client_bucket: str
    backend_bucket: str
    client_prefix: str = ""  # C
    backend_prefix: str = ""  # P

    @classmethod
    def identity(cls, bucket: str) -> NameMapping:
        return cls(bucket, bucket)

    @property
    def is_identity(self) -> bool:
        return (
            self.client_bucket == self.backend_bucket and self.client_prefix == self.backend_prefix
        )

    @property
    def renames_keys(self) -> bool:
        return self.client_prefix != self.backend_prefix

    def to_backend_key(self, key: str) -> str:
        """The backend key of a client key; the key must lie under the literal prefix C."""
        if not key:
            return ""
        if not key.startswith(self.client_prefix):
            raise ValueError(f"key {key!r} is outside prefix {self.client_prefix!r}")
        return self.backend_prefix + key[len(self.client_prefix) :]

    def to_client_key(self, backend_key: str) -> str | None:
        """The client key of a backend key, None when the backend key is outside P.

        Also None for the object named exactly by the backend prefix when the client prefix is
        empty: its client key would be "", which no request can name (and which, as a listing
        marker, would restart the listing).
        """
        if not backend_key.startswith(self.backend_prefix):
            return None
        return self.client_prefix + backend_key[len(self.backend_prefix) :] or None

    def to_backend_position(self, key: str) -> tuple[str, str | None]:
        """Where a listing that resumes after client key `key` resumes in the backend.

        Returns ("after", backend key) to resume after that backend key, ("start", None) when
        every mapped key sorts after `key`, ("end", None) when none does. Order is preserved
        because the mapping only swaps a common prefix.
        """
        if not key:
            return "start", None
        if key.startswith(self.client_prefix):
            return "after", self.backend_prefix + key[len(self.client_prefix) :]
        if key < self.client_prefix:
            return "start", None
        return "end", None


# -- URL-encoded listing values (encoding-type=url) -----------------------------------------------


def encode_url_value(value: str) -> str:
    """How S3 encodes key names for `encoding-type=url`; botocore decodes with `unquote_plus`."""
    return quote_plus(value, safe="/")


def decode_url_value(value: str) -> str:
    return unquote_plus(value)


# -- listing request parameters -------------------------------------------------------------------

_KEY_POSITIONS = ("marker", "start-after", "key-marker")
_COMPANIONS = {"key-marker": ("version-id-marker", "upload-id-marker")}


@dataclass(frozen=True, slots=True)
class BackendListQuery:
    """A client listing's parameters translated for one mapped backend.

    `query` is None when the answer is known to be empty without asking the backend. When
    `collapse` is set, every key the backend lists falls under that one client common prefix:
    answer with just `<CommonPrefixes><Prefix>collapse</Prefix></CommonPrefixes>` if the backend
    listing (`query`, e.g. with max-keys=1) is non-empty, else with an empty listing.
    """

    query: list[tuple[str, str]] | None
    collapse: str | None = None


def map_list_query(
    query_items: Iterable[tuple[str, str]], mapping: NameMapping
) -> BackendListQuery:
    """Translate a listing's query (ListObjects v1/v2, Versions, MultipartUploads) for a backend.

    - `prefix` R: under C → `P + R[len(C):]`; a prefix of C (shorter, e.g. "") → P, and when the
      delimiter occurs in `C[len(R):]` every key collapses into one common prefix; otherwise the
      rule holds no key under R and the answer is empty.
    - `marker`, `start-after`, `key-marker`: mapped when under C, dropped when every mapped key
      sorts after them (with `key-marker`'s companions `version-id-marker`/`upload-id-marker`),
      empty answer when every mapped key sorts before them.
    - everything else passes unchanged (`delimiter`, `max-keys`, `encoding-type`, tokens, …).
    """
    items = list(query_items)
    values = {name: value for name, value in reversed(items)}
    c, p = mapping.client_prefix, mapping.backend_prefix
    prefix = values.get("prefix", "")
    delimiter = values.get("delimiter", "")
    collapse: str | None = None
    if prefix.startswith(c):
        backend_prefix = p + prefix[len(c) :]
    elif c.startswith(prefix):
        backend_prefix = p
        gap = c[len(prefix) :]
        if delimiter and delimiter in gap:
            collapse = prefix + gap[: gap.index(delimiter) + len(delimiter)]
    else:
        return BackendListQuery(None)

    dropped: set[str] = set()
    out: list[tuple[str, str]] = []
    for name, value in items:
        if name in dropped:
            continue
        if name == "prefix":
            if backend_prefix:
                out.append((name, backend_prefix))
        elif name in _KEY_POSITIONS:
            where, backend_key = mapping.to_backend_position(value)
            if where == "end":
                return BackendListQuery(None)
            if where == "start":
                dropped.update(_COMPANIONS.get(name, ()))
                out = [(n, v) for n, v in out if n not in dropped]
                continue
            if collapse is not None and value >= collapse:
                return BackendListQuery(None)
            out.append((name, backend_key or ""))
        else:
            out.append((name, value))
    if "prefix" not in values and backend_prefix:
        out.append(("prefix", backend_prefix))
    return BackendListQuery(out, collapse)


# -- x-amz-copy-source ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CopySource:
    bucket: str
    key: str
    version_id: str | None = None


def parse_copy_source(value: str) -> CopySource:
    """`[/]bucket/key[?versionId=id]`, percent-decoded once (`+` stays `+`)."""
    text = value.strip()
    text = text.removeprefix("/")
    version_id: str | None = None
    cut = text.rfind("?versionId=")
    if cut >= 0:
        text, version_id = text[:cut], text[cut + len("?versionId=") :]
    try:
        decoded = unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise S3Error("InvalidArgument", "Invalid copy source encoding.") from None
    if decoded.startswith("arn:"):
        raise S3Error(
            "NotImplemented", "Access point and Outposts ARNs as copy sources are not supported."
        )
    bucket, _, key = decoded.partition("/")
    if not bucket or not key:
        raise S3Error(
            "InvalidArgument",
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey.",
            details={"ArgumentName": "x-amz-copy-source", "ArgumentValue": value},
        )
    return CopySource(bucket, key, version_id or None)


def format_copy_source(bucket: str, key: str, version_id: str | None = None) -> str:
    """The header value botocore would send for this source (safe `-._~/`, version id raw)."""
    encoded = quote(f"{bucket}/{key}", safe="-._~/")
    return f"{encoded}?versionId={version_id}" if version_id else encoded


def map_copy_source(value: str, mapping: NameMapping) -> str:
    """Rewrite a copy source whose bucket/key the caller routed to `mapping`."""
    source = parse_copy_source(value)
    if source.bucket != mapping.client_bucket:
        raise ValueError("copy source bucket does not belong to this mapping")
    return format_copy_source(
        mapping.backend_bucket, mapping.to_backend_key(source.key), source.version_id
    )
