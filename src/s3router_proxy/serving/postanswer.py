"""What a browser form upload asks of the object, and what S3 answers it.

The form's fields become the PutObject's headers (`put_headers`): metadata, the content
headers, storage class, `acl` as `x-amz-acl` and a `tagging` document as `x-amz-tagging`.
The answer (`post_answer`) is S3's: 204 by default, 200 or 201 (a `PostResponse` document)
as `success_action_status` asks, or a 303 to `success_action_redirect`, always in the
client's names.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

from multidict import CIMultiDict

from ..http.messages import Response
from ..s3.errors import S3Error
from ..s3.request import CONTENT_HEADERS
from ..s3.xml import child_text, children, local_name, parse_xml

# Fields that are the object's headers under the same name.
_AS_HEADERS = frozenset(
    {
        *CONTENT_HEADERS,
        "x-amz-storage-class",
        "x-amz-server-side-encryption",
        "x-amz-website-redirect-location",
    }
)
_META_PREFIX = "x-amz-meta-"
# What a header value may hold: visible ASCII, space and tab.
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
# The backend's answer headers a form upload's answer carries on.
_KEPT = ("x-amz-version-id", "x-amz-server-side-encryption", "x-amz-checksum-crc32")
MAX_TAGGING_BYTES = 16 * 1024


def put_headers(fields: dict[str, str]) -> dict[str, str]:
    """The PutObject headers the form's fields ask for (lower-case names)."""
    headers: dict[str, str] = {}
    for name, value in fields.items():
        if name in _AS_HEADERS or name.startswith((_META_PREFIX, "x-amz-checksum-")):
            target = name
        elif name == "acl":
            target = "x-amz-acl"
        elif name == "tagging":
            target, value = "x-amz-tagging", _tagging(value)
        else:
            continue
        if not _HEADER_VALUE.fullmatch(value):
            raise S3Error(
                "InvalidArgument", f"The form field {name!r} holds characters no header can carry."
            )
        headers[target] = value
    return headers


def _tagging(document: str) -> str:
    """A `<Tagging><TagSet><Tag><Key>..</Key><Value>..</Value></Tag>..` field as the
    `x-amz-tagging` header's query form."""
    root = parse_xml(document.encode("utf-8"), limit=MAX_TAGGING_BYTES, request=True)
    if local_name(root) != "Tagging":
        raise S3Error("MalformedXML", "The tagging field is not a Tagging document.")
    pairs = []
    for tag_set in children(root, "TagSet"):
        for tag in children(tag_set, "Tag"):
            pairs.append((child_text(tag, "Key") or "", child_text(tag, "Value") or ""))
    return urlencode(pairs, quote_via=quote)


def object_url(scheme: str, host: str, bucket: str, key: str, virtual: bool) -> str:
    """Where the object is, at the proxy, in the client's names."""
    path = quote(key, safe="/~")
    return f"{scheme}://{host}/{path}" if virtual else f"{scheme}://{host}/{bucket}/{path}"


def post_answer(
    fields: dict[str, str], backend_headers: CIMultiDict[str], location: str, names: tuple[str, str]
) -> Response:
    """S3's answer to a form upload the backend stored: `names` are the client's bucket and
    key, `location` the object's URL."""
    bucket, key = names
    etag = backend_headers.get("ETag", "")
    headers = CIMultiDict([("ETag", etag), ("Location", location)])
    for name in _KEPT:
        if name in backend_headers:
            headers[name] = backend_headers[name]
    redirect = fields.get("success_action_redirect") or fields.get("redirect") or ""
    if redirect.startswith(("http://", "https://")):
        query = urlencode([("bucket", bucket), ("key", key), ("etag", etag)], quote_via=quote)
        headers["Location"] = f"{redirect}{'&' if '?' in redirect else '?'}{query}"
        return Response(status=303, body=b"", headers=headers)
    status = fields.get("success_action_status")
    if status == "200":
        return Response(status=200, body=b"", headers=headers)
    if status == "201":
        document = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse>'
            f"<Location>{_xml(location)}</Location><Bucket>{_xml(bucket)}</Bucket>"
            f"<Key>{_xml(key)}</Key><ETag>{_xml(etag)}</ETag></PostResponse>"
        )
        return Response(
            status=201,
            body=document.encode("utf-8"),
            headers=headers,
            content_type="application/xml",
        )
    return Response(status=204, headers=headers)


def _xml(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
