"""What SigV4 and SigV2 say alike when they refuse a request, and how client text is shown.

An error echoes some of what the client sent (a key id, a date, a canonical request) so the
client can debug it; that text may hold any byte, and XML 1.0 cannot carry them all.
"""

from __future__ import annotations

import re

from ..s3.errors import S3Error
from .canonical import utf8

NO_DATE = "AWS authentication requires a valid Date or x-amz-date header"
# Query parameters that select query-string authentication, per version; any of them next to
# an Authorization header, or one version's next to the other's, makes a request ambiguous.
V4_QUERY_MARKERS = frozenset({"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"})
V2_QUERY_MARKERS = frozenset({"AWSAccessKeyId", "Signature"})
QUERY_AUTH_MARKERS = V4_QUERY_MARKERS | V2_QUERY_MARKERS
_TWO_MECHANISMS = (
    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature "
    "query string parameter or the Authorization header should be specified"
)
# Characters XML 1.0 cannot carry; error details are shown, not parsed, so escape them.
_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def two_mechanisms() -> S3Error:
    """Header and query authentication at once: which one would be checked is anyone's guess."""
    return S3Error("InvalidArgument", _TWO_MECHANISMS, details={"ArgumentName": "Authorization"})


def for_display(text: str) -> str:
    """Text safe to put in error XML: invalid bytes and control characters escaped."""
    text = utf8(text).decode("utf-8", "backslashreplace")
    return _XML_UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
