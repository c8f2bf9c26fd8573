"""Who may call the proxy: the `clients:` key pairs with their `allow:`/`deny:` grants and the
`backend_keys:` they act with on some stores, the `anonymous:` section for unsigned requests,
or, with no `clients:`, the backends' own keys."""

from __future__ import annotations

from collections.abc import Mapping

from ..auth.anonymous import FORWARD_MODES
from ..auth.policy import NOBODY, ClientPolicy, Grant, validate_operations
from ..auth.signer import Credentials
from .model import BackendConfig, ClientConfig
from .reader import Reader
from .yamlfile import LineDict


def parse_clients(
    reader: Reader, doc: LineDict, backends: Mapping[str, BackendConfig] | None = None
) -> tuple[ClientConfig, ...] | None:
    """The `clients:` section; None when there is none. `backend_keys` may name `backends`."""
    if "clients" not in doc:
        return None
    items = doc["clients"]
    if not isinstance(items, list):
        raise reader.fail(
            "clients",
            "must be a list of {name, access_key_id, secret_access_key}",
            reader.line_of(doc, "clients"),
        )
    clients = []
    seen: dict[str, str] = {}
    for index, item in enumerate(items):
        where = f"clients[{index}]"
        if not isinstance(item, LineDict):
            raise reader.fail(where, "must be a mapping", reader.line_of(doc, "clients"))
        reader.only_keys(
            item,
            {
                "name",
                "access_key_id",
                "secret_access_key",
                "session_token",
                "allow",
                "deny",
                "backend_keys",
            },
            where,
        )
        key_id = reader.string(item, "access_key_id", where)
        secret = reader.string(item, "secret_access_key", where)
        if not key_id or not secret:
            raise reader.fail(where, "needs access_key_id and secret_access_key", item.line)
        if key_id in seen:
            raise reader.fail(
                f"{where}.access_key_id",
                f"access key id is already used by client {seen[key_id]!r}",
                reader.line_of(item, "access_key_id"),
            )
        name = reader.string(item, "name", where, key_id) or key_id
        seen[key_id] = name
        clients.append(
            ClientConfig(
                name=name,
                access_key_id=key_id,
                secret_access_key=secret,
                policy=_policy(reader, item, where),
                session_token=reader.string(item, "session_token", where) or None,
                backend_keys=_backend_keys(reader, item, where, backends or {}),
            )
        )
    return tuple(clients)


def _backend_keys(
    reader: Reader, item: LineDict, where: str, backends: Mapping[str, BackendConfig]
) -> dict[str, Credentials]:
    """`backend_keys:`, by backend name: the client's own key pair on each of those stores.
    Errors name the backend and the field, never a value (a value may be a secret)."""
    if "backend_keys" not in item:
        return {}
    section = reader.mapping(item, "backend_keys", f"{where}.backend_keys")
    keys = {}
    for name, pair in section.items():
        place = f"{where}.backend_keys.{name}"
        line = reader.line_of(section, name)
        if name not in backends:
            known = ", ".join(sorted(backends)) or "none"
            raise reader.fail(place, f"no backend is named {name!r} (backends: {known})", line)
        # Only an S3 store takes keys (a `kind:` of store the proxy serves itself signs nothing).
        if backends[name].kind != "s3":
            raise reader.fail(place, f"backend {name!r} is not an S3 store: it takes no keys", line)
        if not isinstance(pair, LineDict):
            raise reader.fail(place, "must be {access_key_id, secret_access_key}", line)
        reader.only_keys(pair, {"access_key_id", "secret_access_key", "session_token"}, place)
        key_id = reader.string(pair, "access_key_id", place)
        secret = reader.string(pair, "secret_access_key", place)
        if not key_id or not secret:
            raise reader.fail(place, "needs access_key_id and secret_access_key", pair.line)
        token = reader.string(pair, "session_token", place) or None
        keys[name] = Credentials(key_id, secret, token)
    return keys


def _grants(reader: Reader, section: LineDict, key: str, where: str) -> tuple[Grant, ...]:
    items = section.get(key)
    if not isinstance(items, list):
        raise reader.fail(
            f"{where}.{key}",
            'must be a list of {buckets: ["glob"], keys: ["glob"], operations: [read, list]}',
            reader.line_of(section, key),
        )
    grants = []
    for index, item in enumerate(items):
        place = f"{where}.{key}[{index}]"
        if not isinstance(item, LineDict):
            raise reader.fail(place, "must be a mapping", reader.line_of(section, key))
        reader.only_keys(item, {"buckets", "keys", "operations"}, place)

        def strings(name: str, entry: LineDict = item, place: str = place) -> list[str] | None:
            value = entry.get(name)
            if value is None:
                return None
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise reader.fail(f"{place}.{name}", "must be a list of strings", entry.line)
            return value

        buckets = strings("buckets")
        if not buckets:
            raise reader.fail(place, 'needs `buckets:` (globs, e.g. ["analytics-*"])', item.line)
        operations = strings("operations")
        known = None
        if operations is not None:
            known, unknown = validate_operations(operations)
            if unknown:
                raise reader.fail(
                    f"{place}.operations",
                    f"unknown operation {unknown[0]!r}; use an S3 operation name or one of "
                    "read, write, list, delete, admin",
                    reader.line_of(item, "operations"),
                )
        keys = strings("keys")
        grants.append(Grant(tuple(buckets), tuple(keys) if keys else None, known))
    return tuple(grants)


def _policy(reader: Reader, section: LineDict, where: str) -> ClientPolicy:
    allow = _grants(reader, section, "allow", where) if "allow" in section else None
    deny = _grants(reader, section, "deny", where) if "deny" in section else ()
    return ClientPolicy(allow=allow, deny=deny)


def parse_anonymous(reader: Reader, doc: LineDict) -> tuple[ClientPolicy, bool]:
    """The `anonymous:` section: what unsigned requests may do (nothing by default), and
    whether they are forwarded unsigned (`forward: unsigned`; every request the backend
    allows, unless `allow:` narrows it) rather than signed with the backend's keys."""
    if "anonymous" not in doc:
        return NOBODY, False
    section = reader.mapping(doc, "anonymous", "anonymous")
    reader.only_keys(section, {"allow", "forward"}, "anonymous")
    forward = reader.string(section, "forward", "anonymous", "signed")
    if forward not in FORWARD_MODES:
        raise reader.fail(
            "anonymous.forward",
            f"must be one of {', '.join(FORWARD_MODES)}, not {forward!r} (unsigned: the "
            "backend's ACLs decide; signed: the proxy's grants decide, the backend's keys sign)",
            reader.line_of(section, "forward"),
        )
    unsigned = forward == "unsigned"
    if "allow" not in section:
        return (ClientPolicy(allow=None) if unsigned else NOBODY), unsigned
    return ClientPolicy(allow=_grants(reader, section, "allow", "anonymous")), unsigned


def check_required_keys(
    reader: Reader,
    doc: LineDict,
    backends: Mapping[str, BackendConfig],
    clients: tuple[ClientConfig, ...] | None,
) -> None:
    """A backend with `require_client_keys` is one some client has `backend_keys` for;
    otherwise every request to it would be refused."""
    for backend in backends.values():
        if not backend.require_client_keys:
            continue
        if not any(backend.name in client.backend_keys for client in clients or ()):
            general = doc.get("backends")
            if isinstance(general, LineDict) and backend.name in general:
                where, place = f"backends.{backend.name}", general[backend.name]
            else:  # the `lakefs:` or `s3:` short form
                where, place = backend.name, doc.get(backend.name)
            raise reader.fail(
                f"{where}.require_client_keys",
                "no client has backend_keys for this backend, so every request to it would be "
                f"refused: give clients `backend_keys: {{{backend.name}: {{access_key_id, "
                "secret_access_key}}}` or drop require_client_keys",
                reader.line_of(place, "require_client_keys") or doc.line,
            )


def clients_of_backends(
    reader: Reader, doc: LineDict, backends: Mapping[str, BackendConfig]
) -> tuple[ClientConfig, ...]:
    """With no `clients:` section, clients sign with the backends' own key pairs."""
    clients = tuple(
        ClientConfig(
            name=f"backend:{b.name}",
            access_key_id=b.access_key_id,  # type: ignore[arg-type]
            secret_access_key=b.secret_access_key,  # type: ignore[arg-type]
        )
        for b in backends.values()
        if b.static_credentials
    )
    by_key: dict[str, str] = {}
    for client in clients:
        if by_key.setdefault(client.access_key_id, client.secret_access_key) != (
            client.secret_access_key
        ):
            raise reader.fail(
                "clients",
                f"two backends share access key id {client.access_key_id!r} with different "
                "secrets, so clients cannot be derived from them: add a `clients:` section",
                doc.line,
            )
    return clients
