"""SigV4 canonical forms, shared by verification and signing: encoding, query and headers."""

from __future__ import annotations

from urllib.parse import quote, unquote_to_bytes

import pytest

from s3router_proxy.auth import canonical
from s3router_proxy.auth.canonical import (
    canonical_query_string,
    headers_block,
    raw_canonical_query,
    raw_query_parts,
    trim,
    uri_encode,
    utf8,
)
from s3router_proxy.s3.request import parse_query


def test_uri_encode() -> None:
    assert uri_encode("a/b c+d~e*", keep_slash=True) == "a/b%20c%2Bd~e%2A"
    assert uri_encode("a/b c+d~e*", keep_slash=False) == "a%2Fb%20c%2Bd~e%2A"
    assert uri_encode("ü!'()", keep_slash=True) == "%C3%BC%21%27%28%29"
    assert uri_encode("\U0001f600", keep_slash=False) == "%F0%9F%98%80"
    assert uri_encode("-._~AZaz09", keep_slash=False) == "-._~AZaz09"
    assert uri_encode("", keep_slash=True) == ""
    with pytest.raises(ValueError):
        uri_encode("\ud800", keep_slash=True)


def test_canonical_query_string_keeps_repeats_and_empty_values() -> None:
    items = [("b", "2"), ("a", ""), ("b", "1"), ("a b", "x/y"), ("uploads", "")]
    assert canonical_query_string(items) == "a=&a%20b=x%2Fy&b=1&b=2&uploads="
    assert canonical_query_string([]) == ""


def test_doc_list_objects_canonical_query() -> None:
    assert canonical_query_string([("prefix", "J"), ("max-keys", "2")]) == "max-keys=2&prefix=J"
    assert canonical_query_string(parse_query("lifecycle")) == "lifecycle="


def test_aws_suite_canonical_query_order() -> None:
    items = parse_query("Param-3=Value3&Param=Value2&%E1%88%B4=Value1")
    assert canonical_query_string(items) == "%E1%88%B4=Value1&Param=Value2&Param-3=Value3"
    assert canonical_query_string(parse_query("Param2=value2&Param1=value1")) == (
        "Param1=value1&Param2=value2"
    )


def test_encoded_query_fast_path_equals_decode_and_encode() -> None:
    def slow(raw: str) -> str:
        return quote(unquote_to_bytes(raw.replace("+", " ").encode("utf-8")), safe="")

    samples = [
        f"{prefix}%{byte:02{case}}b" for byte in range(256) for case in "Xx" for prefix in ("", "a")
    ]
    samples += [chr(code) for code in range(0x250)] + ["a+b", "%zz", "%4", "~%7E", "%E1%88%B4"]
    for raw in samples:
        assert canonical._reencode_query_part(raw) == slow(raw), raw


def test_raw_query_parts_keep_whether_a_part_had_an_equals_sign() -> None:
    assert raw_query_parts("") == []
    assert raw_query_parts("&&acl&a=&b=1=2&") == [
        ("acl", "", ""),
        ("a", "=", ""),
        ("b", "=", "1=2"),
    ]


def test_raw_canonical_query_drops_and_redacts_by_name() -> None:
    raw = "X-Amz-Signature=ab&b=2&X-Amz-Security-Token=t%2Bk&a=1"
    assert raw_canonical_query(raw) == "X-Amz-Security-Token=t%2Bk&X-Amz-Signature=ab&a=1&b=2"
    assert raw_canonical_query(
        raw, drop=frozenset({"X-Amz-Signature"}), redact=frozenset({"X-Amz-Security-Token"})
    ) == ("X-Amz-Security-Token=<redacted>&a=1&b=2")
    # A query that is not canonical yet is re-encoded: `+` is a space, `%7e` is `~`.
    assert raw_canonical_query("k=a+b&j=%7e") == "j=~&k=a%20b"


def test_trim_collapses_whitespace_runs() -> None:
    assert trim("plain value") == "plain value"
    assert trim("\t a  \t b ") == "a b"
    assert trim("a\r\nb") == "a b"


def test_headers_block_trims_only_when_needed() -> None:
    assert headers_block(["host", "x-amz-date"], ["h", "d"]) == "host:h\nx-amz-date:d\n"
    assert headers_block(["a", "b"], ["  x  y ", "z\t"]) == "a:x y\nb:z\n"
    assert headers_block([], []) == ""


def test_utf8_keeps_undecodable_bytes_as_sent() -> None:
    assert utf8("caf\u00e9") == "caf\u00e9".encode()
    assert utf8(b"\xff".decode("utf-8", "surrogateescape")) == b"\xff"
    assert utf8("\ud800") == "\ud800".encode("utf-8", "surrogatepass")
