"""Request timestamps, as SigV4 and SigV2 write them and as S3 shows them in errors.

`YYYYMMDDTHHMMSSZ` is SigV4's form (x-amz-date, X-Amz-Date); an HTTP date is the `Date`
header's; ISO 8601 is what an error's `ServerTime` and `Expires` say. No clock here: callers
pass `now`.
"""

from __future__ import annotations

import calendar
import functools
import re
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_AMZ_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z", re.ASCII)


def amz_date(now: float) -> str:
    """`now` (epoch seconds) as the SigV4 timestamp `YYYYMMDDTHHMMSSZ`, UTC."""
    return _amz_date_of_second(int(now))


@functools.lru_cache(maxsize=4)  # every request in the same second shares one timestamp
def _amz_date_of_second(second: int) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))


@functools.lru_cache(maxsize=4096)  # requests in the same second share a timestamp
def amz_epoch(value: str) -> int | None:
    """Epoch seconds of a `YYYYMMDDTHHMMSSZ` timestamp, or None when it is not one."""
    match = _AMZ_DATE.fullmatch(value)
    if match is None:
        return None
    try:
        moment = datetime(*(int(part) for part in match.groups()), tzinfo=UTC)
    except ValueError:
        return None
    return int(moment.timestamp())


def http_date_epoch(value: str) -> float | None:
    """Epoch seconds of an HTTP date (RFC 1123/850, asctime), else None."""
    try:
        parsed = parsedate_to_datetime(value)
        if parsed.tzinfo is None:  # "-0000": UTC by RFC 5322
            return float(calendar.timegm(parsed.timetuple()))
        return parsed.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def iso(epoch: float) -> str:
    """`epoch` as S3 shows a time in an error: `YYYY-MM-DDTHH:MM:SSZ`, UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
