"""What a request head must say about its own framing before the front server hands it on.

llhttp decides where a message ends, but it decides some of it only after `on_headers_complete`
(a Transfer-Encoding that does not end in `chunked` is refused after that callback ran), and it
takes an upgrade request's body for the next protocol's bytes. A request is therefore checked
here, once its head is parsed and before anything else sees it: one reading of the framing
headers that llhttp, the proxy and every backend agree on, or a refusal.
"""

from __future__ import annotations

from multidict import CIMultiDictProxy

# A Content-Length of 19 digits is over 8 EiB; more digits only serve to overflow a parser.
_MAX_LENGTH_DIGITS = 18


class BadRequest(Exception):
    """A request refused before it is handled: answered with an S3 error, then the connection
    ends."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def check_framing(method: str, version: str, headers: CIMultiDictProxy[str]) -> None:
    """Raise `BadRequest` unless the head frames its body one way only, as HTTP/1.1 chunked,
    by one Content-Length, or not at all, and asks for no other protocol."""
    if version not in ("1.0", "1.1"):
        raise BadRequest("BadRequest", "Only HTTP/1.0 and HTTP/1.1 requests are served.")
    if method == "CONNECT":
        raise BadRequest("BadRequest", "CONNECT is not served: this is not a forwarding proxy.")
    if "Upgrade" in headers or any(
        token.strip(" \t").lower() == "upgrade"
        for value in headers.getall("Connection", ())
        for token in value.split(",")
    ):
        # llhttp would take the body for the next protocol's bytes and the request as
        # bodiless: the backend would be promised a body that never comes.
        raise BadRequest("BadRequest", "Protocol upgrades are not served.")
    hosts = len(headers.getall("Host", ()))
    if hosts > 1 or (hosts == 0 and version == "1.1"):
        raise BadRequest("BadRequest", "An HTTP/1.1 request has one Host header (RFC 9112, 3.2).")
    codings = headers.getall("Transfer-Encoding", ())
    lengths = headers.getall("Content-Length", ())
    if codings:
        if len(codings) > 1 or codings[0].strip(" \t").lower() != "chunked":
            raise BadRequest(
                "NotImplemented",
                "A Transfer-Encoding other than chunked is not implemented.",
                501,
            )
        if lengths:
            raise BadRequest(
                "BadRequest", "Content-Length and Transfer-Encoding together are ambiguous."
            )
    if lengths:
        if len(lengths) > 1:
            raise BadRequest("BadRequest", "The request has more than one Content-Length.")
        length = lengths[0].strip(" \t")
        if not (length.isascii() and length.isdigit()) or len(length) > _MAX_LENGTH_DIGITS:
            raise BadRequest("BadRequest", "The Content-Length is not a number of bytes.")
