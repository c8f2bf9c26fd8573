"""SigV4 canonicalisation, shared by verification and signing.

Verification canonicalises a request as it came off the wire (raw query, header values as
received), because that is what the client signed; signing canonicalises the strings it will
send byte for byte. Both end in the same encoding, query and header forms, so they live here once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from urllib.parse import quote, unquote_to_bytes

_UNRESERVED = re.compile(r"[A-Za-z0-9\-._~]*")
# Already UriEncoded: unreserved characters and upper-case escapes of bytes that are not
# unreserved (what SDKs send). Decoding and encoding such a string again gives it back.
# Written as an unrolled loop with possessive quantifiers: a run of unreserved characters
# followed by a character that is not allowed must fail in linear time. (The former
# `(?:[unreserved]+|%XX)*` backtracked exponentially on such input: 24 characters and a `/`
# took half a second, 40 would take hours.)
_ENCODED_PART = (
    r"[A-Za-z0-9\-._~]*+"
    r"(?:%(?:[01][0-9A-F]|2[0-9A-CF]|3[A-F]|40|5[B-E]|60|7[B-DF]|[89A-F][0-9A-F])"
    r"[A-Za-z0-9\-._~]*+)*+"
)
_ENCODED = re.compile(_ENCODED_PART)
# A whole raw query whose every name and value is already UriEncoded (at most one `=` per
# pair): its canonical form only needs the pairs sorted.
_ENCODED_QUERY = re.compile(
    f"(?:{_ENCODED_PART}(?:={_ENCODED_PART})?+)(?:&{_ENCODED_PART}(?:={_ENCODED_PART})?+)*+"
)
_WS_RUN = re.compile(r"[ \t\r\n\x0b\x0c]+")


def uri_encode(value: str, *, keep_slash: bool) -> str:
    """AWS UriEncode: UTF-8 bytes, unreserved characters kept, the rest `%XX` upper-case.

    `/` is kept only in paths (`keep_slash=True`). A lone surrogate cannot be UTF-8 and raises
    `UnicodeEncodeError` (a `ValueError`): such a name never came from a valid request.
    """
    if _UNRESERVED.fullmatch(value) is not None:
        return value
    return quote(value, safe="/" if keep_slash else "")


def canonical_query_string(items: Iterable[tuple[str, str]]) -> str:
    """The SigV4 canonical query for decoded `(name, value)` pairs, repeats kept.

    It is also the exact query string the proxy sends, so what is signed is what is sent.
    """
    pairs = sorted(
        (uri_encode(name, keep_slash=False), uri_encode(value, keep_slash=False))
        for name, value in items
    )
    return "&".join([f"{name}={value}" for name, value in pairs])


def utf8(text: str) -> bytes:
    """Bytes for hashing; the front server hands over undecodable bytes as `surrogateescape`."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def raw_query_parts(raw_query: str) -> list[tuple[str, str, str]]:
    """`(name, "=" or "", value)` of each part of a raw query as sent, empty parts left out."""
    return [part.partition("=") for part in raw_query.split("&") if part]


def _reencode_query_part(raw: str) -> str:
    """Decode one raw query name or value (`+` is a space) and UriEncode it again.

    Works on bytes, so a non-UTF-8 escape still canonicalises to exactly what was sent.
    """
    if _ENCODED.fullmatch(raw) is not None:
        return raw
    return quote(unquote_to_bytes(utf8(raw.replace("+", " "))), safe="")


def raw_canonical_query(
    raw_query: str, *, drop: frozenset[str] = frozenset(), redact: frozenset[str] = frozenset()
) -> str:
    """The canonical query of a raw query string as received.

    Names in `drop` are left out, values of names in `redact` are hidden (for error details).
    Every such name is unreserved, so its encoded and decoded forms are the same string.
    """
    if not raw_query:
        return ""
    parts = raw_query_parts(raw_query)
    if _ENCODED_QUERY.fullmatch(raw_query) is not None:
        # Every name and value is canonical already: re-encoding would give each back as is.
        pairs = [
            (name, "<redacted>" if name in redact else value)
            for name, _, value in parts
            if name not in drop
        ]
    else:
        pairs = []
        for raw_name, _, raw_value in parts:
            name = _reencode_query_part(raw_name)
            if name in drop:
                continue
            pairs.append(
                (name, "<redacted>" if name in redact else _reencode_query_part(raw_value))
            )
    pairs.sort()
    return "&".join([f"{name}={value}" for name, value in pairs])


def trim(value: str) -> str:
    """Trimall: strip the value and collapse each whitespace run to one space."""
    if value.isprintable() and "  " not in value and value[:1] != " " and value[-1:] != " ":
        return value
    return _WS_RUN.sub(" ", value).strip(" ")


def needs_trim(block: str, lines: int) -> bool:
    """Whether any value in a joined canonical-headers block might need trimming.

    Most values need none, and one scan of the joined block proves it: a value that starts or
    ends with a space, holds a double space, other whitespace or a line break shows up as one
    of these substrings or as an extra line.
    """
    return (
        ": " in block
        or " \n" in block
        or "  " in block
        or "\t" in block
        or "\r" in block
        or "\x0b" in block
        or "\x0c" in block
        or block.count("\n") != lines
    )


def headers_block(names: Sequence[str], values: Sequence[str]) -> str:
    """The canonical headers, `name:value\\n` each, values trimmed."""
    block = "".join([f"{name}:{value}\n" for name, value in zip(names, values, strict=True)])
    if needs_trim(block, len(names)):
        block = "".join(
            [f"{name}:{trim(value)}\n" for name, value in zip(names, values, strict=True)]
        )
    return block
