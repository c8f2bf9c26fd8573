"""Request timestamps: SigV4's form, HTTP dates, and the ISO form errors show."""

from __future__ import annotations

from datetime import UTC, datetime

from s3router_proxy.auth.requesttime import amz_date, amz_epoch, http_date_epoch, iso


def test_amz_date() -> None:
    assert amz_date(datetime(2013, 5, 24, tzinfo=UTC).timestamp()) == "20130524T000000Z"
    assert amz_date(1440938160.9) == "20150830T123600Z"


def test_amz_epoch_reads_only_valid_timestamps() -> None:
    assert amz_epoch("20150830T123600Z") == 1440938160
    for bad in ("20150830T123600", "2015-08-30T12:36:00Z", "20150230T000000Z", "2015083OT123600Z"):
        assert amz_epoch(bad) is None
    # Digits of other scripts are not SigV4's.
    assert amz_epoch("\u0662\u0660\u0661\u0665" + "0830T123600Z") is None


def test_http_date_epoch() -> None:
    assert http_date_epoch("Sun, 30 Aug 2015 12:36:00 GMT") == 1440938160
    assert http_date_epoch("Sun, 30 Aug 2015 12:36:00 -0000") == 1440938160  # UTC, no zone
    assert http_date_epoch("Sun, 30 Aug 2015 14:36:00 +0200") == 1440938160
    assert http_date_epoch("Sunday, 30-Aug-15 12:36:00 GMT") == 1440938160
    for bad in ("", "yesterday", "Sun, 99 Aug 2015 12:36:00 GMT", "20150830T123600Z"):
        assert http_date_epoch(bad) is None


def test_iso() -> None:
    assert iso(1440938160.7) == "2015-08-30T12:36:00Z"
