"""What both signature versions say when they refuse, and text made safe to show in XML."""

from __future__ import annotations

from xml.etree import ElementTree

from s3router_proxy.auth.refusals import for_display, two_mechanisms
from s3router_proxy.s3.errors import error_xml


def test_two_mechanisms_is_an_invalid_argument_naming_authorization() -> None:
    error = two_mechanisms()
    assert (error.code, error.status) == ("InvalidArgument", 400)
    assert error.details == {"ArgumentName": "Authorization"}
    assert "Only one auth mechanism allowed" in error.message


def test_for_display_escapes_what_xml_cannot_carry() -> None:
    assert for_display("AKID/plain") == "AKID/plain"
    assert for_display("a\x00b\x1fc\x7f") == "a\\x00b\\x1fc\x7f"
    undecodable = b"k\xff".decode("utf-8", "surrogateescape")
    assert for_display(undecodable) == "k\\xff"
    assert for_display("\ud800") == "\\xed\\xa0\\x80"
    assert for_display("caf\u00e9\n") == "caf\u00e9\n"


def test_for_display_output_always_parses_as_xml() -> None:
    error = two_mechanisms()
    error.details["Shown"] = for_display("".join(chr(code) for code in range(0x20)) + "\ufffe")
    ElementTree.fromstring(error_xml(error, resource="/", request_id="ID"))
