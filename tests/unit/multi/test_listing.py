"""Merged listings: one logical bucket split over backends lists exactly like one plain bucket.

The backends here are an in-memory model of S3's listing semantics over dicts (`FakeS3`); it is
the reference the merge is compared with, not a stand-in for a backend inside the proxy. The
property tests write random keys through the routing rules (plus stale and foreign junk straight
into the backend buckets), then page through the merged listing and through a plain bucket that
holds the logical keys, and require the same pages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote_plus
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from s3router_proxy.multi.listing import merged_list
from s3router_proxy.multi.listparams import decode_token
from s3router_proxy.multi.partcursor import Fetch, ListingSource
from s3router_proxy.routing.bucketparts import Part, routes_for_bucket
from s3router_proxy.routing.facts import RequestFacts
from s3router_proxy.routing.rules import MappedNames, Rule, RuleMatch, compile_rule, match_route
from s3router_proxy.s3.errors import S3Error

SECRET = b"test-secret"
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"

# -- a model of S3 listings -----------------------------------------------------------------------


@dataclass
class Version:
    version_id: str
    delete_marker: bool = False


@dataclass
class FakeBucket:
    objects: dict[str, list[Version]] = field(default_factory=dict)  # newest version first

    def put(self, key: str, version_id: str = "null", *, delete_marker: bool = False) -> None:
        self.objects.setdefault(key, []).insert(0, Version(version_id, delete_marker))

    def current_keys(self) -> list[str]:
        return sorted(k for k, v in self.objects.items() if not v[0].delete_marker)


def s3_entries(
    bucket: FakeBucket, prefix: str, delimiter: str, *, versions: bool
) -> list[tuple[str, bool, str | None, bool]]:
    """Every listing entry in order: (name, is_prefix, version id, is delete marker)."""
    out: list[tuple[str, bool, str | None, bool]] = []
    seen: set[str] = set()
    names = sorted(bucket.objects) if versions else bucket.current_keys()
    for key in names:
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix) :]
        if delimiter and delimiter in rest:
            common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
            if common not in seen:
                seen.add(common)
                out.append((common, True, None, False))
            continue
        if versions:
            out.extend((key, False, v.version_id, v.delete_marker) for v in bucket.objects[key])
        else:
            out.append((key, False, None, False))
    out.sort(key=lambda entry: entry[0])  # stable: versions keep their order
    return out


def s3_page(
    bucket: FakeBucket,
    *,
    prefix: str,
    delimiter: str,
    after: str,
    after_version: str | None,
    max_keys: int,
    versions: bool,
) -> tuple[list[tuple[str, bool, str | None, bool]], bool]:
    """One page after a position, S3 semantics: entries whose name sorts after it."""
    entries = s3_entries(bucket, prefix, delimiter, versions=versions)
    if after:
        kept = []
        past_marker = False
        for entry in entries:
            name, is_prefix, version_id, _ = entry
            if name < after:
                continue
            if name == after:
                if is_prefix or not versions or after_version is None:
                    continue
                if not past_marker:
                    past_marker = version_id == after_version
                    continue
            kept.append(entry)
        entries = kept
    return entries[:max_keys], len(entries) > max_keys


class FakeS3:
    """Backends by name, buckets by name; answers ListObjectsV2/ListObjectVersions as XML."""

    def __init__(self) -> None:
        self.buckets: dict[tuple[str, str], FakeBucket] = {}
        self.requests = 0

    def bucket(self, backend: str, name: str) -> FakeBucket:
        return self.buckets.setdefault((backend, name), FakeBucket())

    async def fetch(self, part: Part, query: list[tuple[str, str]]) -> bytes:
        self.requests += 1
        bucket = self.buckets.get((part.backend, part.bucket))
        if bucket is None:
            raise S3Error("NoSuchBucket")
        return self.answer(part.bucket, bucket, dict(query))

    def answer(self, name: str, bucket: FakeBucket, q: dict[str, str]) -> bytes:
        versions = "versions" in q
        encode = q.get("encoding-type") == "url"
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        max_keys = int(q.get("max-keys", "1000"))
        if versions:
            after, after_version = q.get("key-marker", ""), q.get("version-id-marker")
        else:
            token = q.get("continuation-token")
            after = token[len("T:") :] if token else q.get("start-after", "")
            after_version = None
        page, truncated = s3_page(
            bucket,
            prefix=prefix,
            delimiter=delimiter,
            after=after,
            after_version=after_version,
            max_keys=max_keys,
            versions=versions,
        )

        def enc(value: str) -> str:
            return escape(quote(value, safe="/") if encode else value)

        parts = [f"<Name>{name}</Name><Prefix>{enc(prefix)}</Prefix>"]
        if encode:
            parts.append("<EncodingType>url</EncodingType>")
        parts.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
        if truncated and page:
            last = page[-1]
            if versions:
                parts.append(f"<NextKeyMarker>{enc(last[0])}</NextKeyMarker>")
                if last[2]:
                    parts.append(f"<NextVersionIdMarker>{last[2]}</NextVersionIdMarker>")
            else:
                parts.append(f"<NextContinuationToken>T:{escape(last[0])}</NextContinuationToken>")
        for key, is_prefix, version_id, delete_marker in page:
            if is_prefix:
                continue
            if versions:
                tag = "DeleteMarker" if delete_marker else "Version"
                parts.append(
                    f"<{tag}><Key>{enc(key)}</Key><VersionId>{version_id}</VersionId>"
                    f"<IsLatest>false</IsLatest></{tag}>"
                )
            else:
                parts.append(f"<Contents><Key>{enc(key)}</Key><Size>1</Size></Contents>")
        for key, is_prefix, _, _ in page:
            if is_prefix:
                parts.append(f"<CommonPrefixes><Prefix>{enc(key)}</Prefix></CommonPrefixes>")
        root = "ListVersionsResult" if versions else "ListBucketResult"
        body = "".join(parts)
        return f'<{root} xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{body}</{root}>'.encode()


def run_merged(
    operation: str, bucket: str, query: dict[str, str], parts: Sequence[Part], fetch: Fetch
) -> bytes:
    """One merged listing of every part, as the client gets it."""
    return asyncio.run(
        merged_list(operation, bucket, query, ListingSource(parts, fetch), (SECRET,))
    )


# -- reading the merged answer --------------------------------------------------------------------


@dataclass
class Page:
    entries: list[tuple[str, bool, str | None]]  # (name, is_prefix, version id)
    truncated: bool
    root: etree._Element

    def text(self, name: str) -> str | None:
        found = self.root.find(NS + name)
        return None if found is None else (found.text or "")


def read_page(body: bytes) -> Page:
    root = etree.fromstring(body)
    encoded = (root.findtext(NS + "EncodingType") or "") == "url"

    def dec(value: str | None) -> str:
        return unquote_plus(value or "") if encoded else value or ""

    entries: list[tuple[str, bool, str | None]] = []
    for item in root:
        tag = item.tag.replace(NS, "")
        if tag in ("Contents", "Version", "DeleteMarker"):
            entries.append((dec(item.findtext(NS + "Key")), False, item.findtext(NS + "VersionId")))
    objects = list(entries)
    prefixes = [
        (dec(item.findtext(NS + "Prefix")), True, None) for item in root.iter(NS + "CommonPrefixes")
    ]
    merged = sorted(objects + prefixes, key=lambda e: e[0])  # stable for versions
    return Page(merged, root.findtext(NS + "IsTruncated") == "true", root)


def reference_pages(
    bucket: FakeBucket, kind: str, prefix: str, delimiter: str, max_keys: int
) -> list[list[tuple[str, bool, str | None]]]:
    pages = []
    after, after_version = "", None
    versions = kind == "versions"
    while True:
        page, truncated = s3_page(
            bucket,
            prefix=prefix,
            delimiter=delimiter,
            after=after,
            after_version=after_version,
            max_keys=max_keys,
            versions=versions,
        )
        pages.append([(n, p, v) for n, p, v, _ in page])
        if not truncated:
            return pages
        after, after_version = page[-1][0], page[-1][2]


async def merged_pages(
    fake: FakeS3,
    parts: Sequence[Part],
    kind: str,
    prefix: str,
    delimiter: str,
    max_keys: int,
    page_size: int,
    encode: bool,
) -> list[list[tuple[str, bool, str | None]]]:
    operation = {"v1": "ListObjects", "v2": "ListObjectsV2", "versions": "ListObjectVersions"}[kind]
    base = {"prefix": prefix, "max-keys": str(max_keys)}
    if delimiter:
        base["delimiter"] = delimiter
    if encode:
        base["encoding-type"] = "url"
    if kind == "v2":
        base["list-type"] = "2"
    pages = []
    query = dict(base)
    for _ in range(10_000):
        body = await merged_list(
            operation,
            "lb",
            query,
            ListingSource(parts, fake.fetch, page_size=page_size),
            (SECRET,),
        )
        page = read_page(body)
        assert len(page.entries) <= max_keys
        pages.append(page.entries)
        if not page.truncated:
            return pages
        assert page.entries, "a truncated page must show something"
        query = dict(base)
        if kind == "v2":
            token = page.text("NextContinuationToken")
            assert token
            query["continuation-token"] = token
        elif kind == "v1":
            marker = page.text("NextMarker")
            if delimiter:
                assert marker is not None
            last_key = [e for e in page.entries if not e[1]]
            query["marker"] = (
                unquote_plus(marker) if marker and encode else marker or last_key[-1][0]
            )
        else:
            key_marker = page.text("NextKeyMarker") or ""
            query["key-marker"] = unquote_plus(key_marker) if encode else key_marker
            version = page.text("NextVersionIdMarker")
            if version:
                query["version-id-marker"] = version
    raise AssertionError("the listing never ended")


# -- the worked example ---------------------------------------------------------------------------

EXAMPLE_RULES = (
    compile_rule(
        0,
        RuleMatch("example-bucket", key_pattern="team2/*"),
        "minio",
        names=MappedNames(bucket="minio-bucket", prefix="data/team2"),
    ),
)


def example_store() -> FakeS3:
    fake = FakeS3()
    for key in ("team2/obj2", "team2/sub/x", "team2/a"):
        route = match_route(EXAMPLE_RULES, "default", RequestFacts("PUT", "example-bucket", key))
        fake.bucket(route.backend, route.bucket).put(route.key)
    for key in ("readme", "team1/x", "team3/y", "zz"):
        route = match_route(EXAMPLE_RULES, "default", RequestFacts("PUT", "example-bucket", key))
        fake.bucket(route.backend, route.bucket).put(route.key)
    # Junk no rule routes there: a stale copy in the default bucket, foreign data in minio.
    fake.bucket("default", "example-bucket").put("team2/stale")
    fake.bucket("minio", "minio-bucket").put("data/other/thing")
    fake.bucket("minio", "minio-bucket").put("data/team2")
    return fake


def example_list(query: dict[str, str], operation: str = "ListObjectsV2") -> Page:
    fake = example_store()
    parts = routes_for_bucket(
        EXAMPLE_RULES,
        "default",
        RequestFacts("GET", "example-bucket", "", operation=operation),
        query.get("prefix", ""),
    )
    body = run_merged(operation, "example-bucket", query, parts, fake.fetch)
    return read_page(body)


def names(page: Page) -> list[str]:
    return [name for name, _, _ in page.entries]


def test_example_bucket_lists_as_one() -> None:
    page = example_list({"list-type": "2"})
    assert names(page) == [
        "readme",
        "team1/x",
        "team2/a",
        "team2/obj2",
        "team2/sub/x",
        "team3/y",
        "zz",
    ]
    assert page.text("Name") == "example-bucket"
    assert page.text("KeyCount") == "7"
    assert not page.truncated


def test_example_bucket_with_delimiter() -> None:
    page = example_list({"list-type": "2", "delimiter": "/"})
    assert page.entries == [
        ("readme", False, None),
        ("team1/", True, None),
        ("team2/", True, None),
        ("team3/", True, None),
        ("zz", False, None),
    ]
    inner = example_list({"list-type": "2", "delimiter": "/", "prefix": "team2/"})
    assert inner.entries == [
        ("team2/a", False, None),
        ("team2/obj2", False, None),
        ("team2/sub/", True, None),
    ]


def test_botocore_reads_merged_listings() -> None:
    import botocore.session
    from botocore import handlers
    from botocore.parsers import RestXMLParser

    model = botocore.session.get_session().get_service_model("s3")
    cases = [
        ("ListObjectsV2", {"encoding-type": "url", "delimiter": "/", "max-keys": "2"}),
        ("ListObjects", {"encoding-type": "url", "delimiter": "/", "max-keys": "2"}),
        ("ListObjectVersions", {"encoding-type": "url", "max-keys": "2"}),
    ]
    for operation, query in cases:
        page = example_list(query, operation)
        body = etree.tostring(page.root)
        shape = model.operation_model(operation).output_shape
        parsed = RestXMLParser().parse({"body": body, "headers": {}, "status_code": 200}, shape)
        decode = {
            "ListObjects": handlers.decode_list_object,
            "ListObjectsV2": handlers.decode_list_object_v2,
            "ListObjectVersions": handlers.decode_list_object_versions,
        }[operation]
        decode(parsed, context={"encoding_type_auto_set": True})
        assert parsed["Name"] == "example-bucket"
        assert parsed["IsTruncated"] is True
        if operation == "ListObjectsV2":
            assert [c["Key"] for c in parsed["Contents"]] == ["readme"]
            assert [p["Prefix"] for p in parsed["CommonPrefixes"]] == ["team1/"]
            assert parsed["KeyCount"] == 2 and parsed["NextContinuationToken"]
        elif operation == "ListObjects":
            assert parsed["NextMarker"] == "team1/"
        else:
            assert [v["Key"] for v in parsed["Versions"]] == ["readme", "team1/x"]
            assert parsed["NextKeyMarker"] == "team1/x"


def test_example_pagination_with_tokens() -> None:
    fake = example_store()
    parts = routes_for_bucket(
        EXAMPLE_RULES,
        "default",
        RequestFacts("GET", "example-bucket", "", operation="ListObjectsV2"),
        "",
    )
    seen: list[str] = []
    query = {"list-type": "2", "max-keys": "2"}
    while True:
        body = run_merged("ListObjectsV2", "example-bucket", query, parts, fake.fetch)
        page = read_page(body)
        seen.extend(names(page))
        if not page.truncated:
            break
        token = page.text("NextContinuationToken") or ""
        assert "data/" not in token and "minio" not in token  # nothing of the backends leaks
        query = {"list-type": "2", "max-keys": "2", "continuation-token": token}
    assert seen == sorted(set(seen)) and len(seen) == 7


def test_no_leak_of_unmapped_backend_keys() -> None:
    page = example_list({"list-type": "2", "prefix": "team2/"})
    assert "team2/stale" not in names(page)
    assert all(not name.startswith("data/") for name in names(page))


def test_missing_backend_bucket_is_an_empty_part() -> None:
    fake = example_store()
    del fake.buckets[("minio", "minio-bucket")]
    parts = routes_for_bucket(
        EXAMPLE_RULES,
        "default",
        RequestFacts("GET", "example-bucket", "", operation="ListObjectsV2"),
        "",
    )
    body = run_merged("ListObjectsV2", "example-bucket", {}, parts, fake.fetch)
    assert "team2/a" not in names(read_page(body))
    fake.buckets.clear()
    with pytest.raises(S3Error) as caught:
        run_merged("ListObjectsV2", "example-bucket", {}, parts, fake.fetch)
    assert caught.value.code == "NoSuchBucket"


def test_no_parts_is_no_such_bucket() -> None:
    with pytest.raises(S3Error) as caught:
        asyncio.run(
            merged_list("ListObjects", "b", {}, ListingSource([], FakeS3().fetch), (SECRET,))
        )
    assert caught.value.code == "NoSuchBucket"


def test_v1_next_marker_only_with_delimiter() -> None:
    page = example_list({"max-keys": "2"}, "ListObjects")
    assert page.truncated and page.text("NextMarker") is None
    assert page.text("Marker") == ""
    page = example_list({"max-keys": "2", "delimiter": "/"}, "ListObjects")
    assert page.text("NextMarker") == "team1/"


def test_encoding_type_url_round_trip() -> None:
    fake = FakeS3()
    rules = (
        compile_rule(
            0, RuleMatch("lb", key_pattern="a b/*"), "one", names=MappedNames(prefix="x+y")
        ),
    )
    for key in ("a b/c+d", "a b/é%", "plain"):
        try:
            route = match_route(rules, "dflt", RequestFacts("PUT", "lb", key))
        except S3Error:  # the key maps to an empty backend key: S3 refuses it too
            continue
        fake.bucket(route.backend, route.bucket).put(route.key)
    parts = routes_for_bucket(
        rules, "dflt", RequestFacts("GET", "lb", "", operation="ListObjectsV2"), ""
    )
    body = run_merged("ListObjectsV2", "lb", {"encoding-type": "url"}, parts, fake.fetch)
    page = read_page(body)
    assert names(page) == ["a b/c+d", "a b/é%", "plain"]
    raw = [e.text for e in page.root.iter(NS + "Key")]
    assert raw[0] == "a+b/c%2Bd"
    plain = run_merged("ListObjectsV2", "lb", {}, parts, fake.fetch)
    assert [e.text for e in etree.fromstring(plain).iter(NS + "Key")] == [
        "a b/c+d",
        "a b/é%",
        "plain",
    ]


def test_collapsed_common_prefix_only_when_non_empty() -> None:
    rules = (compile_rule(0, RuleMatch("lb", key_pattern="deep/er/*"), "one"),)
    fake = FakeS3()
    fake.bucket("dflt", "lb").put("top")
    parts = routes_for_bucket(
        rules, "dflt", RequestFacts("GET", "lb", "", operation="ListObjectsV2"), ""
    )
    query = {"delimiter": "/"}
    body = run_merged("ListObjectsV2", "lb", query, parts, fake.fetch)
    assert read_page(body).entries == [("top", False, None)]
    fake.bucket("one", "lb").put("deep/er/x")
    body = run_merged("ListObjectsV2", "lb", query, parts, fake.fetch)
    assert read_page(body).entries == [("deep/", True, None), ("top", False, None)]


def test_max_keys_zero_and_over_limit() -> None:
    page = example_list({"max-keys": "0"})
    assert page.entries == [] and not page.truncated
    page = example_list({"max-keys": "5000"})
    assert page.text("MaxKeys") == "5000" and len(page.entries) == 7


def test_backend_error_body_is_an_s3_error() -> None:
    async def fetch(part: Part, query: list[tuple[str, str]]) -> bytes:
        return b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>"

    parts = routes_for_bucket(
        EXAMPLE_RULES, "default", RequestFacts("GET", "x", "", operation="ListObjectsV2"), ""
    )
    with pytest.raises(S3Error) as caught:
        run_merged("ListObjectsV2", "x", {}, parts, fetch)
    assert caught.value.code == "AccessDenied"


def test_versions_across_parts() -> None:
    fake = FakeS3()
    for key, vid in (("team2/a", "1"), ("team2/a", "2"), ("b", "3"), ("team2/c", "4")):
        route = match_route(EXAMPLE_RULES, "default", RequestFacts("PUT", "example-bucket", key))
        fake.bucket(route.backend, route.bucket).put(route.key, vid)
    route = match_route(EXAMPLE_RULES, "default", RequestFacts("DELETE", "example-bucket", "b"))
    fake.bucket(route.backend, route.bucket).put(route.key, "5", delete_marker=True)
    parts = routes_for_bucket(
        EXAMPLE_RULES,
        "default",
        RequestFacts("GET", "example-bucket", "", operation="ListObjectVersions"),
        "",
    )
    pages = asyncio.run(merged_pages(fake, parts, "versions", "", "", 1, 1, False))
    assert [p[0] for p in pages] == [
        ("b", False, "5"),
        ("b", False, "3"),
        ("team2/a", False, "2"),
        ("team2/a", False, "1"),
        ("team2/c", False, "4"),
    ]
    body = run_merged("ListObjectVersions", "example-bucket", {}, parts, fake.fetch)
    tags = [item.tag.replace(NS, "") for item in etree.fromstring(body)]
    assert tags.count("DeleteMarker") == 1 and tags.count("Version") == 4


# -- the property: merged == plain ----------------------------------------------------------------

CHARS = ["a", "b", "/", "-", "é", "+"]
KEYS = st.text(alphabet=CHARS, min_size=1, max_size=6)
KEY_PATTERNS = ["a*", "a/*", "b/a*", "a/b*", "*b", "a?/*", "ab", "é*", "b*"]
MAPPED_PREFIXES = [None, "", "x/", "data/a", "a", "b/", "é"]
BUCKETS = [None, "m1", "m2"]


@st.composite
def splits(draw: st.DrawFn) -> tuple[Rule, ...]:
    count = draw(st.integers(min_value=0, max_value=3))
    rules = []
    for index in range(count):
        rules.append(
            compile_rule(
                index,
                RuleMatch(
                    draw(st.sampled_from(["lb", "l*", "other"])),
                    key_pattern=draw(st.sampled_from(KEY_PATTERNS)),
                ),
                draw(st.sampled_from(["one", "two"])),
                names=MappedNames(
                    bucket=draw(st.sampled_from(BUCKETS)),
                    prefix=draw(st.sampled_from(MAPPED_PREFIXES)),
                ),
            )
        )
    if draw(st.booleans()):
        rules.append(
            compile_rule(
                count,
                RuleMatch("lb"),
                draw(st.sampled_from(["one", "two"])),
                names=MappedNames(
                    bucket=draw(st.sampled_from(BUCKETS)),
                    prefix=draw(st.sampled_from(MAPPED_PREFIXES)),
                ),
            )
        )
    return tuple(rules)


def visible_keys(rules: Sequence[Rule], fake: FakeS3, candidates: set[str]) -> set[str]:
    """Client keys whose route lands on an object the backends hold (independent of `Part`)."""
    out = set()
    stored = {(b, n, k) for (b, n), bucket in fake.buckets.items() for k in bucket.objects}
    for backend, name, backend_key in stored:
        guesses = {backend_key} if name == "lb" else set()
        for rule in rules:
            p = rule.backend_prefix
            if backend_key.startswith(p):
                guesses.add(rule.client_prefix + backend_key[len(p) :])
        for key in guesses | candidates:
            if not key:
                continue
            try:
                route = match_route(rules, "dflt", RequestFacts("GET", "lb", key))
            except S3Error:
                continue
            if (route.backend, route.bucket, route.key) == (backend, name, backend_key):
                out.add(key)
    return out


def build(rules: Sequence[Rule], keys: list[str], junk: list[tuple[str, str, str]]) -> FakeS3:
    fake = FakeS3()
    for key in keys:
        try:
            route = match_route(rules, "dflt", RequestFacts("PUT", "lb", key))
        except S3Error:  # the key maps to an empty backend key: S3 refuses it too
            continue
        fake.bucket(route.backend, route.bucket).put(route.key)
    for backend, name, backend_key in junk:
        fake.bucket(backend, name).put(backend_key)
    return fake


JUNK = st.lists(
    st.tuples(st.sampled_from(["one", "two", "dflt"]), st.sampled_from(["lb", "m1", "m2"]), KEYS),
    max_size=6,
)
PREFIXES = st.sampled_from(["", "a", "a/", "ab", "b", "b/", "é", "x", "a/b", "-"])
DELIMITERS = st.sampled_from(["", "/", "a", "/a", "b/"])


def test_merged_listing_skips_the_object_named_by_a_mapped_prefix() -> None:
    """Two rules map into `x/` of one bucket; the key `a` of the first is stored as `x/` itself,
    which the second rule would show as the empty key. Listed once as `a`, and the v1 listing
    ends (an empty key as its marker used to restart it forever)."""
    rules = (
        compile_rule(
            0, RuleMatch("lb", key_pattern="a*"), "two", names=MappedNames(bucket="m2", prefix="x/")
        ),
        compile_rule(1, RuleMatch("lb"), "two", names=MappedNames(bucket="m2", prefix="x/")),
    )
    fake = build(rules, ["a"], [])
    assert set(fake.bucket("two", "m2").objects) == {"x/"}
    parts = routes_for_bucket(
        rules, "dflt", RequestFacts("GET", "lb", "", operation="ListObjectsV2"), ""
    )
    for kind in ("v1", "v2"):
        got = asyncio.run(merged_pages(fake, parts, kind, "", "", 1, 1, False))
        assert got == [[("a", False, None)]]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=splits(),
    keys=st.lists(KEYS, max_size=12),
    junk=JUNK,
    kind=st.sampled_from(["v1", "v2"]),
    prefix=PREFIXES,
    delimiter=DELIMITERS,
    max_keys=st.integers(min_value=1, max_value=5),
    page_size=st.integers(min_value=1, max_value=4),
    encode=st.booleans(),
)
def test_merged_listing_equals_plain_bucket(
    rules: tuple[Rule, ...],
    keys: list[str],
    junk: list[tuple[str, str, str]],
    kind: str,
    prefix: str,
    delimiter: str,
    max_keys: int,
    page_size: int,
    encode: bool,
) -> None:
    fake = build(rules, keys, junk)
    plain = FakeBucket()
    for key in visible_keys(rules, fake, set(keys)):
        plain.put(key)
    parts = routes_for_bucket(
        rules, "dflt", RequestFacts("GET", "lb", "", operation="ListObjectsV2"), prefix
    )
    for part in parts:
        fake.bucket(part.backend, part.bucket)  # every bucket exists, some are empty
    got = asyncio.run(
        merged_pages(fake, parts, kind, prefix, delimiter, max_keys, page_size, encode)
    )
    want = reference_pages(plain, kind, prefix, delimiter, max_keys)
    assert got == want


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=splits(),
    writes=st.lists(st.tuples(KEYS, st.booleans()), max_size=12),
    prefix=PREFIXES,
    delimiter=DELIMITERS,
    max_keys=st.integers(min_value=1, max_value=4),
    page_size=st.integers(min_value=1, max_value=3),
    encode=st.booleans(),
)
def test_merged_versions_equal_plain_bucket(
    rules: tuple[Rule, ...],
    writes: list[tuple[str, bool]],
    prefix: str,
    delimiter: str,
    max_keys: int,
    page_size: int,
    encode: bool,
) -> None:
    fake = FakeS3()
    plain = FakeBucket()
    for number, (key, delete) in enumerate(writes):
        try:
            route = match_route(rules, "dflt", RequestFacts("PUT", "lb", key))
        except S3Error:
            continue
        fake.bucket(route.backend, route.bucket).put(route.key, f"v{number}", delete_marker=delete)
    visible = visible_keys(rules, fake, {k for k, _ in writes})
    for key in sorted(visible):
        route = match_route(rules, "dflt", RequestFacts("GET", "lb", key))
        plain.objects[key] = list(fake.bucket(route.backend, route.bucket).objects[route.key])
    parts = routes_for_bucket(
        rules, "dflt", RequestFacts("GET", "lb", "", operation="ListObjectVersions"), prefix
    )
    for part in parts:
        fake.bucket(part.backend, part.bucket)
    got = asyncio.run(
        merged_pages(fake, parts, "versions", prefix, delimiter, max_keys, page_size, encode)
    )
    want = reference_pages(plain, "versions", prefix, delimiter, max_keys)
    assert got == want


def test_key_xml_cannot_carry_needs_url_encoding() -> None:
    fake = FakeS3()
    fake.bucket("dflt", "lb").put("bell\x07")
    parts = routes_for_bucket(
        (), "dflt", RequestFacts("GET", "lb", "", operation="ListObjectsV2"), ""
    )
    body = run_merged("ListObjectsV2", "lb", {"encoding-type": "url"}, parts, fake.fetch)
    assert names(read_page(body)) == ["bell\x07"]
    with pytest.raises(S3Error) as caught:
        run_merged("ListObjectsV2", "lb", {}, parts, fake.fetch)
    assert caught.value.code == "InvalidArgument"


# -- a client's key grants ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["v1", "v2", "versions"])
@pytest.mark.parametrize("delimiter", ["", "/"])
def test_keep_shows_only_kept_keys_and_no_marker_names_another(kind: str, delimiter: str) -> None:
    """One entry a page: every page, marker and (decoded) token names only what `keep` kept."""
    fake = example_store()
    for key in ("public/a.csv", "secret/b.bin", "secret/c.csv", "z.bin"):
        fake.bucket("default", "example-bucket").put(key)
    parts = routes_for_bucket(
        EXAMPLE_RULES,
        "default",
        RequestFacts("GET", "example-bucket", "", operation="ListObjectsV2"),
        "",
    )
    operation = {"v1": "ListObjects", "v2": "ListObjectsV2", "versions": "ListObjectVersions"}[kind]

    def keep(key: str) -> bool:
        return key.endswith(".csv")

    base = {"max-keys": "1", **({"delimiter": delimiter} if delimiter else {})}
    if kind == "v2":
        base["list-type"] = "2"
    shown: list[str] = []
    query = dict(base)
    for _ in range(50):
        body = asyncio.run(
            merged_list(
                operation,
                "example-bucket",
                query,
                ListingSource(parts, fake.fetch, keep=keep),
                (SECRET,),
            )
        )
        page = read_page(body)
        token = page.text("NextContinuationToken") or ""
        seen = body.decode()
        if token:
            seen += decode_token((SECRET,), token, "example-bucket", "", delimiter)
        for hidden in ("obj2", "team1/x", "readme", "secret/b.bin", "z.bin"):
            assert hidden not in seen
        shown += [name for name, _, _ in page.entries]
        if not page.truncated:
            break
        query = dict(base)
        if kind == "v2":
            query["continuation-token"] = token
        elif kind == "v1":
            query["marker"] = page.text("NextMarker") or shown[-1]
        else:
            query["key-marker"] = page.text("NextKeyMarker") or ""
    expected = ["public/", "secret/"] if delimiter else ["public/a.csv", "secret/c.csv"]
    assert shown == expected
