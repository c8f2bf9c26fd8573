"""The routing language end to end: merged listings, explain/check, admin /explain, renames.

One proxy process serves the module, its backends the session's two moto servers: `lakefs` is
moto with signature checks, `minio` plain moto. Buckets `prop-*` are split like
config/examples/split-bucket.yaml (`raw/*` and `curated/*` renamed into the lakefs store under
`main/` and `datalake/`, every other key in the minio store unchanged); the parts are kept apart
by backend prefixes rather than `mapped_bucket`, so every hypothesis example gets a fresh logical
bucket. Its listings through the proxy must equal the listings of the same keys in one plain moto
bucket, read directly. `explain` and `check` run as commands on config/examples; the admin
listener's `/explain` must say what the command says. Known bugs are strict xfails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
import yaml
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from harness import (
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    StartProxy,
    isolated_aws_env,
    unique_bucket_name,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = REPO / "config" / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.yaml"))
CLIENT_KEY, CLIENT_SECRET = "AKIAROUTINGE2E", "routing-e2e-secret"
ADMIN_TOKEN = "admin-token-for-explain-0123456789"
_TIME = re.compile(r"time \d{4}-\d\d-\d\d \d\d:\d\d UTC")


# -- the module's proxy -----------------------------------------------------------------------


@dataclass(frozen=True)
class RoutingEnv:
    proxy: ProxyProcess
    config: Path
    lakefs: MotoBackend  # moto with signature checks: raw/* and curated/* parts, renamed bucket
    minio: MotoBackend  # plain moto: the rest of each split bucket, reference buckets
    renamed: str  # client bucket name, whole bucket renamed ...
    renamed_store: str  # ... to this bucket of `lakefs`, keys under main/
    new_mapped: str  # client bucket name, created through the proxy ...
    new_store: str  # ... as this bucket of `minio`
    clients: dict[str, BaseClient] = field(default_factory=dict)  # made once: boto3 is slow at it

    def _cached(self, name: str, make: Callable[[], BaseClient]) -> BaseClient:
        if name not in self.clients:
            self.clients[name] = make()
        return self.clients[name]

    def client(self) -> BaseClient:
        """The proxy's client."""
        return self._cached("proxy", lambda: self.proxy.client(CLIENT_KEY, CLIENT_SECRET))

    def direct(self, store: MotoBackend) -> BaseClient:
        """A client straight to one moto server."""
        return self._cached(store.name, store.client)


def _backend(store: MotoBackend) -> dict[str, str]:
    plain = not store.auth
    return {
        "endpoint": store.endpoint,
        "access_key_id": PLAIN_ACCESS_KEY_ID if plain else store.access_key_id,
        "secret_access_key": PLAIN_SECRET_ACCESS_KEY if plain else store.secret_access_key,
    }


@pytest.fixture(scope="module")
def routing_env(
    moto_auth: MotoBackend, moto_plain: MotoBackend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RoutingEnv]:
    directory = tmp_path_factory.mktemp("routing")
    renamed, renamed_store = unique_bucket_name("renamed"), unique_bucket_name("store")
    new_mapped, new_store = unique_bucket_name("newmapped"), unique_bucket_name("newstore")
    document = {
        "router": {"admin_token": ADMIN_TOKEN},
        "backends": {"lakefs": _backend(moto_auth), "minio": _backend(moto_plain)},
        "clients": [
            {"name": "spark", "access_key_id": CLIENT_KEY, "secret_access_key": CLIENT_SECRET}
        ],
        "routing": {
            "rules": [
                # split-bucket.yaml's rules for any bucket prop-*, the parts of a bucket kept
                # apart by their backend prefixes instead of their mapped_bucket names.
                {
                    "pattern": "prop-*",
                    "key_pattern": "raw/*",
                    "target": "lakefs",
                    "mapped_prefix": "main",
                },
                {
                    "pattern": "prop-*",
                    "key_pattern": "curated/*",
                    "target": "lakefs",
                    "mapped_prefix": "datalake",
                },
                {"pattern": "prop-*", "target": "minio"},
                {
                    "pattern": renamed,
                    "target": "lakefs",
                    "mapped_bucket": renamed_store,
                    "mapped_prefix": "main",
                },
                {"pattern": new_mapped, "target": "minio", "mapped_bucket": new_store},
            ],
            "default_target": "minio",
        },
    }
    config = directory / "routing.yaml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    moto_auth.client().create_bucket(Bucket=renamed_store)
    with ProxyProcess(config, directory, log_level="info") as proxy:
        yield RoutingEnv(
            proxy,
            config,
            moto_auth,
            moto_plain,
            renamed,
            renamed_store,
            new_mapped,
            new_store,
        )


# -- 1. merged listings equal one plain bucket's ------------------------------------------------

# Heads hit each rule (raw/*, curated/*) and the names around them: "raw" and "raw-…" belong to
# the minio part, "-" (0x2d) and "0" (0x30) sort either side of "/" (0x2f), "é" after ASCII.
_HEADS = ("raw/", "raw/", "curated/", "curated/", "raw", "ra", "curated", "cur", "a/", "b-", "é/")
_TAIL = st.lists(st.sampled_from(["a", "b", "a-", "-", "0", "é"]), min_size=1, max_size=3)
_KEY = st.builds(
    lambda head, tail, folder: head + "/".join(tail) + ("/" if folder else ""),
    st.sampled_from(_HEADS),
    _TAIL,
    st.booleans(),
)
_PREFIXES = ("", "r", "ra", "raw", "raw/", "raw/a", "c", "curated/", "curated/a/", "a", "b-", "é")
# Objects a backend holds that no client of the split bucket may see: in the minio part under
# keys the raw/curated rules own, in the lakefs bucket outside both rules' backend prefixes.
_STRAYS_MINIO = ("raw/stray", "raw/x/stray", "curated/stray")
_STRAYS_LAKEFS = ("stray", "mainx/stray", "datalakes", "zz/stray")


def _listing_args(bucket: str, prefix: str, delimiter: str) -> dict[str, Any]:
    args: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if delimiter:
        args["Delimiter"] = delimiter
    return args


def _objects(page: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [(o["Key"], o["Size"], o["ETag"]) for o in page.get("Contents", [])]


def _prefixes(page: dict[str, Any]) -> list[str]:
    return [p["Prefix"] for p in page.get("CommonPrefixes", [])]


def pages_v2(client: BaseClient, bucket: str, prefix: str, delimiter: str, size: int) -> list:
    args = {**_listing_args(bucket, prefix, delimiter), "MaxKeys": size}
    pages = []
    while True:
        page = client.list_objects_v2(**args)
        pages.append((_objects(page), _prefixes(page), page["KeyCount"], page["IsTruncated"]))
        if not page["IsTruncated"]:
            return pages
        assert len(pages) <= 100, "pagination does not end"
        args["ContinuationToken"] = page["NextContinuationToken"]


def pages_v1(client: BaseClient, bucket: str, prefix: str, delimiter: str, size: int) -> list:
    args = {**_listing_args(bucket, prefix, delimiter), "MaxKeys": size}
    pages = []
    while True:
        page = client.list_objects(**args)
        objects, prefixes = _objects(page), _prefixes(page)
        pages.append((objects, prefixes, page["IsTruncated"]))
        if not page["IsTruncated"]:
            return pages
        assert len(pages) <= 100, "pagination does not end"
        # NextMarker comes with a delimiter; without one the last key is the marker.
        args["Marker"] = page.get("NextMarker") or max(
            [o[0] for o in objects] + prefixes, default=""
        )


def versions(client: BaseClient, bucket: str, prefix: str, delimiter: str) -> tuple:
    """One ListObjectVersions page; version ids differ between stores, so "null" or "an id"."""
    page = client.list_object_versions(**_listing_args(bucket, prefix, delimiter))

    def version_id(entry: dict[str, Any]) -> str:
        return "null" if entry["VersionId"] == "null" else "an id"

    listed = [
        (v["Key"], version_id(v), v["IsLatest"], v["Size"], v["ETag"])
        for v in page.get("Versions", [])
    ]
    markers = [(m["Key"], version_id(m), m["IsLatest"]) for m in page.get("DeleteMarkers", [])]
    # Compared as a set: their order across parts is test_delete_markers_merge_in_key_order's.
    return listed, sorted(markers), _prefixes(page), page["IsTruncated"]


def _put_all(client: BaseClient, bucket: str, keys: Sequence[str], copies: int = 1) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda k: client.put_object(Bucket=bucket, Key=k, Body=k.encode() * copies), keys
            )
        )


def _delete_all(client: BaseClient, bucket: str, keys: Sequence[str]) -> None:
    if keys:
        answer = client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]}
        )
        assert sorted(d["Key"] for d in answer["Deleted"]) == sorted(keys)


_RICH = frozenset(
    {"raw", "raw-", "raw0", "raw/", "raw/a", "raw/a/b", "raw/b/", "raw/é", "ra", "curated",
     "curated/a/é", "curated/b", "curated-", "a/b", "a/c/", "b-a", "é/a", "-"}
)  # fmt: skip


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    keys=st.frozensets(_KEY, max_size=24),
    delimiter=st.sampled_from(["/", ""]),
    page_size=st.integers(1, 7),
    # A prefix of its own, or (i, j): the first j characters of the i-th key.
    prefix=st.sampled_from(_PREFIXES) | st.tuples(st.integers(0, 99), st.integers(0, 99)),
    versioned=st.booleans(),
    # After the first writes, every key whose index is `churn` mod 3 is written again, and
    # every key whose index is `churn` mod 4 deleted (a delete marker if versioned).
    churn=st.integers(0, 11),
)
@example(keys=_RICH, delimiter="/", page_size=2, prefix="", versioned=False, churn=0)
@example(keys=_RICH, delimiter="", page_size=3, prefix="ra", versioned=True, churn=1)
@example(keys=_RICH, delimiter="/", page_size=1, prefix="raw/", versioned=True, churn=2)
def test_split_bucket_listings_equal_one_plain_bucket(
    routing_env: RoutingEnv,
    keys: frozenset[str],
    delimiter: str,
    page_size: int,
    prefix: str | tuple[int, int],
    versioned: bool,
    churn: int,
) -> None:
    env = routing_env
    client, reference, lakefs = env.client(), env.direct(env.minio), env.direct(env.lakefs)
    bucket, plain = unique_bucket_name("prop"), unique_bucket_name("ref")
    client.create_bucket(Bucket=bucket)  # creates the bucket in every part's store
    reference.create_bucket(Bucket=plain)
    if versioned:
        for store, name in ((reference, bucket), (lakefs, bucket), (reference, plain)):
            store.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    ordered = sorted(keys)
    if isinstance(prefix, tuple):
        name = ordered[prefix[0] % len(ordered)] if ordered else ""
        prefix = name[: prefix[1] % (len(name) + 1)]
    rewritten = [k for i, k in enumerate(ordered) if i % 3 == churn % 3]
    deleted = [k for i, k in enumerate(ordered) if i % 4 == churn % 4]
    if versioned and delimiter:
        # moto lists a common prefix whose keys all end in a delete marker (S3 does not), and
        # the proxy relays what each part's store says: no reference to compare with.
        deleted = []
    for target, name in ((client, bucket), (reference, plain)):
        _put_all(target, name, ordered)
        _put_all(target, name, rewritten, copies=2)
        _delete_all(target, name, deleted)
    for stray in _STRAYS_MINIO:
        reference.put_object(Bucket=bucket, Key=stray, Body=b"stray")
    for stray in _STRAYS_LAKEFS:
        lakefs.put_object(Bucket=bucket, Key=stray, Body=b"stray")

    with ThreadPoolExecutor(6) as pool:
        jobs = {
            (kind, side): pool.submit(
                fetch, c, b, prefix, delimiter, *((page_size,) if kind != "versions" else ())
            )
            for kind, fetch in (("v2", pages_v2), ("v1", pages_v1), ("versions", versions))
            for side, c, b in (("proxy", client, bucket), ("plain", reference, plain))
        }
        got = {name: job.result() for name, job in jobs.items()}
    assert got["v2", "proxy"] == got["v2", "plain"]
    assert got["versions", "proxy"] == got["versions", "plain"]
    # ListObjects v1 with markers pages exactly like v2. moto's own v1 is no reference: with a
    # delimiter it does not count common prefixes against max-keys (6 entries for max-keys 2).
    assert got["v1", "proxy"] == [(o, p, truncated) for o, p, _, truncated in got["v2", "plain"]]
    if not delimiter:
        assert got["v1", "proxy"] == got["v1", "plain"]
        shown = [o[0] for page in got["v2", "proxy"] for o in page[0]]
        live = sorted(set(ordered) - set(deleted))
        assert shown == [k for k in live if k.startswith(prefix)]
    assert "stray" not in str([got[kind, "proxy"] for kind in ("v2", "v1", "versions")])
    everything = client.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in everything.get("Contents", [])] == sorted(
        set(ordered) - set(deleted)
    )  # no stray, no duplicate


def test_delete_markers_merge_in_key_order(routing_env: RoutingEnv) -> None:
    env = routing_env
    client = env.client()
    bucket = unique_bucket_name("prop")
    client.create_bucket(Bucket=bucket)
    for store in (env.direct(env.minio), env.direct(env.lakefs)):
        store.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for key in ("raw", "raw/a", "raw0"):  # minio, lakefs, minio
        client.put_object(Bucket=bucket, Key=key, Body=b".")
    for key in ("raw", "raw/a"):
        client.delete_object(Bucket=bucket, Key=key)
    listed = client.list_object_versions(Bucket=bucket)
    assert [v["Key"] for v in listed["Versions"]] == ["raw", "raw/a", "raw0"]
    assert [m["Key"] for m in listed["DeleteMarkers"]] == ["raw", "raw/a"]


# -- 2. explain and check on the command line -------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "s3router_proxy", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=isolated_aws_env(os.environ, Path("/nonexistent")),
        check=False,
    )


def rule_lines(path: Path) -> dict[str, int]:
    """Where each rule starts in a config: {"routing.rules[1]": 31, "profiles.minio": 23}."""
    lines = path.read_text().splitlines()
    found: dict[str, int] = {}
    rules = [n for n, line in enumerate(lines, 1) if re.match(r"\s*- pattern:", line)]
    found.update({f"routing.rules[{i}]": n for i, n in enumerate(rules)})
    if "profiles:" in lines:
        for n, line in enumerate(
            lines[lines.index("profiles:") + 1 :], lines.index("profiles:") + 2
        ):
            if not line.startswith(" "):
                break
            if re.match(r"  \w[\w-]*:\s*$", line):
                found[f"profiles.{line.strip().rstrip(':')}"] = n
    return found


@dataclass(frozen=True)
class Case:
    example: str
    method: str
    url: str
    headers: tuple[str, ...]
    tried: tuple[tuple[str, str | None], ...]  # (rule, "no:" reason fragment, or None: MATCH)
    backend: str
    bucket: str
    key: str


CASES = [
    Case(
        "split-bucket",
        "GET",
        "s3://datalake/raw/2024/a.json",
        ("Content-Type: image/png",),
        (("routing.rules[0]", None),),
        "lakefs",
        "lake-repo",
        "main/2024/a.json",
    ),
    Case(
        "split-bucket",
        "GET",
        "s3://datalake/curated/b.parquet",
        ("Content-Type: image/png",),
        (
            ("routing.rules[0]", "key 'curated/b.parquet' does not match key_pattern 'raw/*'"),
            ("routing.rules[1]", None),
        ),
        "minio",
        "curated",
        "datalake/b.parquet",
    ),
    Case(
        "split-bucket",
        "PUT",
        "s3://datalake/README",
        (),
        (
            ("routing.rules[0]", "key 'README' does not match key_pattern 'raw/*'"),
            ("routing.rules[1]", "key 'README' does not match key_pattern 'curated/*'"),
            ("routing.rules[2]", None),
        ),
        "minio",
        "datalake",
        "README",
    ),
    Case(
        "boto-s3-router-profiles",
        "GET",
        "s3://example-bucket/team2/obj2",
        (),
        (("profiles.minio", None),),
        "minio",
        "minio-bucket",
        "data/team2/obj2",
    ),
    Case(
        "boto-s3-router-profiles",
        "GET",
        "s3://example-bucket/team1/obj1",
        (),
        (("profiles.minio", "key 'team1/obj1' does not match key_pattern 'team2/*'"),),
        "default",
        "example-bucket",
        "team1/obj1",
    ),
    Case(
        "conditions",
        "PUT",
        "s3://uploads/inbox/cat.png",
        ("Content-Type: image/png", "Content-Length: 1000"),
        (("routing.rules[0]", None),),
        "media",
        "uploads",
        "inbox/cat.png",
    ),
    Case(
        "conditions",
        "PUT",
        "s3://uploads/inbox/notes.txt",
        ("Content-Type: text/plain", "Content-Length: 1000"),
        (
            ("routing.rules[0]", "Content-Type 'text/plain' is not one of"),
            ("routing.rules[1]", "size 1000 is below min_size 1000000000"),
            ("routing.rules[2]", "bucket 'uploads' does not match pattern 'batch-*'"),
        ),
        "main",
        "uploads",
        "inbox/notes.txt",
    ),
    Case(
        "conditions",
        "GET",
        "s3://uploads/inbox/cat.png",
        ("Content-Type: image/png",),
        (
            ("routing.rules[0]", "GET GetObject (group read) is not one of operations"),
            ("routing.rules[1]", "is not one of operations [PutObject]"),
            ("routing.rules[2]", "does not match pattern 'batch-*'"),
        ),
        "main",
        "uploads",
        "inbox/cat.png",
    ),
    Case(
        "reads-s3-writes-lakefs",
        "PUT",
        "s3://critical-data-x/a.csv",
        (),
        (
            ("routing.rules[0]", "PUT PutObject (group write) is not one of operations"),
            ("routing.rules[1]", None),
        ),
        "lakefs",
        "critical-data-x",
        "main/a.csv",
    ),
    Case(
        "reference",
        "GET",
        "s3://lakefs-repo/main/a.csv",
        (),
        (("routing.rules[0]", None),),
        "lakefs",
        "lakefs-repo",
        "main/a.csv",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.example}:{c.method}:{c.url[5:]}" for c in CASES])
def test_explain_names_rule_backend_names_and_why_earlier_rules_missed(case: Case) -> None:
    config = EXAMPLES_DIR / f"{case.example}.yaml"
    args = ["explain", "--config", str(config), case.method, case.url]
    for header in case.headers:
        args += ["-H", header]
    result = run_cli(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{case.method} {case.url}  (")
    where = rule_lines(config)
    verdicts = [
        (line.split(" (", 1)[0].strip(), lines[n + 1].strip())
        for n, line in enumerate(lines)
        if re.match(r"  (routing\.rules\[\d+\]|profiles\.\S+) \(", line)
    ]
    assert [label for label, _ in verdicts] == [label for label, _ in case.tried], result.stdout
    for (label, verdict), (_, reason) in zip(verdicts, case.tried, strict=True):
        if reason is None:
            assert verdict == "MATCH", result.stdout
        else:
            assert verdict.startswith("no: ") and reason in verdict, result.stdout
        assert f"  {label} (line {where[label]}, " in result.stdout
    if all(reason is not None for _, reason in case.tried):
        assert "  no rule matched: default_target" in lines
    assert f"  backend: {case.backend}" in lines
    assert f"  backend bucket: {case.bucket}" in lines
    assert f"  backend key: {case.key}" in lines


def test_explain_of_an_unrouted_request_exits_1(tmp_path: Path) -> None:
    config = tmp_path / "no-default.yaml"
    config.write_text(
        "backends:\n"
        "  a: {endpoint: 'http://127.0.0.1:9', access_key_id: k, secret_access_key: s}\n"
        "  b: {endpoint: 'http://127.0.0.1:9', access_key_id: k, secret_access_key: s}\n"
        "routing:\n"
        "  rules:\n"
        "    - pattern: 'only-*'\n"
        "      target: a\n"
    )
    result = run_cli("explain", "--config", str(config), "GET", "s3://other/k")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no: bucket 'other' does not match pattern 'only-*'" in result.stdout
    assert "  not routed: NoSuchBucket" in result.stdout
    assert "backend:" not in result.stdout


SHADOWED = """\
backends:
  a: {endpoint: "http://127.0.0.1:9", access_key_id: k, secret_access_key: s}
  b: {endpoint: "http://127.0.0.1:9", access_key_id: k, secret_access_key: s}
routing:
  rules:
    - pattern: "*"
      target: a
    - pattern: "logs-*"
      key_pattern: "2024/*"
      target: b
  default_target: a
"""

OVERLAPPING = """\
backends:
  a: {endpoint: "http://127.0.0.1:9", access_key_id: k, secret_access_key: s}
  b: {endpoint: "http://127.0.0.1:9", access_key_id: k, secret_access_key: s}
routing:
  rules:
    - pattern: "lake"
      key_pattern: "raw/*"
      target: a
    - pattern: "lake"
      key_pattern: "*/2024/*"
      target: b
  default_target: a
"""


def test_check_warns_about_a_rule_shadowed_by_a_catch_all(tmp_path: Path) -> None:
    config = tmp_path / "shadowed.yaml"
    config.write_text(SHADOWED)
    result = run_cli("check", "--config", str(config))
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "line 8: routing.rules[1]: warning: can never match: routing.rules[0] (line 6) comes first"
        in result.stdout
    )
    assert "1 warning(s)" in result.stdout
    assert "routing.rules[0]: warning" not in result.stdout


def test_check_warns_about_an_overlapping_split(tmp_path: Path) -> None:
    config = tmp_path / "overlap.yaml"
    config.write_text(OVERLAPPING)
    result = run_cli("check", "--config", str(config))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "line 9: routing.rules[1]: warning: overlapping split" in result.stdout


def test_check_refuses_an_unknown_target(tmp_path: Path) -> None:
    config = tmp_path / "unknown.yaml"
    config.write_text(SHADOWED.replace("target: b", "target: c"))
    result = run_cli("check", "--config", str(config))
    assert result.returncode == 2
    assert "unknown backend 'c'" in result.stderr
    assert ":10: " in result.stderr  # the line of the bad target


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_check_passes_every_example(example: Path) -> None:
    result = run_cli("check", "--config", str(example))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{example}: valid;" in result.stdout
    assert "0 warning(s)" in result.stdout
    assert ": warning: " not in result.stdout


# -- 3. the admin /explain endpoint -----------------------------------------------------------


def admin_get(base: str, path: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(base + path)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except urllib.error.URLError:
            if time.monotonic() > deadline:  # the admin listener may open just after the data one
                raise
            time.sleep(0.05)


def _without_clock(text: str) -> str:
    assert _TIME.search(text), text
    return _TIME.sub("time <now>", text).strip()


@pytest.mark.parametrize(
    ("method", "url", "headers"),
    [
        ("PUT", "s3://prop-x/raw/2024/a.json", ()),
        ("GET", "s3://prop-x/README", ("Content-Type: image/png",)),
        ("GET", "s3://prop-x", ()),
    ],
)
def test_admin_explain_needs_the_token_and_says_what_the_cli_says(
    routing_env: RoutingEnv, method: str, url: str, headers: tuple[str, ...]
) -> None:
    base = routing_env.proxy.admin_endpoint
    query = "/explain?" + urlencode(
        [("method", method), ("url", url), *(("header", h) for h in headers)]
    )
    assert admin_get(base, query)[0] == 401
    assert admin_get(base, query, "wrong-token")[0] == 401
    status, text = admin_get(base, query, ADMIN_TOKEN)
    assert status == 200, text
    args = ["explain", "--config", str(routing_env.config), method, url]
    for header in headers:
        args += ["-H", header]
    cli = run_cli(*args)
    assert cli.returncode == 0, cli.stderr
    assert _without_clock(text) == _without_clock(cli.stdout)
    assert "backend: " in text


@pytest.mark.parametrize(
    ("method", "url", "says"),
    [
        ("FETCH", "s3://prop-x/a", "not an HTTP method S3 uses"),
        ("GET", "http://prop-x/a", "is an HTTP URL"),
        ("GET", "s3://", "names no bucket"),
    ],
)
def test_admin_explain_refuses_what_the_cli_refuses(
    routing_env: RoutingEnv, method: str, url: str, says: str
) -> None:
    query = "/explain?" + urlencode([("method", method), ("url", url)])
    status, text = admin_get(routing_env.proxy.admin_endpoint, query, ADMIN_TOKEN)
    assert status == 400, text
    assert says in text
    cli = run_cli("explain", "--config", str(routing_env.config), method, url)
    assert cli.returncode == 2
    assert says in cli.stderr


def test_admin_explain_is_off_without_a_token(
    start_proxy: StartProxy, moto_plain: MotoBackend
) -> None:
    proxy = start_proxy(
        "backends:\n"
        f"  s3: {{endpoint: '{moto_plain.endpoint}', access_key_id: testing, "
        "secret_access_key: testing}\n"
        "routing:\n"
        "  default_target: s3\n",
        log_level="info",
    )
    status, text = admin_get(proxy.admin_endpoint, "/explain?method=PUT&url=s3://bucket/key")
    assert status == 404
    assert "admin_token" in text
    status, _ = admin_get(proxy.admin_endpoint, "/explain?method=PUT&url=s3://b/k", "anything")
    assert status == 404


# -- 4. ListMultipartUploads on a renamed bucket ----------------------------------------------


def _backend_query(entries: list, operation_query: str) -> dict[str, list[str]]:
    found = [e for e in entries if e.method == "GET" and operation_query in e.query]
    assert len(found) == 1, [e.line for e in entries]
    return parse_qs(found[0].query, keep_blank_values=True)


def test_list_multipart_uploads_on_a_renamed_bucket(routing_env: RoutingEnv) -> None:
    env = routing_env
    client, store = env.client(), env.direct(env.lakefs)
    bucket = env.renamed
    names = ["a/one", "a/two", "a/two", "b/three", "c"]
    created = sorted(
        (name, client.create_multipart_upload(Bucket=bucket, Key=name)["UploadId"])
        for name in names
    )
    backend = store.list_multipart_uploads(Bucket=env.renamed_store)
    backend_ids = {u["Key"]: u["UploadId"] for u in backend["Uploads"]}
    assert sorted(u["Key"] for u in backend["Uploads"]) == sorted("main/" + n for n in names)

    listed = client.list_multipart_uploads(Bucket=bucket)
    assert listed["Bucket"] == bucket
    uploads = sorted((u["Key"], u["UploadId"]) for u in listed["Uploads"])
    assert uploads == created  # the client's names, the ids CreateMultipartUpload gave
    assert env.renamed_store not in str(listed) and "main/" not in str(listed)

    mark = env.lakefs.request_count()
    under_a = client.list_multipart_uploads(Bucket=bucket, Prefix="a/")
    assert under_a.get("Prefix", "a/") == "a/"  # moto leaves Prefix out; S3 echoes it
    assert sorted(u["Key"] for u in under_a["Uploads"]) == ["a/one", "a/two", "a/two"]
    assert _backend_query(env.lakefs.requests_since(mark), "uploads")["prefix"] == ["main/a/"]
    nothing = client.list_multipart_uploads(Bucket=bucket, Prefix="zz/")
    assert nothing.get("Uploads", []) == []

    # Resuming after ("a/one", its id): the backend gets its own key and its own upload id.
    first_key, first_id = uploads[0]
    mark = env.lakefs.request_count()
    page = client.list_multipart_uploads(
        Bucket=bucket, KeyMarker=first_key, UploadIdMarker=first_id, MaxUploads=2
    )
    query = _backend_query(env.lakefs.requests_since(mark), "uploads")
    assert query["key-marker"] == ["main/a/one"]
    assert query["upload-id-marker"] == [backend_ids["main/a/one"]]
    assert query["max-uploads"] == ["2"]
    for upload in page.get("Uploads", []):  # moto ignores the markers: check the names only
        assert (upload["Key"], upload["UploadId"]) in created
    assert page.get("NextKeyMarker", "") in ("", *names)

    # Every listed id works: one upload completed, the others aborted.
    key, upload_id = uploads[0]
    etag = client.upload_part(
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"part"
    )["ETag"]
    done = client.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert (done["Bucket"], done["Key"]) == (bucket, key)
    assert env.renamed_store not in done.get("Location", "")
    assert store.get_object(Bucket=env.renamed_store, Key="main/a/one")["Body"].read() == b"part"
    for key, upload_id in uploads[1:]:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert store.list_multipart_uploads(Bucket=env.renamed_store).get("Uploads", []) == []


def test_upload_id_marker_without_key_marker_is_ignored(routing_env: RoutingEnv) -> None:
    env = routing_env
    client = env.client()
    upload_id = client.create_multipart_upload(Bucket=env.renamed, Key="lone/upload")["UploadId"]
    try:
        listed = client.list_multipart_uploads(Bucket=env.renamed, UploadIdMarker=upload_id)
        assert ("lone/upload", upload_id) in [
            (u["Key"], u["UploadId"]) for u in listed.get("Uploads", [])
        ]
    finally:
        client.abort_multipart_upload(Bucket=env.renamed, Key="lone/upload", UploadId=upload_id)


# -- 5. Location of CreateBucket on a mapped bucket name --------------------------------------


def test_create_bucket_on_a_mapped_name_shows_no_backend_name(routing_env: RoutingEnv) -> None:
    env = routing_env
    response = env.client().create_bucket(Bucket=env.new_mapped)
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert env.new_store not in headers.get("location", "")
    assert env.new_store not in response.get("Location", "")
    env.direct(env.minio).head_bucket(Bucket=env.new_store)  # created under the backend's name
    with pytest.raises(ClientError):
        env.direct(env.minio).head_bucket(Bucket=env.new_mapped)
    env.client().head_bucket(Bucket=env.new_mapped)


def test_create_bucket_on_a_mapped_name_answers_with_the_clients_location(
    routing_env: RoutingEnv,
) -> None:
    env = routing_env
    bucket = unique_bucket_name("prop")  # split over both stores, partly renamed
    plain = unique_bucket_name("unmapped")  # routed unchanged: moto's own answer is relayed
    assert env.client().create_bucket(Bucket=plain).get("Location") == f"/{plain}"
    assert env.client().create_bucket(Bucket=bucket).get("Location") == f"/{bucket}"


# -- ListMultipartUploads on a bucket split by key rules ----------------------------------------


def test_list_multipart_uploads_on_a_split_bucket_shows_every_part(
    routing_env: RoutingEnv,
) -> None:
    env = routing_env
    client = env.client()
    bucket = unique_bucket_name("prop")
    client.create_bucket(Bucket=bucket)
    ids = {
        key: client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        for key in ("raw/x", "curated/y", "other")
    }
    env.direct(env.minio).create_multipart_upload(Bucket=bucket, Key="raw/stray")
    try:
        listed = client.list_multipart_uploads(Bucket=bucket)
        assert sorted((u["Key"], u["UploadId"]) for u in listed.get("Uploads", [])) == sorted(
            ids.items()
        )
        under_raw = client.list_multipart_uploads(Bucket=bucket, Prefix="raw/")
        assert [u["Key"] for u in under_raw.get("Uploads", [])] == ["raw/x"]
    finally:
        for key, upload_id in ids.items():
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
