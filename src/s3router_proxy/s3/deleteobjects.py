"""DeleteObjects documents: the request naming up to 1000 keys, and the DeleteResult answer.

The keys of a DeleteObjects request are in its body, not its path, so the proxy reads them to
authorize and route each one, rewrites them into the backend's names, splits one request per
backend when the keys live on several, and merges the backends' DeleteResults back into one in
the client's names. Bodies are bounded (`MAX_DELETE_OBJECTS_BYTES`) and parsed as request
documents (no doctype, no entities).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Protocol

from lxml import etree

from .errors import S3Error
from .xml import (
    S3_NS,
    child,
    child_text,
    children,
    in_s3_namespace,
    local_name,
    parse_xml,
    serialize_xml,
)


class ClientKeys(Protocol):
    """Backend keys back to the client's names (routing's `NameMapping` is one); a protocol,
    so this layer does not import the routing above it."""

    def to_client_key(self, backend_key: str) -> str | None: ...


MAX_DELETE_OBJECTS_BYTES = 4 * 1024 * 1024  # 1000 keys of 1 KiB, escaped, with version ids
MAX_DELETE_OBJECTS_KEYS = 1000


def delete_objects_keys(body: bytes) -> list[str]:
    """The keys a DeleteObjects body names, in order (to route them)."""
    root = _delete_document(body)
    return [child_text(obj, "Key") or "" for obj in children(root, "Object")]


def _delete_document(body: bytes) -> Any:
    """A DeleteObjects body, parsed; more than 1000 keys is MalformedXML, as in S3."""
    root = parse_xml(body, limit=MAX_DELETE_OBJECTS_BYTES, request=True)
    if len(children(root, "Object")) > MAX_DELETE_OBJECTS_KEYS:
        raise S3Error("MalformedXML", "A DeleteObjects request names at most 1000 keys.")
    return root


def rewrite_delete_objects(body: bytes, backend_key: Callable[[str], str]) -> bytes:
    """The same DeleteObjects body with every `<Object><Key>` replaced by `backend_key(key)`."""
    root = _delete_document(body)
    for obj in children(root, "Object"):
        key_element = child(obj, "Key")
        if key_element is not None:
            key_element.text = backend_key(key_element.text or "")
    return serialize_xml(root)


def group_delete_objects(
    body: bytes, target: Callable[[str], tuple[Hashable, str]]
) -> dict[Hashable, bytes]:
    """Split a DeleteObjects body by route: `target(key)` → (route id, backend key).

    Each group gets its own body, in the original order, with `Quiet` and any other top-level
    element kept; send each to its backend and join the answers with `merge_delete_results`.
    """
    root = _delete_document(body)
    groups: dict[Hashable, Any] = {}
    for obj in children(root, "Object"):
        key_element = child(obj, "Key")
        key = "" if key_element is None else key_element.text or ""
        group, backend_key = target(key)
        if group not in groups:
            shell = etree.Element(root.tag, nsmap=root.nsmap)
            for other in root:
                if local_name(other) != "Object":
                    shell.append(copy.deepcopy(other))
            groups[group] = shell
        clone = copy.deepcopy(obj)
        clone_key = child(clone, "Key")
        if clone_key is not None:
            clone_key.text = backend_key
        groups[group].append(clone)
    return {group: serialize_xml(tree) for group, tree in groups.items()}


def merge_delete_results(results: Iterable[tuple[bytes, ClientKeys]]) -> bytes:
    """One DeleteResult from several backends' answers, keys mapped back to the client's names."""
    out = etree.Element(f"{{{S3_NS}}}DeleteResult", nsmap={None: S3_NS})
    for body, mapping in results:
        root = parse_xml(body)
        if local_name(root) == "Error":
            raise S3Error(
                child_text(root, "Code") or "InternalError",
                child_text(root, "Message") or None,
                status=500,
            )
        map_delete_result(root, mapping)
        for item in root:
            if local_name(item) in ("Deleted", "Error"):
                out.append(in_s3_namespace(item))
    return serialize_xml(out)


def map_delete_result(root: Any, mapping: ClientKeys) -> None:
    """Put a parsed DeleteResult's keys in the client's names (a key without one stays as is)."""
    for item in root:
        if local_name(item) in ("Deleted", "Error"):
            key_element = child(item, "Key")
            if key_element is not None:
                backend_key = key_element.text or ""
                client = mapping.to_client_key(backend_key)
                key_element.text = backend_key if client is None else client
