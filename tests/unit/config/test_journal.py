"""`router.mirror_journal`: a plain path stays a file next to the config; the s3:// form names a
configured backend, a bucket and a prefix, checked at load with the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3router_proxy.config.journal import JournalPlace, journal_place
from s3router_proxy.config.load import load_config
from s3router_proxy.config.reader import ConfigError

DOCUMENT = """\
router:
  listen_address: "127.0.0.1:8080"
  mirror_journal: "{journal}"
backends:
  main:
    endpoint: "http://127.0.0.1:9000"
    access_key_id: "AKIAMAIN"
    secret_access_key: "main-secret"
routing:
  default_target: main
"""


def load(tmp_path: Path, journal: str) -> str | None:
    path = tmp_path / "router.yaml"
    path.write_text(DOCUMENT.format(journal=journal), encoding="utf-8")
    return load_config(path, env={}).mirror_journal


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("s3://main/journal/mirror/", JournalPlace("main", "journal", "mirror/")),
        ("s3://main/journal/mirror", JournalPlace("main", "journal", "mirror/")),
        ("s3://main/journal/a/b/", JournalPlace("main", "journal", "a/b/")),
        ("s3://main/journal", JournalPlace("main", "journal", "")),
        ("s3://main/journal/", JournalPlace("main", "journal", "")),
    ],
)
def test_s3_form_is_backend_bucket_and_prefix(text: str, place: JournalPlace) -> None:
    assert journal_place(text) == place
    assert journal_place(str(place)) == place


@pytest.mark.parametrize("text", ["journal.jsonl", "/var/lib/router/journal.jsonl", "s3:/x/y"])
def test_a_path_is_a_local_file(text: str) -> None:
    assert journal_place(text) is None


@pytest.mark.parametrize("text", ["s3://", "s3://main", "s3://main/", "s3:///bucket/p"])
def test_an_s3_form_without_backend_or_bucket_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="BACKEND/BUCKET"):
        journal_place(text)


def test_load_keeps_the_s3_form_and_resolves_a_path(tmp_path: Path) -> None:
    assert load(tmp_path, "s3://main/journal/mirror/") == "s3://main/journal/mirror/"
    assert load(tmp_path, "journal.jsonl") == str(tmp_path / "journal.jsonl")


@pytest.mark.parametrize(
    ("journal", "message"),
    [
        ("s3://elsewhere/journal/", "backend 'elsewhere' is not in backends: (one of ['main'])"),
        ("s3://main", "is not s3://BACKEND/BUCKET/PREFIX"),
    ],
)
def test_a_bad_s3_journal_names_the_file_and_line(
    tmp_path: Path, journal: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, journal)
    text = str(caught.value)
    assert text.startswith(f"{tmp_path / 'router.yaml'}:3: router.mirror_journal: "), text
    assert message in text
