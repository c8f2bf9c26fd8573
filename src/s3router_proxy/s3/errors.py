"""S3 errors: the one way a failure reaches a client.

Every error the proxy makes itself is an `S3Error` carrying the S3 `Code`, the HTTP status S3
uses for it, and a message. `error_xml` renders the body S3 clients parse; extra elements
(`<AWSAccessKeyId>`, `<Region>`, …) ride along in `details`. No secret ever goes in here.
"""

from __future__ import annotations

import itertools
import secrets
from xml.sax.saxutils import escape

# Code -> (HTTP status, default message), as in the S3 API reference "ErrorResponses".
ERRORS: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "Access Denied"),
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed."),
    "AuthorizationQueryParametersError": (
        400,
        "Error parsing the X-Amz-Credential parameter or another presigned URL parameter.",
    ),
    "BadDigest": (400, "The Content-MD5 or checksum you specified did not match what we received."),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed size."),
    "EntityTooSmall": (
        400,
        "Your proposed upload is smaller than the minimum allowed object size.",
    ),
    "ExpiredToken": (400, "The provided token has expired."),
    "IncompleteBody": (
        400,
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
    ),
    "IncorrectNumberOfFilesInPostRequest": (
        400,
        "POST requires exactly one file upload per request.",
    ),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InvalidAccessKeyId": (
        403,
        "The AWS Access Key Id you provided does not exist in our records.",
    ),
    "InvalidArgument": (400, "Invalid Argument"),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidDigest": (400, "The Content-MD5 you specified is not valid."),
    "InvalidPolicyDocument": (
        400,
        "The content of the form does not meet the conditions specified in the policy document.",
    ),
    "InvalidRequest": (400, "Invalid Request"),
    "InvalidToken": (400, "The provided token is malformed or otherwise invalid."),
    "InvalidURI": (400, "Couldn't parse the specified URI."),
    "KeyTooLongError": (400, "Your key is too long."),
    "MalformedPOSTRequest": (
        400,
        "The body of your POST request is not well-formed multipart/form-data.",
    ),
    "MalformedTrailerError": (
        400,
        "The request contained trailing data that was not well-formed or did not conform to "
        "our published schema.",
    ),
    "MalformedXML": (400, "The XML you provided was not well-formed."),
    "MaxPostPreDataLengthExceeded": (
        400,
        "Your POST request fields preceding the upload file were too large.",
    ),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "NoSuchBucket": (404, "The specified bucket does not exist."),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchUpload": (404, "The specified multipart upload does not exist."),
    "NotImplemented": (
        501,
        "A header or query you provided implies functionality that is not implemented.",
    ),
    "RequestTimeTooSkewed": (
        403,
        "The difference between the request time and the server's time is too large.",
    ),
    "RequestTimeout": (
        400,
        "Your socket connection to the server was not read from or written to within the "
        "timeout period.",
    ),
    "ServiceUnavailable": (503, "Service is unable to handle request."),
    "SignatureDoesNotMatch": (
        403,
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    ),
    "SlowDown": (503, "Please reduce your request rate."),
    "XAmzContentSHA256Mismatch": (
        400,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    ),
}


class S3Error(Exception):
    """A failure to answer with S3 error XML. `details` become extra XML elements."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        status: int | None = None,
        details: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        default_status, default_message = ERRORS.get(code, (500, code))
        self.code = code
        self.message = message or default_message
        self.status = status or default_status
        self.details = details or {}
        self.headers = headers or {}
        super().__init__(f"{code}: {self.message}")


_ID_PREFIX = secrets.token_hex(4).upper()  # per process: ids from replicas do not collide
_id_counter = itertools.count(secrets.randbelow(1 << 31))


def new_request_id() -> str:
    """A request id in the shape S3 uses (16 upper-case hex characters), unique per process.

    A random per-process prefix and a counter: no system call on the per-request path."""
    return f"{_ID_PREFIX}{next(_id_counter) & 0xFFFFFFFF:08X}"


def error_xml(error: S3Error, *, resource: str, request_id: str) -> bytes:
    """The S3 error document for `error`, naming the resource and the request id."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>',
        f"<Code>{escape(error.code)}</Code>",
        f"<Message>{escape(error.message)}</Message>",
    ]
    parts.extend(f"<{name}>{escape(value)}</{name}>" for name, value in error.details.items())
    parts.append(f"<Resource>{escape(resource)}</Resource>")
    parts.append(f"<RequestId>{request_id}</RequestId>")
    parts.append(f"<HostId>{request_id}</HostId>")
    parts.append("</Error>")
    return "".join(parts).encode("utf-8")
