"""The one way times are written: for people in the company's zone, named; for programs ISO 8601 UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime

from billportal.core.clock import human_date, human_time, iso_utc, local_date

JAN_15_NOON_UTC = int(datetime(2027, 1, 15, 12, tzinfo=UTC).timestamp())


def test_people_read_the_company_zone_with_its_name() -> None:
    assert human_time(JAN_15_NOON_UTC, "America/Denver") == "Jan 15, 2027, 05:00 MST"
    assert human_time(JAN_15_NOON_UTC, "America/Denver", seconds=True) == "Jan 15, 2027, 05:00:00 MST"
    assert human_time(JAN_15_NOON_UTC, "Europe/Paris") == "Jan 15, 2027, 13:00 CET"
    assert human_time(JAN_15_NOON_UTC, "No/Such_Zone") == "Jan 15, 2027, 12:00 UTC"
    assert human_time(None, "UTC") == "never"


def test_dates_share_the_format() -> None:
    assert human_date("2026-11-05") == "Nov 5, 2026"
    assert human_date(date(2026, 12, 1)) == "Dec 1, 2026"
    assert human_date(None) == ""
    assert human_date("not a date") == "not a date"
    assert local_date(JAN_15_NOON_UTC - 13 * 3600, "America/Denver") == date(2027, 1, 14)


def test_programs_read_iso_8601_utc() -> None:
    assert iso_utc(JAN_15_NOON_UTC) == "2027-01-15T12:00:00Z"
    assert iso_utc(None) is None
