"""Who may call the proxy: `clients:` with their grants and own backend keys, `anonymous:`, and
the clients derived from the backends' key pairs when there is no `clients:` section."""

from __future__ import annotations

import pytest

from s3router_proxy.auth.policy import NOBODY, UNRESTRICTED, Grant
from s3router_proxy.auth.signer import Credentials
from s3router_proxy.config.clients import (
    check_required_keys,
    clients_of_backends,
    parse_anonymous,
    parse_clients,
)
from s3router_proxy.config.model import BackendConfig
from s3router_proxy.config.reader import ConfigError, Reader
from s3router_proxy.config.yamlfile import LineDict, load_documents

READER = Reader("r.yaml")


def document(text: str) -> LineDict:
    (doc,) = load_documents(text, {})
    return doc


def test_no_clients_section_is_none_not_an_empty_list() -> None:
    assert parse_clients(READER, document("backends: {}\n")) is None
    assert parse_clients(READER, document("clients: []\n")) == ()


def test_a_client_with_grants() -> None:
    (client,) = parse_clients(
        READER,
        document(
            "clients:\n  - access_key_id: AK\n    secret_access_key: SK\n"
            "    allow: [{buckets: ['logs-*'], operations: [read]}]\n"
            "    deny: [{buckets: [logs-secret], keys: ['*']}]\n"
        ),
    )
    assert (client.name, client.access_key_id, client.secret_access_key) == ("AK", "AK", "SK")
    assert client.policy.allow is not None and client.policy.allow[0].buckets == ("logs-*",)
    assert client.policy.deny == (Grant(("logs-secret",), ("*",), None),)
    (plain,) = parse_clients(
        READER, document("clients: [{access_key_id: A, secret_access_key: S}]\n")
    )
    assert plain.policy == UNRESTRICTED


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("clients: {a: b}\n", "must be a list"),
        ("clients: [{access_key_id: A}]\n", "needs access_key_id and secret_access_key"),
        ("clients: [{access_key_id: A, secret_access_key: S, allow: [{keys: [x]}]}]\n", "buckets"),
        (
            "clients: [{access_key_id: A, secret_access_key: S,"
            " allow: [{buckets: [b], operations: [fly]}]}]\n",
            "unknown operation 'fly'",
        ),
    ],
)
def test_bad_clients_say_what_to_fix(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=r"^r\.yaml:1: clients") as caught:
        parse_clients(READER, document(text))
    assert fragment in str(caught.value)


def test_anonymous_may_do_nothing_unless_allowed() -> None:
    assert parse_anonymous(READER, document("backends: {}\n")) == (NOBODY, False)
    allowed, unsigned = parse_anonymous(
        READER, document("anonymous: {allow: [{buckets: [public]}]}\n")
    )
    assert allowed.allow == (Grant(("public",), None, None),)
    assert not unsigned
    explicit = parse_anonymous(READER, document("anonymous: {forward: signed}\n"))
    assert explicit == (NOBODY, False)


def test_anonymous_forwarded_unsigned_is_what_the_store_allows_unless_narrowed() -> None:
    everything, unsigned = parse_anonymous(READER, document("anonymous: {forward: unsigned}\n"))
    assert unsigned and everything.allow is None
    assert everything.permits("PutObject", "any-bucket", "k")
    narrowed, unsigned = parse_anonymous(
        READER,
        document("anonymous:\n  forward: unsigned\n  allow: [{buckets: [public-*]}]\n"),
    )
    assert unsigned
    assert narrowed.permits("GetObject", "public-site", "index.html")
    assert not narrowed.permits("GetObject", "private", "index.html")


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("anonymous:\n  forward: pass_through\n", 2, "must be one of signed, unsigned"),
        ("anonymous:\n  forward: [unsigned]\n", 2, "anonymous.forward: must be a string"),
        ("anonymous:\n  mode: unsigned\n", 2, "mode"),
    ],
)
def test_a_bad_anonymous_section_names_its_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ConfigError, match=rf"^r\.yaml:{line}: anonymous") as caught:
        parse_anonymous(READER, document(text))
    assert fragment in str(caught.value)


def test_clients_derived_from_backends_with_static_keys_only() -> None:
    backends = {
        "a": BackendConfig("a", "http://h:1", access_key_id="AK", secret_access_key="SK"),
        "b": BackendConfig("b", "http://h:2", access_key_id="AK", secret_access_key="SK"),
        "c": BackendConfig("c", "http://h:3", profile="dev"),
    }
    clients = clients_of_backends(READER, document("backends: {}\n"), backends)
    assert [(c.name, c.access_key_id) for c in clients] == [
        ("backend:a", "AK"),
        ("backend:b", "AK"),
    ]
    clash = {
        **backends,
        "b": BackendConfig("b", "http://h:2", access_key_id="AK", secret_access_key="x"),
    }
    with pytest.raises(ConfigError, match="add a `clients:` section"):
        clients_of_backends(READER, document("backends: {}\n"), clash)


STORES = {
    "moto": BackendConfig("moto", "http://h:1", access_key_id="MAIN", secret_access_key="main-s"),
    "other": BackendConfig("other", "http://h:2", access_key_id="MAIN", secret_access_key="main-s"),
}


def test_a_client_may_have_its_own_keys_on_some_stores() -> None:
    (alt, plain) = parse_clients(
        READER,
        document(
            "clients:\n"
            "  - name: alt\n    access_key_id: AK\n    secret_access_key: SK\n"
            "    backend_keys:\n"
            "      moto: {access_key_id: ALTKEY, secret_access_key: alt-secret, session_token: T}\n"
            "  - {access_key_id: B, secret_access_key: S}\n"
        ),
        STORES,
    )
    assert alt.backend_keys == {"moto": Credentials("ALTKEY", "alt-secret", "T")}
    assert plain.backend_keys == {}
    assert "alt-secret" not in repr(alt) and "ALTKEY" not in repr(alt)


def test_backend_keys_come_from_the_environment_like_any_secret() -> None:
    (doc,) = load_documents(
        "clients:\n  - access_key_id: AK\n    secret_access_key: SK\n"
        "    backend_keys:\n      moto:\n"
        "        access_key_id: ${ALT_KEY}\n        secret_access_key: ${ALT_SECRET}\n",
        {"ALT_KEY": "FROMENV", "ALT_SECRET": "env-secret"},
    )
    (client,) = parse_clients(READER, doc, STORES)
    assert client.backend_keys["moto"] == Credentials("FROMENV", "env-secret")


@pytest.mark.parametrize(
    ("keys", "fragment"),
    [
        ("{nowhere: {access_key_id: K, secret_access_key: the-secret}}", "no backend is named"),
        ("{moto: {access_key_id: K}}", "needs access_key_id and secret_access_key"),
        ("{moto: {secret_access_key: the-secret}}", "needs access_key_id and secret_access_key"),
        ("{moto: the-secret}", "must be {access_key_id, secret_access_key}"),
        ("{moto: {access_key_id: K, secret_access_key: the-secret, region: x}}", "unknown key"),
        ("[the-secret]", "must be a mapping"),
    ],
)
def test_bad_backend_keys_name_their_line_and_never_their_values(keys: str, fragment: str) -> None:
    text = f"clients:\n  - access_key_id: A\n    secret_access_key: S\n    backend_keys: {keys}\n"
    with pytest.raises(ConfigError, match=r"^r\.yaml:4: clients\[0\]\.backend_keys") as caught:
        parse_clients(READER, document(text), STORES)
    assert fragment in str(caught.value)
    assert "the-secret" not in str(caught.value)


def test_a_redis_store_takes_no_backend_keys() -> None:
    stores = {"scratch": BackendConfig("scratch", "", kind="redis")}
    text = (
        "clients:\n  - access_key_id: A\n    secret_access_key: S\n"
        "    backend_keys: {scratch: {access_key_id: K, secret_access_key: the-secret}}\n"
    )
    with pytest.raises(ConfigError, match=r"^r\.yaml:4: .*not an S3 store") as caught:
        parse_clients(READER, document(text), stores)
    assert "the-secret" not in str(caught.value)


def test_a_store_that_requires_client_keys_needs_a_client_with_some() -> None:
    strict = {"moto": BackendConfig("moto", "http://h:1", require_client_keys=True)}
    text = "backends:\n  moto:\n    endpoint: http://h:1\n    require_client_keys: true\n"
    with pytest.raises(ConfigError, match=r"^r\.yaml:4: backends\.moto\.require_client_keys"):
        check_required_keys(READER, document(text), strict, None)
    (client,) = parse_clients(
        READER,
        document(
            "clients: [{access_key_id: A, secret_access_key: S,"
            " backend_keys: {moto: {access_key_id: K, secret_access_key: X}}}]\n"
        ),
        strict,
    )
    check_required_keys(READER, document(text), strict, (client,))
