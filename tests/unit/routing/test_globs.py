"""Globs: whole-name, case-sensitive, `*` crossing `/`; literal prefixes and the regions a
pattern covers."""

from __future__ import annotations

from s3router_proxy.routing.globs import glob_covers, glob_region, literal_prefix


def test_literal_prefix_and_regions() -> None:
    assert literal_prefix("team2/*") == "team2/"
    assert literal_prefix("a?b") == "a"
    assert literal_prefix("[x]") == ""
    assert literal_prefix("plain") == "plain"
    assert literal_prefix(None) == ""
    assert glob_region(None, "x") == "all"
    assert glob_region("team2/*", "team2/a") == "all"
    assert glob_region("team2/*", "team") == "some"
    assert glob_region("team2/*", "team3") == "none"
    assert glob_region("team2/*.csv", "team2/") == "some"
    assert glob_region("exact", "ex") == "some"
    assert glob_region("exact", "exact") == "some"
    assert glob_region("exact", "exactly") == "none"


def test_glob_covers() -> None:
    assert glob_covers(None, "a*")
    assert glob_covers("*", "a*")
    assert glob_covers("a*", "ab*")
    assert glob_covers("a*", "abc")
    assert not glob_covers("ab*", "a*")
    assert glob_covers("a?c", "abc")
    assert not glob_covers("*.csv", "a*")
    assert glob_covers("*", None)
    assert not glob_covers("a*", None)
