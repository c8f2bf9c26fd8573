"""The backends of a config: the `lakefs:` and `s3:` short forms, `backends:` by name, and the
environment variables the short forms read."""

from __future__ import annotations

import pytest

from s3router_proxy.config.backends import parse_backends
from s3router_proxy.config.model import BackendConfig
from s3router_proxy.config.reader import ConfigError, Reader
from s3router_proxy.config.yamlfile import load_documents


def backends(text: str, env: dict[str, str] | None = None) -> dict[str, BackendConfig]:
    (doc,) = load_documents(text, {})
    return parse_backends(Reader("r.yaml"), doc, env or {})


def test_s3_defaults_to_aws_in_the_region_of_the_environment() -> None:
    s3 = backends("s3: {}\n", {"AWS_DEFAULT_REGION": "eu-central-1"})["s3"]
    assert s3.endpoint == "https://s3.eu-central-1.amazonaws.com"
    assert (s3.region, s3.addressing_style) == ("eu-central-1", "virtual")
    # An endpoint of its own (MinIO, say) means path style unless told otherwise.
    assert backends("s3: {endpoint: 'http://minio:9000'}\n")["s3"].addressing_style == "path"


def test_lakefs_comes_from_its_variables_alone() -> None:
    env = {
        "LAKEFS_ENDPOINT": "http://lakefs:8000/",
        "LAKEFS_ACCESS_KEY_ID": "AK",
        "LAKEFS_SECRET_ACCESS_KEY": "SK",
    }
    lakefs = backends("backends: {}\n", env)["lakefs"]
    assert (lakefs.endpoint, lakefs.access_key_id, lakefs.secret_access_key) == (
        "http://lakefs:8000",
        "AK",
        "SK",
    )


def test_general_backends_read_every_setting() -> None:
    minio = backends(
        "backends:\n  minio:\n    endpoint: 'https://m:9000'\n    region: eu-west-1\n"
        "    max_connections: 8\n    copy_part_size: 8MiB\n    read_timeout: 2.5\n"
        "    add_content_md5: true\n"
    )["minio"]
    assert minio == BackendConfig(
        "minio",
        "https://m:9000",
        region="eu-west-1",
        max_connections=8,
        copy_part_size=8 * 1024**2,
        read_timeout=2.5,
        add_content_md5=True,
    )


def test_chunked_uploads_are_refused_unless_a_backend_says_it_takes_them() -> None:
    stores = backends(
        "s3: {}\nlakefs: {endpoint: 'http://l:8000'}\nbackends:\n"
        "  minio: {endpoint: 'http://m:9000'}\n"
        "  ceph: {endpoint: 'http://c:7480', chunked_uploads: forward}\n"
    )
    assert {name: b.chunked_uploads for name, b in stores.items()} == {
        "lakefs": "refuse",
        "s3": "refuse",
        "minio": "refuse",
        "ceph": "forward",
    }


@pytest.mark.parametrize("value", ["yes", "stream", "1"])
def test_a_bad_chunked_uploads_names_its_line_and_the_choices(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        backends(f"backends:\n  x:\n    endpoint: 'http://h:1'\n    chunked_uploads: {value}\n")
    assert str(caught.value) == (
        'r.yaml:4: backends.x.chunked_uploads: must be "refuse" or "forward"'
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("s3: {}\nbackends:\n  s3: {endpoint: 'http://h:1'}\n", "already defined"),
        ("backends:\n  x: {endpoint: 'http://h:1/bucket'}\n", "with no path"),
        ("backends:\n  x: {endpoint: 'http://h:1', addressing_style: dns}\n", '"virtual"'),
        ("backends:\n  x: {endpoint: 'http://h:1', copy_part_size: 1MiB}\n", "between 5MiB"),
        (
            "backends:\n  x: {endpoint: 'http://h:1', profile: p, access_key_id: a,"
            " secret_access_key: s}\n",
            "not both",
        ),
        ("backends:\n  x: 1\n", "must be a mapping"),
        ("router: {}\n", "no backend is configured"),
    ],
)
def test_bad_backends_say_what_to_fix(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=r"^r\.yaml") as caught:
        backends(text)
    assert fragment in str(caught.value)
